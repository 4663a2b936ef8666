"""Console output: rich progress bars with live fields, summary tables, and a quiet mode.

Everything user-facing goes through :class:`Console`, so ``--quiet`` silences it in one place.
``json_lines`` (``--json``) is quiet for people and prints JSON lines for machines instead: each
metric record (through :class:`rft.report.loggers.JsonLinesSink`) and each summary table.
Errors are not printed here: they are raised and the CLI turns them into one line and exit 2.
"""

from __future__ import annotations

import json
import math
from contextlib import contextmanager
from typing import Any, Iterator

from rich.console import Console as RichConsole
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table


class _Bar:
    def __init__(self, progress: Progress | None, task: Any) -> None:
        self._progress, self._task = progress, task

    def update(self, advance: int = 1, **fields: Any) -> None:
        if self._progress is not None:
            status = "  ".join(f"{k} {v}" for k, v in fields.items())
            self._progress.update(self._task, advance=advance, status=status)


class Console:
    def __init__(self, quiet: bool = False, json_lines: bool = False) -> None:
        self.quiet = quiet or json_lines
        self.json_lines = json_lines
        self._rich = RichConsole(stderr=False, highlight=False, soft_wrap=True)

    def print(self, *args: Any) -> None:
        if not self.quiet:
            self._rich.print(*args)

    @contextmanager
    def progress(self, total: int, description: str) -> Iterator[_Bar]:
        if self.quiet:
            yield _Bar(None, None)
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
