"""``rft grade``: grade completions with a grader spec before spending compute on training.

    rft grade --grader SPEC --data examples.jsonl [--completions completions.jsonl] [--out grades.jsonl]

- SPEC is a JSON/YAML file or inline JSON (``'{"type": "math"}'``).
- Completions come from a ``completion`` field (a string) in each data row, or from a parallel
  JSONL file with one line per data row, each a JSON string or an object with ``completion``.
- A data row needs no ``prompt`` (OpenAI's ``/graders/run`` takes an item and a sample): a row
  without one is graded with the empty prompt, so prompt-reading checks (the math grader's echo
  guard, ``{{ item.prompt }}``) find nothing to compare. Training data still requires a prompt.
- Prints a table (row, id, score, passed, reason) and a summary (mean, pass rate, skipped, errors,
  timeouts, per-grader metrics); "passed" there is what training and evaluation count
  (:func:`rft.graders.base.passed_of`: the grader's verdict, else full score; "skip" for a row the
  grader could not judge). ``--out`` writes one JSON object per row (``line, id, score, passed,
  reason, details``), atomically, with the grader's own ``passed`` (None when it gives no verdict).

Exit status: 0 when everything was graded (whatever the scores), 2 for bad input -- a bad spec, a
missing file, a bad row -- with a one-line message that names the field and the line, never a
traceback. Not covered: several completions per row (write one row per completion).

    rft grade --task NAME_OR_CONFIG --reference [--set data.task.K=V] [--limit N]

grades a built-in task's own reference answers (every example's ``solution``, else its ``answer``:
:data:`REFERENCE_FIELDS`), validation and training examples alike, through the same
:class:`GraderPool` path as training, with the task's grader (or the config's ``grader:``). A task
whose own answers fail its grader is broken: each failure is printed with its reason and the exit
status is 1. NAME builds the task with its defaults and ``val_size=1`` (every example is graded,
so the split does not matter); a config file uses its ``data.task``. What a task says about itself
(HumanEval: which problems did not convert, and why) is printed first.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rft.config.base import SpecError
from rft.data import DataError, Example, read_jsonl
from rft.files import (
    InputFileError,
    atomic_write_text,
    jsonl_lines,
    load_yaml,
    parse_json,
    read_text,
)
from rft.graders.base import Grade, passed_of
from rft.graders.pool import GraderPool
from rft.graders.registry import check_specs

REFERENCE_FIELDS = ("solution", "answer")  # the full-score completion text of a built-in task's row


class InputError(ValueError):
    """Bad input to ``rft grade``; the message is shown as one line."""


@dataclass(frozen=True)
class Row:
    line: int
    example: Example
    completion: str


def load_spec(text: str) -> dict[str, Any]:
    """A spec from a file path (.json/.yaml/.yml) or inline JSON."""
    path = Path(text)
    stripped = text.strip()
    if not stripped.startswith("{") and path.exists():
        try:
            loaded = load_yaml(read_text(path, "--grader"), f"--grader {text}")
        except InputFileError as e:
            raise InputError(str(e)) from None
    elif stripped.startswith("{"):
        loaded, bad = parse_json(stripped)
        if bad:
            raise InputError(f"--grader: inline JSON is invalid: {bad}")
    else:
        raise InputError(f"--grader {text!r}: no such file, and not inline JSON (inline specs start with '{{')")
    if not isinstance(loaded, dict) or "type" not in loaded:
        raise InputError(f"--grader: a spec must be an object with a 'type' field, got {str(loaded)[:60]}")
    return loaded


def _data_lines(path: Path) -> list[int]:
    """Line numbers of the non-blank lines, in the order ``read_jsonl`` returns their examples."""
    return [n for n, _, _ in jsonl_lines(path)]


def _read_completions(path: Path, expected: int) -> list[str]:
    if not path.exists():
        raise InputError(f"--completions {path}: no such file")
    out: list[str] = []
    for lineno, value, bad in jsonl_lines(path):
        if bad:
            raise InputError(f"{path}:{lineno}: {bad}")
        if isinstance(value, dict):
            value = value.get("completion")
        if not isinstance(value, str):
            raise InputError(f"{path}:{lineno}: expected a JSON string or an object with a string 'completion'")
        out.append(value)
    if len(out) != expected:
        raise InputError(f"{path}: {len(out)} completions for {expected} data rows; give one line per data row")
    return out


def load_rows(data: str, completions: str | None) -> list[Row]:
    path = Path(data)
    try:
        examples = read_jsonl(path, require_prompt=False)  # grading reads an item and a sample, no prompt
    except DataError as e:
        raise InputError(" ".join(str(e).split())) from None
    lines = _data_lines(path)
    if completions is not None:
        texts = _read_completions(Path(completions), len(examples))
        return [Row(line, ex, text) for line, ex, text in zip(lines, examples, texts)]
    rows = []
    for line, ex in zip(lines, examples):
        text = ex.fields.get("completion")
        if not isinstance(text, str):
            raise InputError(f"{path}:{line}: field 'completion' is missing or not a string; add it or pass --completions")
        fields = {k: v for k, v in ex.fields.items() if k != "completion"}
        rows.append(Row(line, Example(ex.id, ex.prompt, fields, ex.grader, ex.base_dir, ex.where), text))
    return rows


def write_grades(path: Path, rows: list[Row], grades: list[Grade]) -> None:
    text = "".join(
        json.dumps(
            {"line": r.line, "id": r.example.id, "score": g.score, "passed": g.passed, "reason": g.reason, "details": g.details},
            ensure_ascii=False,
            default=str,
        )
        + "\n"
        for r, g in zip(rows, grades)
    )
    atomic_write_text(path, text)


def render(console: Console, rows: list[Row], grades: list[Grade], stats: dict[str, float], seconds: float, quiet: bool) -> None:
    if not quiet:
        table = Table(show_lines=False)
        for name, justify in (("line", "right"), ("id", "left"), ("score", "right"), ("passed", "center"), ("reason", "left")):
            table.add_column(name, justify=justify)  # type: ignore[arg-type]
        for row, grade in zip(rows, grades):
            passed = "[dim]skip[/]" if grade.skipped else "[green]yes[/]" if passed_of(grade) else "[red]no[/]"
            reason = grade.reason if len(grade.reason) <= 100 else grade.reason[:97] + "..."
            table.add_row(str(row.line), escape(row.example.id[:24]), f"{grade.score:.3f}", passed, escape(reason))
        console.print(table)
    n = len(grades)
    mean = sum(g.score for g in grades) / n
    passed = sum(passed_of(g) for g in grades)
    skipped = sum(g.skipped for g in grades)
    errors = sum(g.errored for g in grades)
    timeouts = sum(bool(g.details.get("timeout")) for g in grades)
    console.print(
        f"{n} graded in {seconds:.2f}s: mean score {mean:.3f}, passed {passed}/{n} ({passed / n:.1%}), "
        f"skipped {skipped}, errors {errors}, timeouts {timeouts}"
    )
    if stats:
        console.print("  " + ", ".join(f"{k}={v:.4g}" for k, v in sorted(stats.items())), highlight=False)


def grade_command(grader: str, data: str, completions: str | None, out: str | None, workers: int, quiet: bool) -> int:
    """Run ``rft grade``; returns the exit status (0 ok, 2 bad input)."""
    console = Console()
    try:
        spec = load_spec(grader)
        rows = load_rows(data, completions)
        check_specs(spec, [r.example for r in rows])
    except (InputError, InputFileError, SpecError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    with GraderPool(spec, workers=workers) as pool:
        grades = pool.grade([r.completion for r in rows], [r.example for r in rows])
        stats = pool.pop_stats().metrics()
    seconds = time.perf_counter() - t0
    render(console, rows, grades, stats, seconds, quiet)
    if out is not None:
        write_grades(Path(out), rows, grades)
        console.print(f"wrote {len(grades)} grades to {out}")
    return 0


def reference_rows(task: str, overrides: list[str], limit: int | None) -> tuple[list[Row], dict[str, Any], Any]:
    """(a row per example with its reference answer, the grader spec, the config) of ``task``."""
    from rft.config import load_config
    from rft.tasks import TASKS, load_splits

    if Path(task).suffix in (".yaml", ".yml"):
        cfg = load_config(task, overrides)
        if cfg.data.task is None:
            raise InputError(f"--task {task}: the config has no data.task (a built-in task) to take references from")
    elif task in TASKS:
        cfg = load_config(None, [f"data.task.name={task}", "data.task.val_size=1", *overrides])
    else:
        raise InputError(f"--task {task!r}: not a built-in task ({', '.join(TASKS)}) nor a .yaml config file")
    train, val, task_spec = load_splits(cfg.data, cfg.seed)
    rows = []
    for n, ex in enumerate(val + train, start=1):
        ref = next((ex.get(f) for f in REFERENCE_FIELDS if isinstance(ex.get(f), str)), None)
        if ref is not None:
            rows.append(Row(n, ex, ref))
    if not rows:
        raise InputError(f"--task {task}: its examples have no {' or '.join(REFERENCE_FIELDS)} field to grade")
    return rows[:limit] if limit else rows, cfg.grader or task_spec, cfg


def reference_command(task: str, overrides: list[str], limit: int | None, workers: int, quiet: bool) -> int:
    """``rft grade --task T --reference``: 0 when every reference passes, 1 when one fails, 2 for bad input."""
    from rft.tasks import NOTES

    console = Console()
    try:
        rows, spec, cfg = reference_rows(task, overrides, limit)
        check_specs(spec, [r.example for r in rows], f"--task {task}")
    except (InputError, SpecError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for line in NOTES.get(cfg.data.task.name, lambda: [])():
        console.print(escape(line), highlight=False)
    t0 = time.perf_counter()
    with GraderPool(spec, workers=workers, timeout_s=cfg.grading.timeout_s) as pool:
        grades = pool.grade([r.completion for r in rows], [r.example for r in rows])
        stats = pool.pop_stats().metrics()
    failed = [(r, g) for r, g in zip(rows, grades) if not passed_of(g)]
    for row, grade in failed:
        console.print(f"[red]fails[/] {escape(row.example.id)}: {escape(grade.reason[:200])}", highlight=False)
    render(console, rows, grades, stats, time.perf_counter() - t0, quiet=True)
    name = cfg.data.task.name
    console.print(f"{name}: {len(rows) - len(failed)}/{len(rows)} reference answers pass its grader"
                  + (f"; {len(failed)} fail: the task is broken" if failed else ""), highlight=False)
    return 1 if failed else 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--grader", help="spec file (JSON/YAML) or inline JSON")
    p.add_argument("--data", help="examples JSONL")
    p.add_argument("--completions", help="parallel JSONL with a 'completion' field per line")
    p.add_argument("--out", help="write the grades as JSONL")
    p.add_argument("--task", help="with --reference: a built-in task name, or a config file whose data.task is one")
    p.add_argument("--reference", action="store_true", help="grade the task's reference answers (solution, else "
                   "answer) as training grades; exit 1 when one fails")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="with --task: override a config field, e.g. --set data.task.dataset=chain_sum")
    p.add_argument("--limit", type=int, help="with --task: grade only the first N references")
    p.add_argument("--workers", type=int, default=-1, help="grader worker processes (-1: one per core, 0: in-process)")
    p.add_argument("--quiet", action="store_true")


def run(a: argparse.Namespace) -> int:
    if a.task is not None or a.reference:
        if a.task is None or not a.reference or a.grader or a.data or a.completions or a.out:
            raise SystemExit("rft grade: --task and --reference go together, without --grader, --data, "
                             "--completions or --out")
        return reference_command(a.task, a.overrides, a.limit, a.workers, a.quiet)
    if a.grader is None or a.data is None:
        raise SystemExit("rft grade: give --grader SPEC and --data FILE (or --task TASK --reference)")
    return grade_command(a.grader, a.data, a.completions, a.out, a.workers, a.quiet)
