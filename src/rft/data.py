"""Examples and the readers that make them.

An :class:`Example` is one dataset row: an ``id``, a ``prompt`` (plain text, or chat messages) and
the row's other fields (reference answer, unit tests, schema, database, ...) that graders read.
A row may name its own grader in ``grader`` (a spec dict); multi-task datasets route each row to
the grader that fits it.

Readers here: JSONL files (:func:`read_jsonl`), and through the optional ``datasets`` package
(``rft[datasets]``) ``.json`` / ``.parquet`` / ``.csv`` files and ``save_to_disk`` directories
(:func:`read_dataset` picks by path). Every error names the file, the line (or row) and the fix.
Train/validation splits are checked to share no prompt (asserted, not assumed).

Chat rows: a row may give ``messages`` (a list of ``{role, content}``) instead of ``prompt``; this
is the OpenAI RFT JSONL format, read as-is: ``messages`` becomes the prompt and every other field
stays on the row, where graders read it as ``{{ item.<field> }}``. OpenAI content given as a list of
text parts (``[{"type": "text", "text": ...}]``) is joined into one string, and the ``developer``
role is rendered as ``system`` (open chat templates know no ``developer``). Chat prompts are
rendered with the tokenizer's chat template at load (:func:`rft.models.chat.chat_prompt_ids`).
Not covered: images or audio in messages, assistant turns to imitate (the model writes the reply).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rft.files import InputFileError, atomic_write_text, check_regular_file, jsonl_lines


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
    # Where the row came from ("train.jsonl:12"), for errors found after reading. None if generated.
    where: str | None = None

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


def example_from_row(row: Any, where: str, *, require_prompt: bool = True) -> Example:
    """Build an Example from a parsed JSON row; ``where`` ("file.jsonl:12") goes into errors.

    ``require_prompt=False`` (rows that are only graded, as in ``rft grade``) reads a row with
    neither ``prompt`` nor ``messages``, or with an empty one, as having the empty prompt ``""``."""
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}; write one object per line")
    if "prompt" in row and "messages" in row:
        raise DataError(f"{where}: has both 'prompt' and 'messages'; keep one (messages for chat models)")
    if "prompt" not in row and "messages" not in row:
        if require_prompt:
            raise DataError(f"{where}: missing field 'prompt'; every row needs a 'prompt' (a string or chat messages) "
                            "or 'messages' (OpenAI chat format)")
        row = {**row, "prompt": ""}
    key = "prompt" if "prompt" in row else "messages"
    prompt = row[key]
    if isinstance(prompt, list):
        prompt = [_chat_message(msg, f"{where}: {key}[{i}]") for i, msg in enumerate(prompt)]
        if not prompt:
            raise DataError(f"{where}: '{key}' is an empty list; give at least one message")
    elif key == "messages":
        raise DataError(f"{where}: 'messages' must be a list of {{'role', 'content'}} objects, "
                        f"got {type(prompt).__name__}")
    elif not isinstance(prompt, str):
        raise DataError(f"{where}: 'prompt' must be a string or a list of chat messages, got {type(prompt).__name__}")
    if isinstance(prompt, str) and not prompt.strip() and require_prompt:
        raise DataError(f"{where}: 'prompt' is empty; remove the row or give it a prompt")
    grader = row.get("grader")
    if grader is not None and not (isinstance(grader, dict) and "type" in grader):
        raise DataError(f"{where}: 'grader' must be a spec object with a 'type', e.g. {{\"type\": \"arithmetic\"}}")
    fields = {k: v for k, v in row.items() if k not in ("id", "prompt", "messages", "grader")}
    return Example(id=str(row.get("id", where)), prompt=prompt, fields=fields, grader=grader, where=where)


def _chat_message(msg: Any, where: str) -> dict[str, str]:
    """One ``{role, content}`` message; OpenAI text-part lists joined, ``developer`` read as ``system``."""
    if not (isinstance(msg, dict) and isinstance(msg.get("role"), str) and "content" in msg):
        raise DataError(f"{where} must be {{'role': str, 'content': str}}")
    content = msg["content"]
    if isinstance(content, list):  # OpenAI content parts
        texts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") in ("text", "input_text")]
        if len(texts) != len(content) or not all(isinstance(t, str) for t in texts):
            raise DataError(f"{where}: only text content parts are supported ({{'type': 'text', 'text': str}}); "
                            "remove images and other parts")
        content = "".join(texts)
    if not isinstance(content, str):
        raise DataError(f"{where}: 'content' must be a string, got {type(content).__name__}")
    role = "system" if msg["role"] == "developer" else msg["role"]
    return {"role": role, "content": content}


def raise_collected(path: Path, errors: list[str], what: str) -> None:
    """One DataError listing the first ten of ``errors`` (every bad line or row of a file), if any;
    a single error is one line."""
    if len(errors) == 1:
        raise DataError(f"{path}: 1 {what}: {errors[0]}")
    if errors:
        shown = "\n  ".join(errors[:10])
        more = f"\n  ... and {len(errors) - 10} more" if len(errors) > 10 else ""
        raise DataError(f"{path}: {len(errors)} {what}:\n  {shown}{more}")


def read_jsonl(path: str | Path, *, require_prompt: bool = True) -> list[Example]:
    """Read a JSONL file of examples; every bad line is reported with its number.
    ``require_prompt=False``: see :func:`example_from_row`."""
    path = Path(path)
    check_data_file(path)
    examples: list[Example] = []
    errors: list[str] = []
    for lineno, row, bad in jsonl_lines(path):
        where = f"{path}:{lineno}"
        if bad:
            errors.append(f"{where}: {bad}")
            continue
        try:
            ex = example_from_row(row, where, require_prompt=require_prompt)
        except DataError as e:
            errors.append(str(e))
            continue
        ex_id = ex.id if "id" in row else f"{path.stem}-{lineno}"
        examples.append(Example(ex_id, ex.prompt, ex.fields, ex.grader, base_dir=str(path.parent.resolve()),
                                where=where))
    raise_collected(path, errors, "bad line(s)")
    if not examples:
        raise DataError(f"{path}: the dataset is empty; add at least one JSON object per line")
    return examples


def check_data_file(path: Path, missing: str | None = None) -> None:
    """A data file must be a regular file: a FIFO or a device (``/dev/zero``) would hang or never end.
    ``missing``: the one-line message when it does not exist."""
    try:
        check_regular_file(path)
    except FileNotFoundError:
        raise DataError(missing or f"{path}: no such file; check data.train_file / data.val_file") from None
    except InputFileError as e:
        raise DataError(str(e)) from None


DATASETS_SUFFIXES = (".json", ".parquet", ".csv")


def read_dataset(path: str | Path) -> list[Example]:
    """Examples from ``path``: a ``.jsonl`` file (:func:`read_jsonl`, no extra dependency), a
    ``.json`` / ``.parquet`` / ``.csv`` file, or a directory written by ``Dataset.save_to_disk``.
    The last three are read with Hugging Face ``datasets`` (optional: ``pip install 'rft[datasets]'``)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or directory; check data.train_file / data.val_file")
    if not path.is_dir():
        check_data_file(path)
    if path.suffix == ".jsonl":
        return read_jsonl(path)
    if path.is_file() and path.suffix not in DATASETS_SUFFIXES:
        raise DataError(f"{path}: unsupported file type {path.suffix!r}; use .jsonl, .json, .parquet, .csv or a "
                        "directory written by datasets' save_to_disk")
    rows = _datasets_rows(path)
    base_dir = str((path if path.is_dir() else path.parent).resolve())
    examples: list[Example] = []
    errors: list[str] = []
    for i, row in enumerate(rows):
        where = f"{path} row {i}"
        try:
            ex = example_from_row(row, where)
        except DataError as e:
            errors.append(str(e))
            continue
        ex_id = ex.id if row.get("id") is not None else f"{path.stem}-{i}"
        examples.append(Example(ex_id, ex.prompt, ex.fields, ex.grader, base_dir=base_dir, where=where))
    raise_collected(path, errors, "bad row(s) (rows count from 0)")
    if not examples:
        raise DataError(f"{path}: the dataset is empty; add at least one row")
    return examples


def _datasets_rows(path: Path) -> list[dict[str, Any]]:
    try:
        import datasets
    except ImportError:
        raise DataError(f"{path}: reading {'a saved dataset directory' if path.is_dir() else path.suffix + ' files'} "
                        "needs the datasets package, which is not installed; `pip install 'rft[datasets]'` or "
                        "convert the data to JSONL") from None
    if path.is_dir():
        try:
            ds = datasets.load_from_disk(str(path))
        except FileNotFoundError as e:
            raise DataError(f"{path}: not a directory written by save_to_disk ({e}); point data.train_file at one, "
                            "or at a .jsonl/.json/.parquet/.csv file") from None
        if isinstance(ds, datasets.DatasetDict):
            splits = ", ".join(ds)
            raise DataError(f"{path}: holds several splits ({splits}); point data.train_file at one of them, e.g. "
                            f"{path / next(iter(ds))} (and data.val_file at another)")
    else:
        builder = {".json": "json", ".parquet": "parquet", ".csv": "csv"}[path.suffix]
        try:
            ds = datasets.load_dataset(builder, data_files=str(path), split="train")
        except Exception as e:  # the builders raise many types (ArrowInvalid, DatasetGenerationError, ...)
            raise DataError(f"{path}: could not be read as {builder} ({type(e).__name__}: {e}); fix the file") from None
    # Arrow gives every row every column: a row of a mixed prompt/messages file has the other as None
    special = ("id", "prompt", "messages", "grader")
    return [{k: v for k, v in row.items() if not (k in special and v is None)} for row in ds.to_list()]


def require_chat_template(tokenizer: Any, examples: list[Example]) -> None:
    """Raise naming the first chat row when the tokenizer cannot render chat messages."""
    if getattr(tokenizer, "chat_template", None):
        return
    chat = [e for e in examples if not isinstance(e.prompt, str)]
    if chat:
        where = chat[0].where or f"example {chat[0].id!r}"
        raise DataError(f"{where}: the prompt is chat messages but the tokenizer has no chat template "
                        f"({len(chat)} such row(s)); use an instruct/chat model (its tokenizer_config.json has "
                        "'chat_template'), set one on the tokenizer, or give plain-text 'prompt' strings")


def write_jsonl(path: str | Path, examples: list[Example]) -> None:
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
