#!/usr/bin/env python
"""1 turn vs up to 3 turns on the built-in SQL task (configs/sql_multiturn.yaml), same GRPO steps.

Per seed: one SFT warm start (`rft sft` on the config: gold queries, a third of them as procedural
retry transcripts), then two GRPO runs from it that differ only in `environment` -- `single` (one
query, graded once) and `sql_retry` with `max_turns: 3` (SQLite's error comes back and the model
may fix its query). Every model (the warm start and both runs' final checkpoints) is then validated
greedily on the same held-out questions with the 3-turn environment; since a greedy first turn is
the same with or without later turns, its `success_by_turn_1` is the single-turn pass@1 and
`success_by_turn_3` the success within three turns. Prints a Markdown table, writes --json-out, and
keeps a few 3-turn transcripts of the 3-turn run. Hold the CPU lock for the batch:

    flock /tmp/rft-cpu.lock .venv/bin/python bench/multiturn_sql.py --seeds 0 1 2 --json-out /tmp/mt.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "sql_multiturn.yaml"


def validate3(cfg, model_dir: Path) -> tuple[dict[str, float], list[dict]]:
    """Greedy 3-turn validation of ``model_dir`` on the config's held-out questions."""
    from rft.rollout import TorchSampler
    from rft.training.evaluate import evaluate
    from rft.training.session import open_session

    s = open_session(cfg, model_path=str(model_dir))
    with s.pool() as pool:
        res = evaluate(TorchSampler(s.model, s.tokenizer), s.tokenizer, pool, s.eval_examples,
                       cfg.sampling.max_new_tokens, cfg.eval.batch_size, episodes=s.episodes)
    return res.metrics, res.rows


def one_seed(seed: int, work: Path, steps: int, sft_steps: int) -> dict:
    from rft.config import load_config
    from rft.console import Console
    from rft.grpo.train import train
    from rft.training.sft import sft

    quiet = Console(quiet=True)
    base = [f"seed={seed}", f"output_dir={work}", "report_to=[]", f"sft.steps={sft_steps}",
            f"sft.eval_every={sft_steps}"]
    t0 = time.perf_counter()
    warm = sft(load_config(CONFIG, base), console=quiet)
    out: dict = {"seed": seed, "sft_s": time.perf_counter() - t0}
    three = load_config(CONFIG, base)
    out["start"], _ = validate3(three, warm.model_dir)
    for name, env in (("1turn", ["environment.type=single", "environment.max_turns=1"]), ("3turn", [])):
        cfg = load_config(CONFIG, [*base, f"name=sql-{name}", f"model.path={warm.model_dir}", f"grpo.steps={steps}",
                                   *env])
        t0 = time.perf_counter()
        run = train(cfg, console=quiet)
        out[f"{name}_train_s"] = time.perf_counter() - t0
        latest = (run.run_dir / "checkpoints" / "latest").read_text().strip()
        out[name], rows = validate3(three, run.run_dir / "checkpoints" / latest)
        records = [json.loads(line) for line in (run.run_dir / "metrics.jsonl").open()]
        train_rows = [r for r in records if r["type"] == "train"]
        out[f"{name}_train"] = {k: [r.get(k) for r in train_rows] for k in
                                ("reward_mean", "episode/turns_mean", "episode/success_by_turn_1",
                                 "episode/success_by_turn_3", "step_s")}
        if name == "3turn":
            out["transcripts"] = [r for r in rows if r.get("turns", 1) > 1][:8]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--steps", type=int, default=25, help="GRPO steps of each run")
    p.add_argument("--sft-steps", type=int, default=300)
    p.add_argument("--work", default="/tmp/rft-multiturn-sql")
    p.add_argument("--json-out")
    args = p.parse_args()
    results = [one_seed(s, Path(args.work) / f"seed{s}", args.steps, args.sft_steps) for s in args.seeds]
    print("| seed | model | held-out success, turn 1 | within 3 turns | turns (mean) | GRPO wall |")
    print("|---|---|---|---|---|---|")
    for r in results:
        for name in ("start", "1turn", "3turn"):
            m = r[name]
            wall = f"{r[f'{name}_train_s']:.0f} s" if name != "start" else f"SFT {r['sft_s']:.0f} s"
            print(f"| {r['seed']} | {name} | {m['episode/success_by_turn_1']:.1%} | {m['episode/success_by_turn_3']:.1%} "
                  f"| {m['episode/turns_mean']:.2f} | {wall} |")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
