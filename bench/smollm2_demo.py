#!/usr/bin/env python
"""The README's SmolLM2 demo table: `rft demo --model smollm2-135m-instruct` at several seeds, then
pass@k of the base model and of each run's final checkpoint on the same held-out problems.

For each seed: the demo as a user runs it (a subprocess, its wall time from outside; its greedy
held-out and held-out-phrasing numbers are the demo's own), then `rft eval BASE RUN --data
val.jsonl --samples K` on the first --pass-k-size of the run's own validation problems (written from
the task with the run's seed), at the run's temperature, for sampled pass@1 and pass@K. Prints one
Markdown table and writes every number to --json-out. Hold the shared CPU lock for the whole batch:

    flock /tmp/rft-cpu.lock .venv/bin/python bench/smollm2_demo.py --seeds 0 1 2 --json-out /tmp/demo.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def rft(*args: str, log: Path) -> float:
    """Run the rft CLI of this venv; return its wall time. A failure stops the batch."""
    cmd = [str(Path(sys.executable).parent / "rft"), *args]
    t0 = time.perf_counter()
    with log.open("w") as f:
        proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}); see {log}")
    return time.perf_counter() - t0


def one_seed(seed: int, work: Path, samples: int, pass_k_size: int, extra: list[str]) -> dict:
    from rft.commands.common import demo_config_path
    from rft.commands.demo import PHRASINGS_FILE, PRETRAINED_CONFIG
    from rft.config import load_config
    from rft.data import write_jsonl
    from rft.tasks import TASKS

    out = work / f"seed{seed}"
    sets = [a for s in [f"output_dir={out}", *extra] for a in ("--set", s)]
    wall = rft("demo", "--model", "smollm2-135m-instruct", "--seed", str(seed), *sets, log=work / f"demo{seed}.log")
    cfg = load_config(demo_config_path(PRETRAINED_CONFIG), [f"seed={seed}", f"output_dir={out}", *extra])
    run = cfg.run_dir
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").open()]
    vals = [m for m in metrics if m["type"] == "val"]
    steps = [m for m in metrics if m["type"] == "train"]
    write_jsonl(work / f"val{seed}.jsonl", TASKS[cfg.data.task.name](cfg.data.task, seed)[1][:pass_k_size])
    result = {"seed": seed, "wall_s": wall, "steps": len(steps), "val_before": vals[0]["val/pass@1"],
              "val_after": vals[-1]["val/pass@1"], "nll_before": vals[0].get("val/cap/nll"),
              "nll_after": vals[-1].get("val/cap/nll"), "nll_rise": vals[-1].get("val/cap/nll_rise"),
              "cap_kl": vals[-1].get("val/cap/kl"), "step_s": [m["step_s"] for m in steps]}
    phrasings = json.loads((run / PHRASINGS_FILE).with_suffix(".eval.json").read_text())["models"]
    result["phrasings"] = [{"pass@1": m["metrics"]["pass@1"]} for m in phrasings]
    res = work / f"eval_val{seed}.json"
    result["pass_k_wall_s"] = rft("eval", cfg.model.path, str(run), "--data", str(work / f"val{seed}.jsonl"),
                                  "--samples", str(samples), "--out", str(res), "--quiet", log=work / f"eval_val{seed}.log")
    models = json.loads(res.read_text())["models"]
    result["val"] = [{k: v for k, v in m["metrics"].items() if k == "pass@1" or k.startswith("sampled/")}
                     for m in models]
    return result


def table(results: list[dict], samples: int) -> str:
    head = ("| seed | held-out greedy | held-out sampled pass@1 / pass@{k} | phrasings greedy | general-text NLL | "
            "steps | wall |\n| --- | --- | --- | --- | --- | --- | --- |").replace("{k}", str(samples))
    lines = [head]
    for r in results:
        v, p = r["val"], r["phrasings"]
        sampled = (f"{v[0]['sampled/pass@1']:.1%} / {v[0][f'sampled/pass@{samples}']:.1%} -> "
                   f"{v[1]['sampled/pass@1']:.1%} / {v[1][f'sampled/pass@{samples}']:.1%}")
        nll = (f"{r['nll_before']:.3f} -> {r['nll_after']:.3f} ({r['nll_rise']:+.1%})" if r["nll_before"] else "-")
        lines.append(f"| {r['seed']} | {r['val_before']:.1%} -> **{r['val_after']:.1%}** | {sampled} | "
                     f"{p[0]['pass@1']:.1%} -> {p[1]['pass@1']:.1%} | {nll} | {r['steps']} | {r['wall_s']:.0f} s |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--samples", type=int, default=8, help="samples per problem for pass@k (default 8)")
    p.add_argument("--pass-k-size", type=int, default=100, help="validation problems in the pass@k evaluation")
    p.add_argument("--work", default="/tmp/rft-smollm2-demo")
    p.add_argument("--set", dest="extra", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--json-out")
    args = p.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    results = []
    for seed in args.seeds:
        results.append(one_seed(seed, work, args.samples, args.pass_k_size, args.extra))
        print(json.dumps(results[-1]), flush=True)
    print(table(results, args.samples))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
