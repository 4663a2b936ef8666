#!/usr/bin/env python
"""Learning efficacy on the demo's sloppy-annotator warm start: rft's side, and the data for TRL's.

The warm start is made exactly as ``rft demo`` makes it: ``rft sft`` with the demo config
(``src/rft/configs/demo.yaml``: the embedded tiny Llama, 2-digit addition, SFT labels from an
annotator who drops carries in 70 % of them). GRPO then runs with the demo's own GRPO settings
(16 prompts x 8 generations, <= 5 new tokens, lr 5e-4 cosine, beta 0, dapo, greedy held-out
accuracy on 500 problems every 20 steps, 400 steps) against the ``arithmetic`` grader (the true sum).
TRL runs the same warm start, prompts, held-out set and check with ``bench/efficacy_sloppy_trl.py``
(in the TRL venv), which reads the JSONL that ``warmstart`` exports here.

    python bench/efficacy_sloppy.py warmstart ROOT      # ROOT/demo-sft/model, ROOT/data/*.jsonl, pass@8
    python bench/efficacy_sloppy.py run ROOT [--set grpo.lr=3e-4 ...] [--json-out F]

``run`` prints one JSON line per evaluation (``train_s``: sum of step times up to it;
``train_wall_s``: the same with the loop's measured overhead spread over the steps) and a summary
with the steps and seconds to first reach 50/80/90 % held-out greedy accuracy.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEMO_CONFIG = REPO / "src" / "rft" / "configs" / "demo.yaml"
RUN_OVERRIDES = ["report_to=[]"]  # no TensorBoard files in a timing run; nothing else differs from the demo


def rft_exe() -> str:
    exe = Path(sys.executable).with_name("rft")
    return str(exe) if exe.exists() else "rft"


def cmd_warmstart(args) -> int:
    from rft.commands.demo import warm_start_pass_at_k
    from rft.config import load_config
    from rft.data import write_jsonl
    from rft.tasks import load_splits

    root = Path(args.root).resolve()
    overrides = [f"output_dir={root}"]
    t0 = time.perf_counter()
    # the demo's SFT step, through the CLI, exactly as the README's manual path runs it
    subprocess.run([rft_exe(), "sft", str(DEMO_CONFIG), "--overwrite", "--quiet",
                    *[a for o in overrides for a in ("--set", o)]], check=True)
    sft_s = time.perf_counter() - t0
    cfg = load_config(DEMO_CONFIG, overrides)
    model_dir = root / "demo-sft" / "model"
    train, val, _ = load_splits(cfg.data, cfg.seed)
    (root / "data").mkdir(parents=True, exist_ok=True)
    write_jsonl(root / "data" / "train.jsonl", train)
    write_jsonl(root / "data" / "val.jsonl", val)
    pass_k = warm_start_pass_at_k(cfg, model_dir)
    sft_info = json.loads((model_dir / "rft_sft.json").read_text())
    info = {"model_dir": str(model_dir), "sft_wall_s": round(sft_s, 1), "sft": sft_info, "pass@8": pass_k["pass@8"],
            "pass_rate": pass_k["pass@1"], "train": len(train), "val": len(val),
            "weights_sha256": hashlib.sha256((model_dir / "model.safetensors").read_bytes()).hexdigest()}
    (root / "warmstart.json").write_text(json.dumps(info, indent=2))
    print(json.dumps(info))
    return 0


def cmd_run(args) -> int:
    from efficacy_common import emit, run_rft

    root = Path(args.root).resolve()
    label = args.label or ",".join(args.set) or "demo settings"
    name = "grpo-" + hashlib.sha256(label.encode()).hexdigest()[:8]
    overrides = [f"output_dir={root / 'runs'}", f"name={name}", f"model.path={root / 'demo-sft' / 'model'}",
                 *RUN_OVERRIDES, *args.set]
    evals, summary = run_rft(DEMO_CONFIG, overrides, label)
    emit(evals, summary, args.json_out)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("warmstart")
    w.add_argument("root")
    r = sub.add_parser("run")
    r.add_argument("root")
    r.add_argument("--set", action="append", default=[], help="config override (repeatable)")
    r.add_argument("--label", default=None)
    r.add_argument("--json-out", default=None)
    args = p.parse_args(argv)
    sys.path.insert(0, str(HERE))
    return {"warmstart": cmd_warmstart, "run": cmd_run}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
