"""``rft sft``: the supervised warm start (:mod:`rft.training.sft`); writes ``runs/NAME-sft/model``."""

from __future__ import annotations

import argparse

from rft.commands.common import add_config_args, add_quiet


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_config_args(p)
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    add_quiet(p)


def run(args: argparse.Namespace) -> int:
    from rft.config import load_config
    from rft.console import Console
    from rft.training.sft import sft

    result = sft(load_config(args.config, args.overrides), overwrite=args.overwrite, console=Console(args.quiet))
    print(f"SFT done: {result.steps} steps, held-out pass@1 {result.val.get('val/pass@1', float('nan')):.3f}; "
          f"model in {result.model_dir}")
    return 0
