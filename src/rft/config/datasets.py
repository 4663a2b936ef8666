"""The ``data.dataset:`` section of a run config: a dataset read with Hugging Face ``datasets``, by hub
name or from a local directory or data file, and how its columns become rows (``rft.tasks.hub_dataset``
reads it). Validated at load like every section; what needs the dataset itself (do the columns
exist?) is checked when it is read, naming the dataset's columns.

Beside ``run.py``, which imports it.
"""

from __future__ import annotations

from string import Formatter

from typing import Any

from pydantic import Field, field_validator, model_validator

from rft.config.base import Strict


def template_fields(template: str) -> list[str]:
    """The column names a prompt template reads, in order; ``ValueError`` naming the problem when it
    is not plain ``{column}`` placeholders (``{{``/``}}`` write a brace; attribute access, indexing,
    conversions and format specs are refused: a template names columns, nothing else)."""
    try:
        parts = list(Formatter().parse(template))
    except ValueError as e:
        raise ValueError(f"data.dataset.template {template!r}: {e}; write a literal brace as '{{{{' or '}}}}'") from None
    names = []
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if not name or conversion or spec or any(c in name for c in ".[]"):
            raise ValueError(f"data.dataset.template {template!r}: '{{{name}}}' is not a plain column placeholder; "
                             "write {column} (no attributes, indexes, !conversions or :formats)")
        names.append(name)
    if not names:
        raise ValueError(f"data.dataset.template {template!r} names no column; write e.g. '{{question}}'")
    return names


class DatasetConfig(Strict):
    """``datasets.load_dataset(path, name, revision=...)`` (or ``load_from_disk`` for a saved dataset),
    then one row per record: the prompt from ``prompt_field``, ``messages_field`` or ``template`` (default:
    a ``prompt`` or ``messages`` column), the gold answer from ``answer_field`` into the row's
    ``answer``, every other column kept on the row for graders."""

    path: str = Field(description="a hub dataset name ORG/NAME (from the datasets cache, or downloaded; "
                      "HF_DATASETS_OFFLINE=1 or HF_HUB_OFFLINE=1: the cache only), a local dataset directory "
                      "(save_to_disk output, or a folder of data files) or a .jsonl/.json/.parquet/.csv file")
    name: str | None = Field(None, description="the dataset's configuration (load_dataset's second argument), "
                             "e.g. main for openai/gsm8k")
    split: str = Field("train", description="the split trained on")
    val_split: str | None = Field(None, description="the held-out split, e.g. test; default: data.val_size rows "
                                  "held out from split")
    revision: str | None = Field(None, description="hub only: branch, tag or commit; default main")
    prompt_field: str | None = Field(None, description="the column holding the prompt text; default 'prompt'")
    messages_field: str | None = Field(None, description="the column holding chat messages ([{role, content}])")
    template: str | None = Field(None, description="the prompt made from columns, e.g. '{question}' or "
                                 "'Q: {question}\\nEnd with #### and the answer.' ({{ and }} write braces)")
    chat: bool = Field(False, description="the prompt text as one chat user turn (for chat models)")
    answer_field: str | None = Field("answer", description="the column holding the gold answer, given to graders "
                                     "as the row's 'answer'; null: the rows have none")
    answer_marker: str | None = Field(None, description="the gold is what follows this on its last line that "
                                      "starts with it, e.g. '####' for GSM8K's '... #### 72'")
    max_rows: int | None = Field(None, ge=1, description="read the first N rows of each split; default all "
                                 "(at most 1,000,000)")

    @field_validator("template", mode="before")
    @classmethod
    def _not_a_yaml_mapping(cls, value: Any) -> Any:
        if isinstance(value, dict):
            raise ValueError("is a YAML mapping, not text ({question} unquoted); quote it: "
                             "--set \"data.dataset.template='{question}'\"")
        return value

    @model_validator(mode="after")
    def _one_prompt_source(self) -> "DatasetConfig":
        given = [k for k in ("prompt_field", "messages_field", "template") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"data.dataset sets {' and '.join(given)}; the prompt comes from one of them")
        if self.template is not None:
            template_fields(self.template)
        if self.chat and self.messages_field is not None:
            raise ValueError("data.dataset.chat makes a chat turn of prompt text; messages_field is chat already, "
                             "remove chat")
        if self.answer_marker is not None and (self.answer_field is None or not self.answer_marker.strip()):
            raise ValueError("data.dataset.answer_marker needs an answer_field and a non-blank marker (e.g. '####')")
        if self.val_split is not None and self.val_split == self.split:
            raise ValueError(f"data.dataset.val_split is the training split {self.split!r}; pick another split, "
                             "or remove val_split to hold out data.val_size rows")
        return self
