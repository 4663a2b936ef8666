"""Files written so that nothing half-written looks valid, and JSONL read with line numbers.

* :func:`atomic_write_text`: written to a temporary name in the same directory, fsynced, then
  renamed (``os.replace`` is atomic on POSIX); on failure the temporary file is removed.
* :func:`atomic_directory`: a directory (a model, a checkpoint, an export) filled under
  ``<name>.tmp-*`` beside its final place and renamed into place only when the block completes; on
  failure it is removed and the previous directory, if any, is left as it was. A crash mid-write
  leaves a ``.tmp-`` directory, never a directory that looks complete.
* :func:`jsonl_lines`: the non-blank lines of a JSONL file as ``(line number, value, error)``, so
  that every reader's message can name ``file:line``.

Not covered: a crash of the machine between the data and the directory fsync on exotic file
systems.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_directory(out: Path) -> Iterator[Path]:
    """``with atomic_directory(out) as tmp:`` fill ``tmp``; when the block ends it becomes ``out`` (an
    existing ``out`` is moved aside, replaced, then removed); when the block raises, ``tmp`` is removed."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f"{out.name}.tmp-"))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        old = out.with_name(f"{out.name}.old-{os.getpid()}")
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old)
    else:
        os.replace(tmp, out)


def jsonl_lines(path: Path) -> Iterator[tuple[int, Any, json.JSONDecodeError | None]]:
    """``(line number, parsed value, None)`` for each non-blank line of ``path``, or
    ``(line number, None, the decode error)`` for a line that is not JSON: the caller decides
    whether that is an error to report (a data file) or a torn last line to stop at (a log)."""
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                value, error = json.loads(line), None
            except json.JSONDecodeError as e:
                value, error = None, e
            yield lineno, value, error
