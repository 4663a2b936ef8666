"""`rft doctor`'s memory and step-time predictions against measurements, on three configs.

    flock /tmp/rft-cpu.lock env PYTHONPATH=src python bench/doctor_fit.py [--steps 4] [--only tiny,lora,full]

For each config, two fresh processes, one after the other:

1. **predict**: :func:`rft.commands.doctor.check_memory` (the estimate, before any model loads) and
   :func:`rft.commands.doctor.check_cost` (doctor's probe: 3 to 20 steps, the median of steps 2..;
   skipped with ``probe=False``, for the memory alone);
2. **measure**: imports the trainer (torch, transformers, rft), reads its resident memory (VmRSS),
   then trains the same config for ``--steps`` steps with its validations (before step 1 and after
   the last) in a throwaway run directory; measured peak = the process's peak RSS at the end
   (``VmHWM``, :func:`rft.models.memory.peak_rss_bytes`; not ``ru_maxrss``, which a process started
   from a big one -- a test suite -- inherits) minus the RSS before loading, measured step time = the
   median ``step_s`` of steps 2.. (step 1 pays warm-up).

Configs: ``tiny`` the demo config (src/rft/configs/demo.yaml, the embedded model as created, no
SFT), ``lora`` src/rft/configs/demo_smollm2.yaml (SmolLM2-135M, bf16, LoRA r=16 all-linear),
``full`` the same with ``model.lora: null`` (full fine-tuning, bf16 weights, float32 masters).
Prints one row per config and the ratios predicted / measured.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {
    "tiny": ("src/rft/configs/demo.yaml", []),
    "lora": ("src/rft/configs/demo_smollm2.yaml", []),
    "full": ("src/rft/configs/demo_smollm2.yaml", ["model.lora=null"]),
}

PREDICT = r"""
import json, sys
from rft.config import load_config
from rft.commands.doctor import Check, check_cost, check_memory
cfg = load_config(sys.argv[1], json.loads(sys.argv[2]) + ["output_dir=" + sys.argv[3]])
mem = check_memory(cfg)
cost = check_cost(cfg, 0.0, 0) if sys.argv[4] == "probe" else Check("cost", "skip", "not run")
print("RESULT " + json.dumps({"memory": mem.values, "memory_summary": mem.summary, "cost": cost.values,
                              "cost_summary": cost.summary}, default=float))
"""

MEASURE = r"""
import json, resource, sys
from rft.config import load_config
from rft.console import Console
from rft.grpo.train import train
from rft.models.memory import peak_rss_bytes
from rft.training.run_dir import RunDir

def rss_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

cfg = load_config(sys.argv[1], json.loads(sys.argv[2]) + ["output_dir=" + sys.argv[3], "grpo.steps=" + sys.argv[4],
                                                          "checkpoint.every=1000"])
before = rss_kib()
result = train(cfg, console=Console(quiet=True))
peak = peak_rss_bytes() / 1024
steps = [r for r in RunDir(result.run_dir).read_metrics() if r.get("type") == "train"]
maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # for comparison: what a parent's peak can inflate
print("RESULT " + json.dumps({"rss_before_gib": before / 2**20, "peak_rss_gib": peak / 2**20, "ru_maxrss_gib": maxrss / 2**20,
                              "growth_gib": (peak - before) / 2**20, "step_s": [r["step_s"] for r in steps],
                              "phases": {p: [r.get("time/" + p, 0.0) for r in steps]
                                         for p in ("rollout", "ref_logprobs", "update")}}))
"""


def run(script: str, *args: str) -> dict:
    # a fresh process with a clean environment: what a test suite or a shell left set (an inductor cache, a
    # torchrun rendezvous) is not part of the run being measured
    keep = ("PATH", "HOME", "LANG", "TMPDIR", "HF_HOME", "HF_HUB_CACHE", "HF_HUB_OFFLINE", "RFT_CACHE", "OMP_NUM_THREADS",
            "ATEN_CPU_CAPABILITY")
    env = {**{k: v for k, v in os.environ.items() if k in keep}, "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run([sys.executable, "-c", script, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"no result (exit {out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")


def compare(name: str, extra: list[str], steps: int, tmp: str, probe: bool = True) -> dict:
    """Predict, then measure, config ``name`` (with ``extra`` overrides) in two fresh processes;
    ``probe=False`` predicts the memory alone (no step time: doctor's probe is not run)."""
    path, over = CONFIGS[name]
    over = over + extra
    pred = run(PREDICT, path, json.dumps(over), tmp, "probe" if probe else "memory")
    meas = run(MEASURE, path, json.dumps(over), tmp, str(steps))
    m, c = pred["memory"], pred["cost"]
    step_meas = statistics.median(meas["step_s"][1:])  # a slow step on a shared machine moves a mean
    pred_step = c.get("probe_step_s", math.nan)
    return {"config": name, "pred_peak_gib": m["peak_gib"], "meas_growth_gib": meas["growth_gib"],
            "mem_ratio": m["peak_gib"] / meas["growth_gib"], "pred_step_s": pred_step,
            "probe_steps": len(c.get("step_s", [])), "meas_step_s": step_meas, "time_ratio": pred_step / step_meas,
            "pred_parts": {k: round(v, 3) for k, v in m.items() if k.endswith("_gib")},
            "prompt_tokens": m["prompt_tokens"], "memory_line": pred["memory_summary"],
            "cost_line": pred["cost_summary"], "meas": meas}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=4, help="steps of the measured run (>= 2)")
    ap.add_argument("--only", default="tiny,lora,full")
    args = ap.parse_args()
    rows = []
    for name in args.only.split(","):
        with tempfile.TemporaryDirectory(prefix="rft-fit-") as tmp:
            rows.append(compare(name, [], args.steps, tmp))
        print(json.dumps(rows[-1]), flush=True)
    print("\n| config | predicted peak | measured peak RSS growth | pred/meas | predicted step (probe steps) | measured step "
          "(median of steps 2..) | pred/meas |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['config']} | {r['pred_peak_gib']:.3f} GiB | {r['meas_growth_gib']:.3f} GiB | {r['mem_ratio']:.2f} | "
              f"{r['pred_step_s']:.3f} s ({r['probe_steps']}) | {r['meas_step_s']:.3f} s | {r['time_ratio']:.2f} |")


if __name__ == "__main__":
    main()
