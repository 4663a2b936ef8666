"""``rft train``: GRPO training (:mod:`rft.grpo.train`) from a config, an OpenAI job body, a run to resume,
or the one-line flags; ``--control`` then trains the control arm and says what the grader explains."""

from __future__ import annotations

import argparse
import sys

from rft.commands.common import add_config_args, add_quiet, end_of_run_report


def add_arguments(p: argparse.ArgumentParser) -> None:
    from rft.commands.openai_job import add_openai_job_arg
    from rft.commands.quickstart import add_start_flags

    add_config_args(p)
    add_openai_job_arg(p)
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its latest checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    add_quiet(p)
    p.add_argument("--json", action="store_true", help="print one JSON line per metric record (for machines)")
    p.add_argument("--control", nargs="?", const="shuffled", choices=["shuffled", "random"], help="then train "
                   "a control arm (NAME-control-MODE) and say how much of the held-out gain the grader explains")
    add_start_flags(p)


def run(args: argparse.Namespace) -> int:
    from rft.config import load_config
    from rft.console import Console
    from rft.grpo.train import train
    from rft.report.attribution import attribution_lines
    from rft.training.distributed import is_main_process
    from rft.training.run_dir import RunDir

    console = Console(args.quiet, json_lines=args.json)
    if args.openai_job:
        from rft.commands.openai_job import openai_job_config

        cfg = openai_job_config(args, sys.stderr if args.json else sys.stdout)  # --json: stdout is for records
        result = train(cfg, overwrite=args.overwrite, console=console)
    elif args.resume:
        run_dir = RunDir(args.resume)
        if not run_dir.config_path.is_file():
            raise FileNotFoundError(f"--resume {args.resume}: no config.yaml there; pass a run directory")
        cfg = load_config(run_dir.config_path, args.overrides)
        result = train(cfg, resume=args.resume, console=console)
    else:
        from rft.commands.quickstart import start_overrides

        cfg = load_config(args.config, start_overrides(args))
        if args.config is None and not args.quiet and not args.json:  # no file to read: show what runs
            print(cfg.to_yaml())
        result = train(cfg, overwrite=args.overwrite, console=console)
    if args.control:  # the same run with rewards cut from completions: what the grader explains
        from rft.grpo.control import control_config
        control = train(control_config(cfg, args.control), overwrite=args.overwrite, console=console).run_dir
    if not is_main_process():  # under torchrun rank 0 alone reports
        return 0
    console.table("rft train", [
        ("held-out pass@1 before", result.first_val.get("val/pass@1", float("nan"))),
        ("held-out pass@1 after", result.last_val.get("val/pass@1", float("nan"))),
        ("best held-out pass@1", result.best_val),
        ("steps", result.steps),
        ("run directory", str(result.run_dir)),
    ])
    end_of_run_report(result.run_dir, console)
    if args.control:
        print("\n".join(attribution_lines(result.run_dir, control)))
    return 0
