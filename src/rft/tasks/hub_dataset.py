"""``data.dataset``: a dataset read with Hugging Face ``datasets`` -- by hub name, or a local
dataset directory or data file through the same door -- and mapped column by column onto rows.

Where the records come from (:func:`open_splits`), as ``datasets`` itself resolves a path:

- a local directory written by ``save_to_disk`` (``dataset_dict.json``, or ``state.json``):
  ``datasets.load_from_disk``; a saved ``Dataset`` is one split, ``train``;
- another local directory: ``datasets.load_dataset(DIR)``, a folder of data files whose names give
  the splits (``train.jsonl``, ``test.parquet``, ``data/train-00000-of-00001.parquet``, ...);
- a ``.jsonl``/``.json``/``.parquet``/``.csv`` file: one split, ``train``;
- else a hub dataset name (``ORG/NAME``, spelled as ``huggingface_hub.utils.validate_repo_id``
  accepts): ``datasets.load_dataset(path, name, revision=...)`` into the datasets cache
  (``HF_DATASETS_CACHE``, else ``HF_HOME``/datasets), with ``HF_TOKEN`` for private ones. Offline
  (``HF_DATASETS_OFFLINE=1``, else ``HF_HUB_OFFLINE=1``) it reads that cache only: ``datasets``
  then looks for ``ORG___NAME/<config>/<version>/<hash>/`` holding the Arrow files a previous
  ``load_dataset`` prepared (the hub cache's ``datasets--ORG--NAME`` alone is not enough, as in
  ``datasets`` itself). ``datasets`` reads these variables once, at import; rft reads them at each
  load, so a notebook or a test that sets them later is honoured (the cache as ``cache_dir``, the
  offline switch by setting ``datasets.config.HF_HUB_OFFLINE`` for the duration of the call).
  Not cached and offline: one line naming the name, the cache and the command that fetches it.

How a record becomes a row (:func:`split_examples_of`), checked against the dataset's columns before
any row is read, each error one line naming the dataset's columns: the prompt is the text of
``prompt_field`` (default ``prompt``), the chat messages of ``messages_field`` (default
``messages`` when there is no ``prompt`` column), or ``template`` filled with the row's columns
(``chat: true`` makes prompt text a user turn); the gold answer of ``answer_field`` (default
``answer``; null for none) becomes the row's ``answer``, after the text following the last line that
starts with ``answer_marker`` when one is set (GSM8K's ``#### 72`` gives ``72``); every other
column stays on the row, where graders read it. An ``id`` column names the row.

Rows are untrusted: at most ``MAX_ROWS`` per split unless ``max_rows`` says how many to read; a
row must be JSON data (no bytes, NaN or infinities) of at most ``MAX_LINE_BYTES`` as JSON (a
JSONL line's bound); a prompt or template column that is not text, a blank prompt, a missing or
non-text answer (numbers are read as text) or a missing marker is an error naming the row
(``openai/gsm8k split 'train' row 12: ...``) and how many other rows fail. A hub dataset's
``grader`` column is refused: a row's grader spec chooses code to run, and is honoured only from
local data, as in ``data.train_file``.

Not covered: streaming (a split is read whole, up to ``max_rows``), dataset scripts (``datasets``
dropped them), image and audio columns, ``data_files``/``data_dir`` selections inside a hub
repository, and the file-type gate of :mod:`rft.files` on the files inside a local folder (a
``.jsonl`` given as ``path`` is checked; the files of a folder are ``datasets``' to open).
"""

from __future__ import annotations

import json
import math
import os
from contextlib import contextmanager
from pathlib import Path
from string import Formatter
from typing import Any, Iterator

from rft.config.datasets import DatasetConfig, template_fields
from rft.data import DataError, Example, check_data_file, example_from_row, split_examples
from rft.files import MAX_LINE_BYTES

MAX_ROWS = 1_000_000  # per split, unless data.dataset.max_rows says how many to read
FILE_BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
_TRUE = ("1", "ON", "YES", "TRUE")


def load_dataset_splits(cfg: DatasetConfig, val_size: int, seed: int) -> tuple[list[Example], list[Example]]:
    """(train, val) of ``data.dataset``: ``split`` and ``val_split``, or ``val_size`` rows held out."""
    splits, hub, base_dir = open_splits(cfg)
    train = split_examples_of(splits, cfg.split, cfg, hub, base_dir)
    if cfg.val_split is None:
        return split_examples(train, val_size, seed)
    return train, split_examples_of(splits, cfg.val_split, cfg, hub, base_dir)


def _datasets(path: str) -> Any:
    try:
        import datasets
    except ImportError:
        raise DataError(f"data.dataset.path={path!r}: reading datasets needs the datasets package, which is not "
                        "installed; `pip install 'rft[datasets]'`, or give data.train_file a .jsonl file") from None
    return datasets


def offline() -> bool:
    """``HF_DATASETS_OFFLINE`` when set, else ``HF_HUB_OFFLINE``, as ``datasets`` reads them, but now."""
    value = os.environ.get("HF_DATASETS_OFFLINE")
    if value is None:
        value = os.environ.get("HF_HUB_OFFLINE", "")
    return value.strip().upper() in _TRUE


def datasets_cache() -> Path:
    """Where ``datasets`` keeps prepared datasets: ``HF_DATASETS_CACHE``, else ``HF_HOME``/datasets."""
    if os.environ.get("HF_DATASETS_CACHE"):
        where = os.environ["HF_DATASETS_CACHE"]
    else:
        where = os.path.join(os.environ.get("HF_HOME") or os.path.join("~", ".cache", "huggingface"), "datasets")
    return Path(os.path.expandvars(os.path.expanduser(where)))


@contextmanager
def _offline_now(datasets: Any) -> Iterator[bool]:
    """``datasets.config.HF_HUB_OFFLINE`` as the environment says now (it was read at import)."""
    before = datasets.config.HF_HUB_OFFLINE
    datasets.config.HF_HUB_OFFLINE = off = bool(before) or offline()
    try:
        yield off
    finally:
        datasets.config.HF_HUB_OFFLINE = before


def fetch_command(cfg: DatasetConfig) -> str:
    args = ", ".join(repr(a) for a in (cfg.path, cfg.name) if a is not None)
    rev = f", revision={cfg.revision!r}" if cfg.revision else ""
    return f'python -c "import datasets; datasets.load_dataset({args}{rev})"'


def _one_line(e: BaseException) -> str:
    return " ".join(f"{type(e).__name__}: {e}".split())[:500]


def open_splits(cfg: DatasetConfig) -> tuple[dict[str, Any], bool, str | None]:
    """({split name: datasets.Dataset}, whether it came from the hub, the local directory rows resolve
    relative paths against (None for the hub))."""
    datasets = _datasets(cfg.path)
    local = Path(cfg.path).expanduser()
    where = f"data.dataset.path={cfg.path!r}"
    if local.is_dir():
        marks = ("dataset_dict.json", "state.json")
        try:
            if any((local / m).is_file() for m in marks):
                loaded = datasets.load_from_disk(str(local))
            else:
                loaded = datasets.load_dataset(str(local), cfg.name, cache_dir=str(datasets_cache()))
        except Exception as e:  # the builders raise many types (FileNotFoundError, ArrowInvalid, ValueError, ...)
            raise DataError(f"{where}: datasets could not read the directory ({_one_line(e)}); point it at a "
                            "save_to_disk directory or a folder of .jsonl/.json/.parquet/.csv files") from None
        return _as_splits(loaded), False, str(local.resolve())
    if local.exists() or local.suffix in FILE_BUILDERS:
        check_data_file(local, f"{where}: no such file")
        builder = FILE_BUILDERS.get(local.suffix)
        if builder is None:
            raise DataError(f"{where}: unsupported file type {local.suffix!r}; use .jsonl, .json, .parquet or .csv")
        try:
            loaded = datasets.load_dataset(builder, data_files=str(local), cache_dir=str(datasets_cache()))
        except Exception as e:
            raise DataError(f"{where}: could not be read as {builder} ({_one_line(e)}); fix the file") from None
        return _as_splits(loaded), False, str(local.resolve().parent)
    return _as_splits(_from_hub(datasets, cfg)), True, None


def _from_hub(datasets: Any, cfg: DatasetConfig) -> Any:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    where = f"data.dataset.path={cfg.path!r}"
    try:
        validate_repo_id(cfg.path)
    except HFValidationError:
        raise DataError(f"{where}: no such file or directory, and not a hub dataset name (ORG/NAME); check the "
                        "path") from None
    cache = datasets_cache()
    with _offline_now(datasets) as off:
        try:
            return datasets.load_dataset(cfg.path, cfg.name, revision=cfg.revision, cache_dir=str(cache))
        except ConnectionError:
            why = "HF_DATASETS_OFFLINE/HF_HUB_OFFLINE is set" if off else "the hub cannot be reached"
            raise DataError(f"{where}: not in the datasets cache ({cache}) and {why}; fetch it first with "
                            f"`{fetch_command(cfg)}` where there is network (same HF_HOME / HF_DATASETS_CACHE), "
                            "or give a local dataset directory or file") from None
        except datasets.exceptions.DatasetNotFoundError as e:
            raise DataError(f"{where}: {_one_line(e)}; check the name, or set HF_TOKEN (`hf auth login`) for a "
                            "private or gated dataset") from None
        except Exception as e:  # a config name that is not there, a revision, a broken cache, ...
            raise DataError(f"{where}{f' name={cfg.name!r}' if cfg.name else ''}: datasets could not load it "
                            f"({_one_line(e)})") from None


def _as_splits(loaded: Any) -> dict[str, Any]:
    return dict(loaded) if hasattr(loaded, "keys") else {"train": loaded}


def split_examples_of(splits: dict[str, Any], split: str, cfg: DatasetConfig, hub: bool,
                      base_dir: str | None) -> list[Example]:
    """The rows of ``split``, mapped by ``cfg``; the columns are checked before any row is read."""
    field = "split" if split == cfg.split else "val_split"
    if split not in splits:
        raise DataError(f"data.dataset.{field} {split!r} is not a split of {cfg.path} (splits: {', '.join(splits)});"
                        f" set data.dataset.{field}")
    ds = splits[split]
    source = _prompt_source(cfg, list(ds.column_names), hub)
    count = len(ds) if cfg.max_rows is None else min(len(ds), cfg.max_rows)
    if count > MAX_ROWS:
        raise DataError(f"{cfg.path} split {split!r} has {len(ds):,} rows, over {MAX_ROWS:,}; set data.dataset."
                        "max_rows to read the first N")
    label = f"{cfg.path} split {split!r}"
    examples: list[Example] = []
    errors: list[str] = []
    for i, record in enumerate(ds.select(range(count)).to_list()):
        try:
            examples.append(_example(record, f"{label} row {i}", f"{split}-{i}", cfg, source, base_dir))
        except DataError as e:
            errors.append(str(e))
    if errors:
        more = f" ({len(errors) - 1} more bad row(s); rows count from 0)" if len(errors) > 1 else ""
        raise DataError(errors[0] + more)
    if not examples:
        raise DataError(f"{label} has no rows; pick another split")
    return examples


def _prompt_source(cfg: DatasetConfig, columns: list[str], hub: bool) -> tuple[str, str | list[str]]:
    """("prompt" | "messages", column) or ("template", its columns), with every named column checked."""
    shown = ", ".join(columns[:30]) + (f", ... ({len(columns)} in all)" if len(columns) > 30 else "")

    def need(key: str, column: str) -> None:
        if column not in columns:
            raise DataError(f"data.dataset.{key} {column!r} is not a column of {cfg.path} (columns: {shown}); "
                            f"set data.dataset.{key}")

    if cfg.answer_field is not None:
        need("answer_field", cfg.answer_field)
    if hub and "grader" in columns:
        raise DataError(f"{cfg.path} has a 'grader' column: rft takes no grader spec from a hub dataset's rows (it "
                        "chooses code to run); set grader: in the config, or save the dataset locally and review it")
    if cfg.template is not None:
        for column in template_fields(cfg.template):
            need("template", column)
        return "template", template_fields(cfg.template)
    if cfg.prompt_field is not None:
        need("prompt_field", cfg.prompt_field)
        return "prompt", cfg.prompt_field
    if cfg.messages_field is not None:
        need("messages_field", cfg.messages_field)
        return "messages", cfg.messages_field
    if "prompt" in columns and "messages" in columns:
        return "either", ""  # Arrow's layout of mixed rows: each row has one, the other None
    for kind in ("prompt", "messages"):
        if kind in columns:
            return kind, kind
    raise DataError(f"data.dataset: {cfg.path} has no 'prompt' or 'messages' column (columns: {shown}); set "
                    "data.dataset.template (e.g. '{question}'), prompt_field or messages_field")


def _text(value: Any, where: str, column: str, numbers: bool) -> str:
    if isinstance(value, str):
        return value
    if numbers and isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return str(value)
    kind = "empty (null)" if value is None else f"a {type(value).__name__}"
    raise DataError(f"{where}: column {column!r} is {kind}, not text; fix the row or map another column")


def _fill(template: str, record: dict[str, Any], where: str) -> str:
    out = []
    for literal, name, _, _ in Formatter().parse(template):
        out.append(literal)
        if name is not None:
            out.append(_text(record.get(name), where, name, numbers=True))
    return "".join(out)


def _gold(record: dict[str, Any], cfg: DatasetConfig, where: str) -> str:
    column = cfg.answer_field
    assert column is not None
    value = record.get(column)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise DataError(f"{where}: the answer (column {column!r}) is missing; fix or drop the row")
    gold = _text(value, where, column, numbers=True)
    if cfg.answer_marker is not None:
        marker = cfg.answer_marker
        lines = [ln.strip()[len(marker.strip()):] for ln in gold.splitlines() if ln.strip().startswith(marker.strip())]
        if not lines or not lines[-1].strip():
            raise DataError(f"{where}: column {column!r} has no line starting with {marker!r} and an answer after "
                            f"it (answer_marker); fix the row or unset data.dataset.answer_marker")
        gold = lines[-1].strip()
    return gold


def _example(record: dict[str, Any], where: str, default_id: str, cfg: DatasetConfig,
             source: tuple[str, str | list[str]], base_dir: str | None) -> Example:
    try:
        size = len(json.dumps(record, ensure_ascii=False, allow_nan=False).encode())
    except (TypeError, ValueError) as e:
        raise DataError(f"{where}: not JSON data ({_one_line(e)}); rft rows carry text, numbers, lists and "
                        "objects (no bytes, images, NaN or infinities)") from None
    if size > MAX_LINE_BYTES:
        raise DataError(f"{where}: the row is {size:,} bytes as JSON, over {MAX_LINE_BYTES:,}; shorten or drop it")
    kind, column = source
    if kind == "either":
        kind = column = "prompt" if record.get("prompt") is not None else "messages"
    fields = {k: v for k, v in record.items() if k != "id" and (kind == "template" or k != column)}
    if kind == "template":
        assert cfg.template is not None
        prompt: Any = _fill(cfg.template, record, where)
    elif kind == "prompt":
        assert isinstance(column, str)
        prompt = _text(record.get(column), where, column, numbers=False)
    else:
        prompt = record.get(column) if isinstance(column, str) else None
    if kind != "messages" and not prompt.strip():
        raise DataError(f"{where}: the prompt is blank; fix or drop the row")
    if kind != "messages" and cfg.chat:
        prompt = [{"role": "user", "content": prompt}]
    if cfg.answer_field is not None:
        fields["answer"] = _gold(record, cfg, where)
    key = "messages" if kind == "messages" else "prompt"
    fields.pop("prompt", None), fields.pop("messages", None)
    ex = example_from_row({key: prompt, **fields}, where)
    row_id = record.get("id")
    ex_id = str(row_id) if isinstance(row_id, (str, int)) and not isinstance(row_id, bool) else default_id
    return Example(ex_id, ex.prompt, ex.fields, ex.grader, base_dir=base_dir, where=where)
