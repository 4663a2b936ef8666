"""Shared by the learning-efficacy benchmarks: run one rft GRPO configuration and summarise it the
way ``bench/trl_anchor/trl_grpo_learn.py`` summarises a TRL run, so the two sides line up.

Clocks. rft times every step itself (``step_s`` in ``metrics.jsonl``: rollout, grading, advantages,
reference log-probs, update; validation and checkpoints are outside it). ``train_s`` at an
evaluation is the sum of ``step_s`` up to that step. The loop also spends time outside its steps
(writing metrics, monitors, checkpoints, loading the model and data before step 1); that is measured
for the whole run as ``train() wall - validation - sum(step_s)`` and reported as ``overhead_s``.
``train_wall_s`` spreads that overhead over the steps in proportion (so it is an upper bound on the
training wall-clock that excludes evaluation, comparable to TRL's ``train_wall_s``, which is wall
time since ``on_train_begin`` minus evaluation).
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

from efficacy_summary import threshold_hits

from rft.config import load_config
from rft.console import Console
from rft.grpo.train import train


def read_records(run_dir: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    train_recs, val_recs = [], []
    with (run_dir / "metrics.jsonl").open() as f:
        for line in f:
            rec = json.loads(line)
            if rec.get("type") == "train":
                train_recs.append(rec)
            elif rec.get("type") == "val":
                val_recs.append(rec)
    return train_recs, val_recs


def summarise(run_dir: Path, train_call_wall_s: float, label: str, settings: dict[str, Any]) -> tuple[list[dict], dict]:
    """Per-evaluation records and a summary (keys named as in trl_grpo_learn.py's summary)."""
    train_recs, val_recs = read_records(run_dir)
    step_s = {r["step"]: r["step_s"] for r in train_recs}
    reward = {r["step"]: r["reward_mean"] for r in train_recs}
    val_times = [r["time/validate"] for r in train_recs if "time/validate" in r]
    # the step-0 validation runs inside train() but outside any timer: estimate it by the median of the others
    val_total = sum(val_times) + (statistics.median(val_times) if val_times else 0.0)
    sum_step = sum(step_s.values())
    overhead = max(train_call_wall_s - val_total - sum_step, 0.0)
    scale = (sum_step + overhead) / sum_step if sum_step else 1.0

    evals, prev = [], 0
    for v in val_recs:
        k = v["step"]
        steps_here = [s for s in step_s if prev < s <= k]
        t = sum(step_s[s] for s in step_s if s <= k)
        evals.append({
            "step": k,
            "train_s": round(t, 2),
            "train_wall_s": round(t * scale, 2),
            "heldout_greedy_acc": v["val/pass@1"],
            "train_reward_mean": round(statistics.mean(reward[s] for s in steps_here), 4) if steps_here else None,
            **({"match_sloppy": v["val/match_sloppy"]} if "val/match_sloppy" in v else {}),
        })
        prev = k

    steps_sorted = sorted(step_s)
    rewards = [reward[s] for s in steps_sorted]
    summary: dict[str, Any] = {"summary": True, "label": label, **settings, "steps": len(steps_sorted),
                               "warmstart_heldout_greedy_acc": evals[0]["heldout_greedy_acc"],
                               "final_heldout_greedy_acc": evals[-1]["heldout_greedy_acc"],
                               "best_heldout_greedy_acc": max(e["heldout_greedy_acc"] for e in evals)}
    summary.update(threshold_hits(evals))
    summary.update({
        "train_s": round(sum_step, 1),
        "train_wall_s": round(sum_step + overhead, 1),
        "overhead_s": round(overhead, 1),
        "validate_s": round(val_total, 1),
        "train_call_wall_s": round(train_call_wall_s, 1),
        "median_step_s": round(statistics.median(step_s[s] for s in (steps_sorted[2:] or steps_sorted)), 4),
        "train_reward_first_25_steps": round(statistics.mean(rewards[:25]), 4),
        "train_reward_last_25_steps": round(statistics.mean(rewards[-25:]), 4),
        "run_dir": str(run_dir),
    })
    return evals, summary


def quiet_eval_overrides() -> list[str]:
    """Switch off validation extras that only cost evaluation time (never training time): the
    capability guard's general-text pass, where this rft has one."""
    from rft.config import EvalConfig

    return ["eval.capability=false"] if "capability" in EvalConfig.model_fields else []


def run_rft(config_path: str | Path, overrides: list[str], label: str) -> tuple[list[dict], dict]:
    """One rft GRPO run from a config file plus ``--set``-style overrides; returns evals and summary."""
    cfg = load_config(config_path, quiet_eval_overrides() + overrides)
    t0 = time.perf_counter()
    result = train(cfg, overwrite=True, console=Console(quiet=True))
    wall = time.perf_counter() - t0
    g = cfg.grpo
    settings = {"lr": g.lr, "lr_schedule": g.lr_schedule, "loss_type": g.loss_type, "beta": g.beta,
                "epsilon": g.epsilon, "epsilon_high": g.epsilon_high, "scale_rewards": g.scale_rewards,
                "num_iterations": g.num_iterations, "prompts_per_step": g.prompts_per_step,
                "num_generations": cfg.sampling.num_generations, "max_new_tokens": cfg.sampling.max_new_tokens,
                "temperature": cfg.sampling.temperature, "overrides": overrides}
    return summarise(result.run_dir, wall, label, settings)


def emit(evals: list[dict], summary: dict, json_out: str | None) -> None:
    for e in evals:
        print(json.dumps(e), flush=True)
    print(json.dumps(summary), flush=True)
    if json_out:
        Path(json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(json_out).write_text(json.dumps({"evals": evals, "summary": summary}, indent=2))
