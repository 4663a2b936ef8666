"""``rft report``: ``report.html`` of a run, several runs overlaid, or a real run against its control arm."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories; two or more are compared")
    p.add_argument("--out", help="output file (default RUN_DIR/report.html; for several runs a compare-*.html beside "
                   "them)")


def run(args: argparse.Namespace) -> int:
    from rft.report.attribution import attribution_lines, is_control
    from rft.report.html import write_report

    print(f"wrote {write_report(args.run_dirs, args.out)}")
    if len(args.run_dirs) == 2 and is_control(args.run_dirs[1]):  # REAL CONTROL: what the grader explains
        print("\n".join(attribution_lines(*args.run_dirs)))
    return 0
