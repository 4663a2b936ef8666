"""What several commands share: the config arguments, the demos' configs, and the report written at the end of
a run."""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path
from typing import Any


def add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", help="YAML config file (defaults when omitted)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set grpo.beta=0.04 (repeatable)")


def add_quiet(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", action="store_true", help="print only the result")


def end_of_run_report(run_dir: Any, console: Any) -> None:
    """The HTML report at the end of a run; a failure is a warning on stderr, never a failed run."""
    from rft.report.html import write_report_or_warn

    path, warning = write_report_or_warn(run_dir)
    if warning:
        print(warning, file=sys.stderr)
    else:
        console.print(f"report: {path}")


def demo_config_path(name: str = "demo.yaml") -> Path:
    """A demo's config, shipped as package data in ``rft/configs``."""
    return Path(str(resources.files("rft") / "configs" / name))
