#!/usr/bin/env python
"""Run the shared TRL anchor scripts with one constant changed, without editing them.

Runs in the TRL venv (``$TMPDIR/trlvenv/bin/python``). ``bench/trl_anchor/`` fixes two values as
module constants that the generation-heavy config (b) of ``bench/rft_vs_trl.py`` needs changed:

    trl_wrap.py model OUT_DIR --n-positions 256 [--seed 0]
        make_tiny_model.py with N_POSITIONS = 256 (the anchor model has 128 positions, too few
        for a 7-token prompt plus 128 new tokens); everything else as in the anchor.
    trl_wrap.py train MODEL_DIR --max-completion-length 128 [trl_grpo_cpu.py arguments...]
        trl_grpo_cpu.py with MAX_COMPLETION_LENGTH = 128; every other setting is the anchor's.

The scripts are loaded from their files and their ``main`` is called; nothing else is patched.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

SHARED = Path(__file__).resolve().parent / "trl_anchor"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, SHARED / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    m = sub.add_parser("model")
    m.add_argument("--n-positions", type=int, required=True)
    t = sub.add_parser("train")
    t.add_argument("--max-completion-length", type=int, required=True)
    args, rest = parser.parse_known_args(argv)
    if args.what == "model":
        module = load("make_tiny_model")
        module.N_POSITIONS = args.n_positions
    else:
        module = load("trl_grpo_cpu")
        module.MAX_COMPLETION_LENGTH = args.max_completion_length
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(main())
