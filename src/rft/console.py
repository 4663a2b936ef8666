"""Console output: progress with live fields, summary tables, and a quiet mode.

Everything user-facing goes through :class:`Console`, so ``--quiet`` silences it in one place.
``json_lines`` (``--json``) is quiet for people and prints JSON lines for machines instead: each
metric record (through :class:`rft.report.loggers.JsonLinesSink`) and each summary table.
Errors are not printed here: they are raised and the CLI turns them into one line and exit 2; an
unexpected one (a bug, or an input no check knows) becomes one line naming the traceback file that
:func:`unexpected_error` saves.

Progress is a rich bar on a terminal. When stdout is not one (``make demo | tee log``, a CI log),
rich would print the bar only once, at the end, so :class:`_PlainBar` prints plain lines instead
(``grpo 12/40 (30%) elapsed 0:00:43 eta 0:01:40 reward 0.512 val 0.600``): one when at least 10%
of the total has passed since the last line or 30 s have, whichever comes first, and one at the
end. So a log holds about 10 lines plus one per 30 s, and a slow run still shows a line per step
once its steps take 30 s. "Terminal" is rich's test (``isatty``, overridden by ``FORCE_COLOR`` /
``TTY_COMPATIBLE``). Not covered: a heartbeat between two updates (a line is printed only when the
loop reports progress).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
import traceback
from contextlib import contextmanager
from datetime import timedelta
from typing import IO, Any, Callable, Iterator

from rich.console import Console as RichConsole
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table


class _Bar:
    def __init__(self, progress: Progress | None, task: Any) -> None:
        self._progress, self._task = progress, task

    def update(self, advance: int = 1, **fields: Any) -> None:
        if self._progress is not None:
            status = "  ".join(f"{k} {v}" for k, v in fields.items())
            self._progress.update(self._task, advance=advance, status=status)


# A plain progress line is due after this share of the total or this many seconds, whichever first.
PLAIN_EVERY_FRACTION = 0.10
PLAIN_EVERY_S = 30.0


def _clock_text(seconds: float) -> str:
    return str(timedelta(seconds=int(seconds)))


class _PlainBar:
    """Progress as plain lines, for output that is not a terminal (rules in the module docstring).

    eta = (total - done) x the mean time per unit since the first update, so that a resumed run's
    jump to its step (and GRPO's first step, which pays the warm-ups) is not taken for speed; "?"
    until two updates have been seen. Fields replace the previous update's, as on the rich bar.
    """

    def __init__(self, console: RichConsole, total: int, description: str, clock: Callable[[], float]) -> None:
        self._console, self._total, self._description, self._clock = console, total, description, clock
        self._start = clock()
        self._done, self._fields = 0, {}
        self._pace_from: tuple[float, int] | None = None  # (time, done) at the first update
        self._last_time, self._last_done = self._start, 0
        self._last_state: tuple[int, dict[str, Any]] | None = None  # what the last line showed

    def update(self, advance: int = 1, **fields: Any) -> None:
        now = self._clock()
        self._done += advance
        self._fields = fields
        if self._pace_from is None:
            self._pace_from = (now, self._done)
        due = (self._done - self._last_done >= PLAIN_EVERY_FRACTION * self._total
               or now - self._last_time >= PLAIN_EVERY_S)
        if due:
            self._emit(now)

    def close(self) -> None:
        """The final state, unless the last line already showed it."""
        self._emit(self._clock(), only_if_new=True)

    def _emit(self, now: float, only_if_new: bool = False) -> None:
        state = (self._done, self._fields)  # the times alone are no news
        if only_if_new and state == self._last_state:
            return
        self._console.print(self._line(now), markup=False, highlight=False)
        self._last_time, self._last_done, self._last_state = now, self._done, state

    def _line(self, now: float) -> str:
        share = f" ({self._done / self._total:.0%})" if self._total > 0 else ""
        eta = "?"
        if self._pace_from is not None and self._done > self._pace_from[1]:
            t0, n0 = self._pace_from
            eta = _clock_text((now - t0) / (self._done - n0) * max(self._total - self._done, 0))
        live = "".join(f"  {k} {v}" for k, v in self._fields.items())
        return (f"{self._description} {self._done}/{self._total}{share} elapsed {_clock_text(now - self._start)} "
                f"eta {eta}{live}")


class Console:
    """``file`` (default stdout) and ``clock`` (for the plain progress lines) are there for tests."""

    def __init__(self, quiet: bool = False, json_lines: bool = False, *, file: IO[str] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.quiet = quiet or json_lines
        self.json_lines = json_lines
        self._rich = RichConsole(stderr=False, highlight=False, soft_wrap=True, file=file)
        self._clock = clock

    def print(self, *args: Any) -> None:
        if not self.quiet:
            self._rich.print(*args)

    @contextmanager
    def progress(self, total: int, description: str) -> Iterator[_Bar | _PlainBar]:
        """A rich bar on a terminal, plain lines otherwise, nothing when quiet. ``bar.update(advance,
        **fields)`` moves it and replaces the live fields (``reward=...``)."""
        if self.quiet:
            yield _Bar(None, None)
            return
        if not self._rich.is_terminal:
            plain = _PlainBar(self._rich, total, description, self._clock)
            try:
                yield plain
            finally:
                plain.close()
            return
        progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[status]}"),
            console=self._rich, transient=False,
        )
        with progress:
            task = progress.add_task(description, total=total, status="")
            yield _Bar(progress, task)

    def table(self, title: str, rows: list[tuple[str, Any]]) -> None:
        if self.json_lines:
            clean = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in rows}
            print(json.dumps({"type": "summary", "title": title, **clean}, default=str), flush=True)
        if self.quiet:
            return
        table = Table(title=title, show_header=False, title_justify="left")
        table.add_column("what", style="bold")
        table.add_column("value")
        for k, v in rows:
            table.add_row(k, f"{v:.4g}" if isinstance(v, float) else str(v))
        self._rich.print(table)


def clock() -> float:
    """``time.perf_counter()`` after queued CUDA work is done. CUDA kernels run after the call that
    launches them returns, so an unsynchronised host clock charges a phase's kernels to whichever later
    phase first waits on them (the reference forward's to the update, say). No CUDA call when CUDA was
    never initialised."""
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()
    return time.perf_counter()


@contextmanager
def timed(times: dict[str, float], phase: str) -> Iterator[None]:
    """Add the block's wall time to ``times["time/<phase>"]`` (the phase timers of metrics.jsonl), the
    device's queued work included."""
    t0 = clock()
    yield
    times[f"time/{phase}"] = times.get(f"time/{phase}", 0.0) + clock() - t0


def unexpected_error(exc: BaseException) -> str:
    """One line for an exception no check anticipated; its traceback is saved to a file the line names
    (in the temporary directory: the run directory may not exist yet, or be what failed)."""
    first = (str(exc).strip().splitlines() or [""])[0][:300]
    name = f"rft-traceback-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt"
    path = os.path.join(tempfile.gettempdir(), name)
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
        saved = f"the traceback is in {path}"
    except OSError as e:
        saved = f"the traceback could not be saved ({e.strerror})"
    return (f"unexpected {type(exc).__name__}: {first} -- not a known input problem (a bug, or an input no check "
            f"names yet); {saved}; rerun with `rft --debug ...` to print it")
