"""Examples and the readers that make them.

An :class:`Example` is one dataset row: an ``id``, a ``prompt`` (plain text, or chat messages) and
the row's other fields (reference answer, unit tests, schema, database, ...) that graders read.
A row may name its own grader in ``grader`` (a spec dict); multi-task datasets route each row to
the grader that fits it.

Readers here: JSONL files with ``prompt`` (+ any fields). Every error names the file, the line and
the fix. Train/validation splits are checked to share no prompt (asserted, not assumed).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class DataError(ValueError):
    """Bad dataset input; the message names the file/line and how to fix it."""


@dataclass(frozen=True)
class Example:
    """One dataset row. ``fields`` holds everything except ``id``, ``prompt`` and ``grader``."""

    id: str
    prompt: str | list[dict[str, str]]
    fields: dict[str, Any] = field(default_factory=dict)
    grader: dict[str, Any] | None = None
    # The directory of the file the row came from: graders resolve relative paths (e.g. the
    # ``db`` of an sql row) against it. None for generated examples.
    base_dir: str | None = None

    def get(self, key: str, default: Any = None) -> Any:
        return self.fields.get(key, default)

    def prompt_key(self) -> str:
        """A canonical string of the prompt, used to check that splits are disjoint."""
        if isinstance(self.prompt, str):
            return self.prompt
        return json.dumps(self.prompt, sort_keys=True, ensure_ascii=False)

    def to_json(self) -> dict[str, Any]:
        row: dict[str, Any] = {"id": self.id, "prompt": self.prompt, **self.fields}
        if self.grader is not None:
            row["grader"] = self.grader
        return row


def example_from_row(row: Any, where: str) -> Example:
    """Build an Example from a parsed JSON row; ``where`` ("file.jsonl:12") goes into errors."""
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}; write one object per line")
    if "prompt" not in row:
        raise DataError(f"{where}: missing field 'prompt'; every row needs a 'prompt' (a string or chat messages)")
    prompt = row["prompt"]
    if isinstance(prompt, list):
        for i, msg in enumerate(prompt):
            if not (isinstance(msg, dict) and isinstance(msg.get("role"), str) and isinstance(msg.get("content"), str)):
                raise DataError(f"{where}: prompt[{i}] must be {{'role': str, 'content': str}}")
    elif not isinstance(prompt, str):
        raise DataError(f"{where}: 'prompt' must be a string or a list of chat messages, got {type(prompt).__name__}")
    if isinstance(prompt, str) and not prompt.strip():
        raise DataError(f"{where}: 'prompt' is empty; remove the row or give it a prompt")
    grader = row.get("grader")
    if grader is not None and not (isinstance(grader, dict) and "type" in grader):
        raise DataError(f"{where}: 'grader' must be a spec object with a 'type', e.g. {{\"type\": \"arithmetic\"}}")
    fields = {k: v for k, v in row.items() if k not in ("id", "prompt", "grader")}
    return Example(id=str(row.get("id", where)), prompt=prompt, fields=fields, grader=grader)


def read_jsonl(path: str | Path) -> list[Example]:
    """Read a JSONL file of examples; every bad line is reported with its number."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file; check data.train_file / data.val_file")
    examples: list[Example] = []
    errors: list[str] = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                errors.append(f"{where}: invalid JSON ({e.msg} at column {e.colno})")
                continue
            try:
                ex = example_from_row(row, where)
            except DataError as e:
                errors.append(str(e))
                continue
            ex_id = ex.id if "id" in row else f"{path.stem}-{lineno}"
            examples.append(Example(ex_id, ex.prompt, ex.fields, ex.grader, base_dir=str(path.parent.resolve())))
    if errors:
        shown = "\n  ".join(errors[:10])
        more = f"\n  ... and {len(errors) - 10} more" if len(errors) > 10 else ""
        raise DataError(f"{path}: {len(errors)} bad line(s):\n  {shown}{more}")
    if not examples:
        raise DataError(f"{path}: the dataset is empty; add at least one JSON object per line")
    return examples


def write_jsonl(path: str | Path, examples: list[Example]) -> None:
    from rft.runs import atomic_write_text

    atomic_write_text(Path(path), "".join(json.dumps(e.to_json(), ensure_ascii=False) + "\n" for e in examples))


def split_examples(examples: list[Example], val_size: int, seed: int) -> tuple[list[Example], list[Example]]:
    """Hold out ``val_size`` examples whose prompts appear nowhere in the training split."""
    by_prompt: dict[str, list[Example]] = {}
    for ex in examples:
        by_prompt.setdefault(ex.prompt_key(), []).append(ex)
    keys = sorted(by_prompt)
    random.Random(seed).shuffle(keys)
    val: list[Example] = []
    train: list[Example] = []
    for k in keys:
        (val if len(val) < val_size else train).extend(by_prompt[k])
    if not train:
        raise DataError(f"data.val_size={val_size} leaves no training examples out of {len(examples)}; lower it")
    return train, val


def assert_disjoint(train: list[Example], val: list[Example]) -> None:
    """Raise if any validation prompt is also a training prompt (leakage makes validation meaningless)."""
    overlap = {e.prompt_key() for e in train} & {e.prompt_key() for e in val}
    if overlap:
        sample = next(iter(overlap))
        raise DataError(
            f"{len(overlap)} prompt(s) appear in both train and validation (e.g. {sample[:80]!r}); "
            "remove them from one split"
        )


@dataclass
class PromptCursor:
    """Walks the training examples in a fresh seeded permutation each epoch; resumable from
    (epoch, index) alone, so a resumed run sees exactly the prompts the straight run would."""

    size: int
    seed: int
    epoch: int = 0
    index: int = 0

    def _order(self) -> list[int]:
        order = list(range(self.size))
        random.Random(self.seed * 1_000_003 + self.epoch).shuffle(order)
        return order

    def take(self, n: int) -> list[int]:
        out: list[int] = []
        order = self._order()
        while len(out) < n:
            if self.index >= self.size:
                self.epoch, self.index = self.epoch + 1, 0
                order = self._order()
            out.append(order[self.index])
            self.index += 1
        return out

    def state(self) -> dict[str, int]:
        return {"epoch": self.epoch, "index": self.index}


def load_splits(data_cfg: Any, seed: int) -> tuple[list[Example], list[Example], dict[str, Any] | None]:
    """(train, val, the task's grader spec or None) from a built-in task or JSONL files."""
    if data_cfg.task is not None:
        from rft.tasks import TASKS

        return TASKS[data_cfg.task.name](data_cfg.task, seed)
    train = read_jsonl(data_cfg.train_file)
    if data_cfg.val_file is not None:
        val = read_jsonl(data_cfg.val_file)
    else:
        train, val = split_examples(train, data_cfg.val_size, seed)
    assert_disjoint(train, val)
    return train, val, None
