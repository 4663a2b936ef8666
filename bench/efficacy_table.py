#!/usr/bin/env python
"""Markdown table rows from the ``--json-out`` files of the efficacy scripts (rft and TRL sides).

    python bench/efficacy_table.py /tmp/rft-efficacy/results/*.json

One row per file: side, settings, accuracy at the first evaluation, at steps 100/200/300 (when
evaluated there), final and best, steps and training seconds to 50/80/90 %, training seconds for the
whole run and the median step time.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def acc_at(evals: list[dict], step: int) -> str:
    hit = next((e for e in evals if e["step"] == step), None)
    return f"{hit['heldout_greedy_acc']:.1%}" if hit else "-"


def reached(s: dict, pct: int) -> str:
    steps = s.get(f"steps_to_{pct}pct")
    if steps is None:
        return "never"
    return f"{steps} / {s[f'train_wall_s_to_{pct}pct']:.1f} s"


def row(path: Path) -> str:
    data = json.loads(path.read_text())
    s, evals = data["summary"], data["evals"]
    side = "TRL 1.16" if s.get("side") == "trl" or "versions" in s and "trl" in s["versions"] else "rft"
    bits = [f"lr {s['lr']:g}", f"beta {s['beta']:g}", str(s.get("loss_type")),
            str(s.get("lr_schedule") or s.get("lr_scheduler") or "linear")]
    if s.get("epsilon_high"):
        bits.append(f"eps_high {s['epsilon_high']:g}")
    if s.get("scale_rewards") not in (None, "group"):
        bits.append(f"scale {s['scale_rewards']}")
    for o in s.get("overrides", []):
        if o.startswith(("grpo.warmup_steps", "grpo.num_iterations", "grpo.steps", "grpo.dynamic_sampling",
                         "grpo.prompts_per_step", "sampling.", "seed=")):
            bits.append(o.removeprefix("grpo."))
    if s.get("reward") not in (None, "exact"):
        bits.append(f"**reward {s['reward']} (shaped, not the headline reward)**")
    if s.get("disable_dropout") is False:
        bits.append("dropout on")
    return "| " + " | ".join([
        side, ", ".join(bits), f"{s['steps']}", f"{s['warmstart_heldout_greedy_acc']:.1%}",
        acc_at(evals, 100), acc_at(evals, 200), acc_at(evals, 300),
        f"{s['final_heldout_greedy_acc']:.1%}", f"{s['best_heldout_greedy_acc']:.1%}",
        reached(s, 50), reached(s, 80), reached(s, 90),
        f"{s['train_wall_s']:.1f}", f"{s['median_step_s']:.3f}",
        f"{s['train_reward_first_25_steps']:.3f} → {s['train_reward_last_25_steps']:.3f}",
    ]) + " |"


HEADER = ("| side | settings | steps | start | @100 | @200 | @300 | final | best | to 50 % (steps / s) | "
          "to 80 % | to 90 % | train s | median step (s) | train reward first → last 25 |\n"
          "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- | ---: | ---: | --- |")


def main(argv: list[str]) -> int:
    print(HEADER)
    for p in argv:
        print(row(Path(p)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
