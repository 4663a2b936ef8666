"""The run directory: everything a run produces, written so that nothing half-written looks valid.

```
runs/NAME/
  config.yaml        the resolved config, exactly what ran
  metrics.jsonl      one JSON object per step and per validation, append-only
  samples/           step_N.jsonl: sampled completions with their grades
  checkpoints/       step_N/ (model, optimizer, scheduler, RNG, data cursor); best/; `latest`
```

Atomicity (:mod:`rft.files`): files are written to a temporary name in the same directory, fsynced,
then renamed. A checkpoint is assembled in ``step_N.tmp-*`` and renamed to ``step_N`` only when
complete (:func:`rft.files.atomic_directory`), then ``latest`` is rewritten; a crash at any point
leaves the previous checkpoint as the one ``latest`` names.

The run's name is one directory inside ``output_dir``: :func:`run_name_problem` is the one check,
used by the config's ``name`` (YAML or ``--set``) and an OpenAI job's ``suffix``; the config also
refuses a name that is a symlink out of ``output_dir``.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from pathlib import Path
from typing import Any

from rft.files import atomic_write_text, jsonl_lines

MAX_NAME_CHARS = 100
_NAME_CHARS = re.compile(r"[A-Za-z0-9._-]+")


def run_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a run directory inside ``output_dir`` (the one check for every way a
    name is set: YAML ``name``, ``--set name=``, a job body's ``suffix``), or None."""
    if not name:
        return "is empty; give the run a name, e.g. name: my-run"
    if name in (".", ".."):
        return "is not a directory of its own (it would write into or above output_dir); pick a name"
    if len(name) > MAX_NAME_CHARS:
        return f"is {len(name)} characters; at most {MAX_NAME_CHARS}"
    if not _NAME_CHARS.fullmatch(name):
        return ("has characters other than letters, digits, '.', '_', '-' (a path separator, NUL, space, ...); "
                "the name is one directory inside output_dir")
    return None


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN/Infinity; readers see null
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


class RunDir:
    """Paths and writers for one run directory. ``sinks`` (:mod:`rft.report.loggers`: TensorBoard,
    W&B, JSON lines) get every record :meth:`log_metrics` appends, after it is on disk."""

    def __init__(self, path: str | Path, sinks: list[Any] | None = None) -> None:
        self.path = Path(path)
        self.sinks = list(sinks or [])

    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def samples_dir(self) -> Path:
        return self.path / "samples"

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / "checkpoints"

    def create(self, config_yaml: str, *, overwrite: bool) -> None:
        # a doctor.json alone (written by `rft doctor` before the run) does not make it a run
        if self.path.exists() and any(p.name != "doctor.json" for p in self.path.iterdir()):
            if not overwrite:
                raise FileExistsError(
                    f"run directory {self.path} already exists; resume it with `rft train --resume {self.path}`, "
                    "pick another `name`, or pass --overwrite"
                )
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.config_path, config_yaml)

    # -- metrics -----------------------------------------------------------------------------
    def log_metrics(self, record: dict[str, Any]) -> None:
        clean = _jsonable(record)
        line = json.dumps(clean, sort_keys=True)
        with self.metrics_path.open("a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())
        for sink in self.sinks:
            sink.log(clean)

    def close(self) -> None:
        """Flush and close the sinks (metrics.jsonl needs no closing)."""
        for sink in self.sinks:
            sink.close()

    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_path.exists():
            return []
        out = []
        for _, record, torn in jsonl_lines(self.metrics_path):
            if torn:
                break  # a torn last line from a crash: everything after it is dropped
            out.append(record)
        return out

    def truncate_metrics(self, last_step: int) -> None:
        """Keep the records of steps <= last_step (used on resume: later steps will be redone)."""
        kept = [r for r in self.read_metrics() if r.get("step", 0) <= last_step]
        atomic_write_text(self.metrics_path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in kept))

    def write_samples(self, name: str, rows: list[dict[str, Any]]) -> None:
        text = "".join(json.dumps(_jsonable(r), ensure_ascii=False) + "\n" for r in rows)
        atomic_write_text(self.samples_dir / f"{name}.jsonl", text)

    # -- checkpoints -------------------------------------------------------------------------
    def mark_latest(self, name: str) -> None:
        """Point ``checkpoints/latest`` at the complete checkpoint ``name`` (what a resume loads)."""
        atomic_write_text(self.checkpoints_dir / "latest", name + "\n")

    def latest_checkpoint(self) -> Path | None:
        pointer = self.checkpoints_dir / "latest"
        if not pointer.exists():
            return None
        path = self.checkpoints_dir / pointer.read_text().strip()
        return path if path.is_dir() else None

    def prune_checkpoints(self, keep_last: int) -> None:
        steps = sorted(p for p in self.checkpoints_dir.glob("step_*") if p.is_dir() and ".tmp-" not in p.name)
        latest = self.latest_checkpoint()
        for p in steps[: max(0, len(steps) - keep_last)]:
            if p != latest:
                shutil.rmtree(p)
        for p in self.checkpoints_dir.glob("*.tmp-*"):
            shutil.rmtree(p, ignore_errors=True)  # leftovers of a crash mid-write; never valid
