"""Files written so that nothing half-written looks valid, and read so that a hostile one costs one line.

* :func:`atomic_write_text`: written to a temporary name in the same directory, fsynced, then
  renamed (``os.replace`` is atomic on POSIX); on failure the temporary file is removed.
* :func:`atomic_directory`: a directory (a model, a checkpoint, an export) filled under
  ``<name>.tmp-*`` beside its final place and renamed into place only when the block completes; on
  failure it is removed and the previous directory, if any, is left as it was. A crash mid-write
  leaves a ``.tmp-`` directory, never a directory that looks complete.
* :func:`jsonl_lines`: the non-blank lines of a JSONL file as ``(line number, value, error)``, so
  that every reader's message can name ``file:line``.

Every file a user hands us (configs, data, job bodies, grader specs, completions) is read through
the gates below, so a hostile file gets a one-line :class:`InputFileError` naming the file and the
line within seconds, never a hang, a blown stack or a raw traceback:

* :func:`check_regular_file` / :func:`open_regular`: only regular files (after symlinks) are read;
  a FIFO, ``/dev/zero``, a socket or a directory is refused by its type, before any read (a FIFO is
  opened non-blocking, so it cannot hang the open either).
* :func:`read_text`: a whole document (config, job body, spec), at most ``MAX_DOCUMENT_BYTES``, strict
  UTF-8 (a bad byte is named by line and column).
* :func:`parse_json`: ``json.loads`` whose every failure is a reason, not an exception: malformed
  JSON, nesting past ``MAX_DEPTH`` (checked while decoding blows the C stack at ~1000 levels, and
  every later walk of the value would), integers past Python's digit limit.
* :func:`load_yaml`: ``yaml.safe_load`` plus: duplicate keys are an error (PyYAML keeps the last one
  silently), integers past the digit limit are an error at their line, and the loaded value may
  expand to at most ``MAX_NODES`` nodes counting every alias use (an alias bomb -- a "billion laughs"
  document of a few lines -- loads as shared references in no time, and then hangs whatever walks
  it: validation, error messages, ``config.yaml``) and nest at most ``MAX_DEPTH`` levels.
* :func:`jsonl_lines`: each line read in bytes, at most ``MAX_LINE_BYTES`` (a longer line is
  refused without being decoded or parsed, and reading stops there), decoded and parsed as above.

Not covered: a crash of the machine between the data and the directory fsync on exotic file
systems; JSON objects with duplicate keys in data rows (the last one wins, as in ``json``); data
files read by Hugging Face ``datasets`` (.json/.parquet/.csv) are type-checked here but parsed there.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import yaml

MAX_DOCUMENT_BYTES = 1 << 20  # a config, a job body or a spec file: far above any real one
MAX_LINE_BYTES = 8_000_000  # one JSONL row (a 50 MB row is refused before anything tokenizes it)
MAX_DEPTH = 100  # nesting of a JSON row or YAML document
MAX_NODES = 1_000_000  # values in a YAML document, every alias use counted


class InputFileError(ValueError):
    """A file that cannot be read as what it should be; the message names the file (and line) and the fix."""


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


@dataclass(frozen=True)
class BadLine:
    """Why a line is not a value: ``str()`` is the phrase a message shows after ``file:line:``."""

    msg: str  # json's own message for malformed JSON ("Expecting value"), else the whole phrase
    colno: int = 1
    line: int = 1  # within the text parsed (a JSONL line is one)
    malformed: bool = False  # json could not decode it

    def __str__(self) -> str:
        return f"invalid JSON ({self.msg} at column {self.colno})" if self.malformed else self.msg


def check_regular_file(path: Path, what: str = "") -> None:
    """Raise unless ``path`` is a regular file (symlinks followed); a missing path is FileNotFoundError."""
    label = f"{what} {path}" if what else str(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"{label}: no such file") from None
    except OSError as e:
        raise InputFileError(f"{label}: cannot be read ({e.strerror})") from None
    if not stat.S_ISREG(mode):
        kind = {stat.S_IFDIR: "a directory", stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFCHR: "a character device",
                stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket"}.get(stat.S_IFMT(mode), "not a regular file")
        raise InputFileError(f"{label}: is {kind}, not a regular file; give the path of a file")


def open_regular(path: Path, what: str = "") -> BinaryIO:
    """Open a regular file for binary reading; anything else is refused by its type before a read
    (opened non-blocking and checked with fstat, so a FIFO swapped in after a stat cannot hang us)."""
    check_regular_file(path, what)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        check_regular_file(path, what)  # raises: it changed under us
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def _utf8_problem(raw: bytes, e: UnicodeDecodeError) -> tuple[int, str]:
    line = raw.count(b"\n", 0, e.start) + 1
    col = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
    return line, f"not UTF-8 text (byte 0x{raw[e.start]:02x} at column {col}); save the file as UTF-8"


def read_text(path: Path, what: str = "", limit: int = MAX_DOCUMENT_BYTES) -> str:
    """A whole UTF-8 document of at most ``limit`` bytes from a regular file."""
    label = f"{what} {path}" if what else str(path)
    with open_regular(path, what) as f:
        raw = f.read(limit + 1)
    if len(raw) > limit:
        raise InputFileError(f"{label}: over {limit >> 20} MiB; this is not a config/spec/job file (check the path)")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line, problem = _utf8_problem(raw, e)
        raise InputFileError(f"{label}:{line}: {problem}") from None


def _too_deep_or_big(value: Any, subject: str, max_nodes: int | None = None) -> str | None:
    """Why ``value`` is too deep or (aliases expanded) too big to walk, or None. Stops at the bound."""
    stack, seen = [(value, 1)], 0
    while stack:
        node, depth = stack.pop()
        seen += 1
        if max_nodes is not None and seen > max_nodes:
            return f"{subject} expands to over {max_nodes:,} values (an alias bomb, or a recursive alias)"
        if depth > MAX_DEPTH:
            return f"{subject} is nested deeper than {MAX_DEPTH} levels"
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children)
    return None


class _NonFinite(ValueError):
    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.token = token


def _refuse_constant(token: str) -> float:
    """json's hook for NaN, Infinity and -Infinity, which Python's json accepts and JSON does not."""
    raise _NonFinite(token)


def _finite_float(token: str) -> float:
    value = float(token)
    if value != value or value in (float("inf"), float("-inf")):  # 1e400 overflows to inf
        raise _NonFinite(token)
    return value


def parse_json(text: str | bytes, finite: bool = False) -> tuple[Any, BadLine | None]:
    """``(value, None)``, or ``(None, why)`` for text that is not JSON or is too deep to use; with
    ``finite`` also for a number that is not finite (NaN, Infinity, 1e400), named by its line."""
    hooks: dict[str, Any] = {"parse_constant": _refuse_constant, "parse_float": _finite_float} if finite else {}
    try:
        value = json.loads(text, **hooks)
    except _NonFinite as e:
        s = text if isinstance(text, str) else text.decode("utf-8", "replace")
        line = s.count("\n", 0, max(s.find(e.token), 0)) + 1
        return None, BadLine(f"{e.token} is not a finite number (NaN and Infinity are not JSON, and a number past "
                             "1.8e308 overflows); give a finite value", line=line)
    except json.JSONDecodeError as e:
        return None, BadLine(e.msg, e.colno, e.lineno, malformed=True)
    except RecursionError:
        return None, BadLine(f"the value is nested deeper than {MAX_DEPTH} levels")
    except ValueError as e:  # an integer past sys.get_int_max_str_digits()
        return None, BadLine(f"unreadable JSON value ({str(e).split(';')[0]})")
    too = _too_deep_or_big(value, "the value")
    return (None, BadLine(too)) if too else (value, None)


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and integers it cannot convert, at their line."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                if isinstance(key, (str, int, float, bool, type(None))):
                    if key in seen:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"duplicate key {key!r} (YAML would keep only the last; remove one)",
                            key_node.start_mark)
                    seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: Any) -> int:
        try:
            return super().construct_yaml_int(node)
        except ValueError as e:
            raise yaml.constructor.ConstructorError(None, None, str(e).split(";")[0], node.start_mark) from None


_StrictLoader.add_constructor("tag:yaml.org,2002:int", _StrictLoader.construct_yaml_int)


def load_yaml(text: str, where: str) -> Any:
    """``yaml.safe_load`` with the checks above; errors read ``where:line:column: problem``."""
    try:
        value = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f"{where}:{mark.line + 1}:{mark.column + 1}" if mark else where
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise InputFileError(f"{at}: malformed YAML ({problem}); fix it at that line") from None
    except RecursionError:
        raise InputFileError(f"{where}: the YAML is nested deeper than {MAX_DEPTH} levels") from None
    too = _too_deep_or_big(value, "the YAML", MAX_NODES)
    if too:
        raise InputFileError(f"{where}: {too}; write the values out")
    return value


def jsonl_lines(path: Path, max_bytes: int = MAX_LINE_BYTES) -> Iterator[tuple[int, Any, BadLine | None]]:
    """``(line number, parsed value, None)`` for each non-blank line of ``path``, or
    ``(line number, None, why)`` for a line that is not JSON (or not UTF-8, too deep, ...): the
    caller decides whether that is an error to report (a data file) or a torn last line to stop at
    (a log). A line over ``max_bytes`` bytes is the last one yielded: it is not kept or parsed."""
    with open_regular(path) as f:
        lineno = 0
        while True:
            raw = f.readline(max_bytes + 1)
            if not raw:
                return
            lineno += 1
            if len(raw) > max_bytes and not raw.endswith(b"\n"):
                yield lineno, None, BadLine(f"the line is over {max_bytes:,} bytes; shorten the row (reading "
                                            "stopped here)")
                return
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                yield lineno, None, BadLine(_utf8_problem(raw, e)[1])
                continue
            value, bad = parse_json(text)
            yield lineno, value, bad
