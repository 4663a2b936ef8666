#!/usr/bin/env python
"""rft vs TRL, step time on the same work: alternating runs, one machine, one batch.

Builds the tiny GPT-2 of ``bench/trl_anchor/make_tiny_model.py`` (with the TRL venv's python, as
that README says), then alternates rft and TRL runs (rft, TRL, rft, TRL, ...) on the same model
directory and settings, and prints each run's median step time, completion tokens/s and peak RSS,
and the rft/TRL ratios. Configs:

  a  the anchor: 8 prompts x 8 generations, 16 new tokens, beta 0.04, T=1, lr 1e-5 (linear decay),
     20 steps, the first 2 dropped; prompts "a+b=" with a, b in 10..99 (256 of them, seed 0).
  b  the same with 128 new tokens. The anchor model has 128 positions, too few for 7 + 128 tokens, so
     (b) uses the same model built with 256 positions (bench/trl_wrap.py; weights differ by seed path).

rft reads the prompts from a JSONL with the answer and a per-row regex that scores like TRL's
reward (the completion up to its first non-digit equals the sum). Peak RSS is ``ru_maxrss`` of each
run's process tree, taken the same way for both (``os.wait4``). Completion tokens are counted up to
and including the first EOS for both. Also printed: a plain fp32 matmul's GFLOP/s on this machine
and a FLOP estimate of one step of each (sampling, reference forward, policy forward, backward).

Hold the shared CPU lock for the whole batch, so that nothing else runs in between:

    flock /tmp/rft-cpu.lock .venv/bin/python bench/rft_vs_trl.py --config a --pairs 3

Needs the TRL venv of ``bench/trl_anchor/README.md`` at ``$TMPDIR/trlvenv`` (or ``--trl-python``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT / "bench" / "trl_anchor"
CONFIGS = {"a": 16, "b": 128}  # max new tokens
N_PROMPTS, PROMPTS_PER_STEP, G = 256, 8, 8


@dataclass
class Run:
    who: str
    config: str
    median_step_s: float
    tokens_per_step: float
    median_tokens_per_s: float
    peak_rss_mb: float
    phases: dict[str, float]
    detail: dict


def run_measured(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> tuple[str, float]:
    """Run ``cmd`` (in ``env``, default this one); return (stdout, peak RSS in MB of its process tree, from wait4)."""
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=f, text=True, cwd=ROOT, env=env)
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}); see {log}")
    return out, usage.ru_maxrss / 1024.0


# -- inputs ----------------------------------------------------------------------------------------
def build_model(trl_py: str, out: Path, n_positions: int) -> None:
    if (out / "model.safetensors").exists():
        return
    if n_positions == 128:
        cmd = [trl_py, str(SHARED / "make_tiny_model.py"), str(out)]
    else:
        cmd = [trl_py, str(ROOT / "bench" / "trl_wrap.py"), "model", "--n-positions", str(n_positions), str(out)]
    print(subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT).stdout.strip())


def write_data(work: Path) -> tuple[Path, Path]:
    """The 256 prompts of trl_grpo_cpu.build_dataset(seed 0), plus 8 other ones for rft's validation."""
    def row(i: int, a: int, b: int) -> dict:
        return {"id": f"q{i}", "prompt": f"{a}+{b}=", "answer": str(a + b),
                "pattern": f"^0*{a + b}(?:[^0-9]|$)"}  # TRL's reward: leading digits == the sum

    rng = random.Random(0)
    train = [row(i, rng.randint(10, 99), rng.randint(10, 99)) for i in range(N_PROMPTS)]
    seen = {r["prompt"] for r in train}
    rng, val = random.Random(1), []
    while len(val) < 8:
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        if f"{a}+{b}=" not in seen:
            seen.add(f"{a}+{b}=")
            val.append(row(1000 + len(val), a, b))
    paths = work / "train.jsonl", work / "val.jsonl"
    for path, rows in zip(paths, (train, val)):
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return paths


def rft_config(work: Path, model: Path, config: str, steps: int, data: tuple[Path, Path]) -> Path:
    lines = f"""name: bench_{config}
output_dir: {work / "runs"}
report_to: []
seed: 0
threads: 2
model: {{path: {model}}}
data: {{train_file: {data[0]}, val_file: {data[1]}}}
grader: {{type: regex, pattern_field: pattern, mode: search}}
sampling: {{num_generations: {G}, temperature: 1.0, top_p: 1.0, top_k: 0, max_new_tokens: {CONFIGS[config]}}}
grpo: {{steps: {steps}, prompts_per_step: {PROMPTS_PER_STEP}, lr: 1.0e-5, lr_schedule: linear, beta: 0.04,
       num_iterations: 1, gradient_accumulation_steps: 1}}
eval: {{every: {steps + 1000}, size: 8, samples: 0, capability: false}}
checkpoint: {{every: {steps + 1000}, keep_last: 1}}
monitors: {{enabled: false}}
"""
    path = work / f"rft_{config}.yaml"
    path.write_text(lines)
    return path


# -- the two runners -------------------------------------------------------------------------------
def run_rft(work: Path, cfg: Path, config: str, warmup: int, extra: list[str]) -> Run:
    rft = Path(sys.executable).parent / "rft"
    cmd = [str(rft), "train", str(cfg), "--overwrite", "--quiet", *[a for s in extra for a in ("--set", s)]]
    t0 = time.perf_counter()
    _, rss = run_measured(cmd, work / f"rft_{config}.log")
    wall = time.perf_counter() - t0
    recs = [json.loads(line) for line in (work / "runs" / f"bench_{config}" / "metrics.jsonl").open()]
    steps = [r for r in recs if r.get("type") == "train"]
    kept = steps[warmup:]
    tok = [r["completion_len_mean"] * PROMPTS_PER_STEP * G for r in kept]
    phases = {k.removeprefix("time/"): statistics.median(r.get(k, 0.0) for r in kept)
              for k in kept[0] if k.startswith("time/")}
    detail = {"step_s": [r["step_s"] for r in steps], "wall_s": wall,
              "completion_tokens_per_step": [r["completion_len_mean"] * PROMPTS_PER_STEP * G for r in steps],
              "truncated_frac": statistics.mean(r["truncated_frac"] for r in steps)}
    return Run("rft", config, statistics.median(r["step_s"] for r in kept), statistics.mean(tok),
               statistics.median(t / r["step_s"] for t, r in zip(tok, kept)), rss, phases, detail)


def run_trl(work: Path, trl_py: str, model: Path, config: str, steps: int, warmup: int) -> Run:
    common = [str(model), "--beta", "0.04", "--steps", str(steps), "--warmup-steps", str(warmup)]
    if config == "a":
        cmd = [trl_py, str(SHARED / "trl_grpo_cpu.py"), *common]
    else:
        cmd = [trl_py, str(ROOT / "bench" / "trl_wrap.py"), "train", "--max-completion-length", str(CONFIGS[config]),
               *common]
    t0 = time.perf_counter()
    out, rss = run_measured(cmd, work / f"trl_{config}.log")
    wall = time.perf_counter() - t0
    lines = out.strip().splitlines()
    result = json.loads(lines[-1])
    detail = json.loads(next(line for line in reversed(lines) if line.startswith("DETAIL "))[len("DETAIL "):])
    tok = detail["completion_tokens_per_step"][warmup:]
    return Run("trl", config, result["median_step_s"], statistics.mean(tok), result["median_completion_tokens_per_s"],
               rss, detail["phase_median_s"], {"wall_s": wall, "own_peak_rss_mb": result["peak_rss_mb"],
                                                "step_s": detail["step_s"],
                                                "clipped_fraction": detail["clipped_fraction_all_steps"]})


# -- the machine and the FLOPs ---------------------------------------------------------------------
def matmul_gflops() -> dict[str, float]:
    """fp32 GFLOP/s of plain matmuls at 2 threads: a large square one and the step's typical shape."""
    import torch

    torch.set_num_threads(2)
    out = {}
    for name, (m, k, n) in {"2048x2048x2048": (2048, 2048, 2048), "1472x256x1024": (1472, 256, 1024),
                            "64x256x1024": (64, 256, 1024)}.items():
        a, b = torch.randn(m, k), torch.randn(k, n)
        reps = max(3, int(2e10 / (2 * m * k * n)))
        a @ b
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(reps):
                a @ b
            best = min(best, time.perf_counter() - t0)
        out[name] = 2 * m * k * n * reps / best / 1e9
    return out


def step_flops(model_dir: Path, prompt_len: int, completion_tokens: float, max_new: int, padded: bool) -> dict[str, float]:
    """Forward FLOPs = 2 x (matmul weights) per token + attention (QK^T and AV, 4 d ctx per token and layer).

    ``padded`` (TRL): every row is computed to the batch's longest completion (``max_new`` here: each
    step has a max-length row) in generation and in the three forward/backward passes, and each row
    prefills its own prompt. Otherwise (rft): the prompt once per group, completions to their own
    length (the padding left in rft's length buckets is not counted). Backward = 2 x forward."""
    cfg = json.loads((model_dir / "config.json").read_text())
    d, L, V = cfg["n_embd"], cfg["n_layer"], cfg["vocab_size"]
    per_tok = 2 * (L * 12 * d * d + d * V)  # attn qkv+proj 4d^2, MLP 8d^2, LM head
    rows = PROMPTS_PER_STEP * G
    mean_len = max_new if padded else completion_tokens / rows
    ctx = prompt_len + mean_len / 2  # mean attention context of a completion token
    attn = 4 * d * L * ctx
    comp_tok = rows * mean_len
    prompt_tok = rows * prompt_len if padded else PROMPTS_PER_STEP * prompt_len
    fwd = (comp_tok + prompt_tok) * per_tok + comp_tok * attn
    return {"sampling": fwd, "reference": fwd, "policy_forward": fwd, "backward": 2 * fwd,
            "total": 5 * fwd}


# -- main ------------------------------------------------------------------------------------------
def summarise(runs: list[Run], config: str) -> dict:
    by = {w: [r for r in runs if r.who == w and r.config == config] for w in ("rft", "trl")}
    med = {w: {"median_step_s": statistics.median(r.median_step_s for r in rs),
               "median_tokens_per_s": statistics.median(r.median_tokens_per_s for r in rs),
               "tokens_per_step": statistics.median(r.tokens_per_step for r in rs),
               "peak_rss_mb": statistics.median(r.peak_rss_mb for r in rs)} for w, rs in by.items()}
    ratio = {k: med["rft"][k] / med["trl"][k] for k in med["rft"]}
    return {"config": config, "rft": med["rft"], "trl": med["trl"], "ratio_rft_over_trl": ratio}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    p.add_argument("--config", choices=["a", "b", "both"], default="a")
    p.add_argument("--pairs", type=int, default=2, help="(rft, TRL) pairs per config, alternating")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=2, help="leading steps left out of the medians")
    p.add_argument("--trl-python", default=str(tmp / "trlvenv" / "bin" / "python"))
    p.add_argument("--work", default=str(tmp / "rft-vs-trl"), help="scratch directory (models, data, runs, logs)")
    p.add_argument("--rft-set", action="append", default=[], metavar="KEY=VALUE", help="extra rft config override")
    p.add_argument("--skip-trl", action="store_true", help="rft runs only (for profiling; prints no ratios)")
    p.add_argument("--json-out", help="write every run and the summary to this file")
    args = p.parse_args(argv)
    if not Path(args.trl_python).exists() and not args.skip_trl:
        p.error(f"--trl-python {args.trl_python}: not found; create the TRL venv as bench/trl_anchor/README.md says")

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    data = write_data(work)
    configs = ["a", "b"] if args.config == "both" else [args.config]
    models = {"a": work / "tiny-gpt2-char", "b": work / "tiny-gpt2-char-pos256"}
    for c in configs:
        build_model(args.trl_python, models[c], 128 if c == "a" else 256)

    runs: list[Run] = []
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    for c in configs:
        cfg = rft_config(work, models[c], c, args.steps, data)
        for i in range(args.pairs):
            for who in ("rft", "trl"):
                if who == "trl" and args.skip_trl:
                    continue
                r = (run_rft(work, cfg, c, args.warmup, args.rft_set) if who == "rft"
                     else run_trl(work, args.trl_python, models[c], c, args.steps, args.warmup))
                runs.append(r)
                print(f"[{c}] {who:3s} run {i + 1}: median step {r.median_step_s:.4f} s, "
                      f"{r.tokens_per_step:.0f} completion tokens/step, {r.median_tokens_per_s:.0f} tok/s, "
                      f"peak RSS {r.peak_rss_mb:.0f} MB, phases "
                      + ", ".join(f"{k} {v:.4f}" for k, v in r.phases.items()), flush=True)

    gflops = matmul_gflops()
    print("matmul GFLOP/s (fp32, 2 threads): " + ", ".join(f"{k} {v:.1f}" for k, v in gflops.items()))
    out = {"started": started, "runs": [r.__dict__ for r in runs], "matmul_gflops": gflops, "summary": []}
    for c in configs:
        cfg_json = json.loads((models[c] / "config.json").read_text())
        for who in ("rft", "trl"):
            rs = [r for r in runs if r.who == who and r.config == c]
            if not rs:
                continue
            step = statistics.median(r.median_step_s for r in rs)
            tok = statistics.median(r.tokens_per_step for r in rs)
            fl = step_flops(models[c], 7, tok, CONFIGS[c], padded=who == "trl")
            print(f"[{c}] {who}: FLOP estimate {fl['total'] / 1e9:.1f} GFLOP/step "
                  f"(sampling/ref/policy fwd {fl['sampling'] / 1e9:.1f} each, backward {fl['backward'] / 1e9:.1f}) "
                  f"-> {fl['total'] / step / 1e9:.1f} GFLOP/s achieved (n_layer {cfg_json['n_layer']}, d {cfg_json['n_embd']})")
            out.setdefault("flops", {})[f"{c}/{who}"] = {**fl, "achieved_gflops": fl["total"] / step / 1e9}
        if not args.skip_trl:
            s = summarise(runs, c)
            out["summary"].append(s)
            print(f"[{c}] medians over {args.pairs} runs each: rft {s['rft']['median_step_s']:.4f} s/step, "
                  f"TRL {s['trl']['median_step_s']:.4f} s/step -> ratio {s['ratio_rft_over_trl']['median_step_s']:.3f}; "
                  f"tokens/s ratio {s['ratio_rft_over_trl']['median_tokens_per_s']:.2f}; "
                  f"peak RSS {s['rft']['peak_rss_mb']:.0f} vs {s['trl']['peak_rss_mb']:.0f} MB "
                  f"-> ratio {s['ratio_rft_over_trl']['peak_rss_mb']:.3f}; completion tokens/step "
                  f"{s['rft']['tokens_per_step']:.0f} vs {s['trl']['tokens_per_step']:.0f}")
    print("RESULT " + json.dumps(out["summary"]))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
