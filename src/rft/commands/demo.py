"""``rft demo``: the embedded default end to end on a laptop CPU (``--model`` names a pretrained
chat model instead: :func:`run_pretrained_demo`).

1. the tiny model (created once in the cache), 2. an SFT warm start on labels from a sloppy
annotator who drops carries -- the model imitates the mistakes, so greedy accuracy is low while
sampling still finds the right answer often (high pass@8), 3. GRPO against the arithmetic grader,
which checks the true sum, 4. held-out accuracy before and after, and the share of greedy answers
that are the sloppy annotator's: what the verifier fixed.

The config is ``rft/configs/demo.yaml`` (package data), the same file the manual path uses.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch

from rft.commands.common import demo_config_path, end_of_run_report
from rft.config import Config, load_config
from rft.console import Console
from rft.data import read_dataset, write_jsonl
from rft.grpo.train import TrainResult, train
from rft.models.load import (
    embedded_model_dir,
    load_model,
    load_tokenizer,
    resolve_model_path,
)
from rft.rollout import SamplingParams
from rft.training.evaluate import sampled_pass_at_k
from rft.training.session import open_session
from rft.training.sft import SFTResult, sft


def demo_config(overrides: list[str]) -> Config:
    return load_config(demo_config_path(), overrides)


def warm_start_pass_at_k(cfg: Config, model_dir: Path, k: int = 8) -> dict[str, float]:
    """pass@k of the warm start on the held-out split with the training sampler (seeded)."""
    s = open_session(cfg, model_path=str(model_dir))
    sampler = s.engine()
    params = SamplingParams.of(cfg.sampling)
    with s.pool() as pool:
        return sampled_pass_at_k(sampler, s.tokenizer, pool, s.eval_examples, k, params,
                                 torch.Generator().manual_seed(cfg.seed + 7))


def run_demo(overrides: list[str], minutes: float | None, console: Console) -> dict[str, Any]:
    t0 = time.perf_counter()
    cfg = demo_config(overrides)
    model_dir = embedded_model_dir() if cfg.model.path == "embedded" else Path(cfg.model.path)
    n_params = sum(p.numel() for p in load_model(model_dir).parameters())
    console.print(f"[bold]1/3 model[/] {model_dir} ({n_params / 1e6:.2f}M parameters, "
                  f"{len(load_tokenizer(model_dir))}-token character vocabulary)")

    console.print(f"[bold]2/3 SFT warm start[/] on labels from a sloppy annotator "
                  f"(drops carries in {cfg.data.task.sloppy_rate:.0%} of labels)")
    warm: SFTResult = sft(cfg, overwrite=True, console=console)
    pass_k = warm_start_pass_at_k(cfg, warm.model_dir)
    console.print(f"   warm start: greedy held-out accuracy {warm.val['val/pass@1']:.1%}, sloppy answers "
                  f"{warm.val.get('val/match_sloppy', float('nan')):.1%}, pass@8 {pass_k['pass@8']:.1%} "
                  f"({warm.steps} steps, {warm.seconds:.0f}s)")

    console.print("[bold]3/3 GRPO[/] against the arithmetic grader (checks the true sum)")
    grpo_cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"path": str(warm.model_dir)})})
    budget = minutes * 60 - (time.perf_counter() - t0) if minutes else None
    result: TrainResult = train(grpo_cfg, overwrite=True, console=console, time_limit_s=budget)

    total = time.perf_counter() - t0
    before, after = result.first_val, result.last_val
    console.table("rft demo: held-out greedy accuracy (500 problems)", [
        ("before GRPO (SFT warm start)", f"{before['val/pass@1']:.1%}"),
        ("after GRPO", f"{after['val/pass@1']:.1%}  (best {result.best_val:.1%})"),
        ("sloppy answers before -> after", f"{before.get('val/match_sloppy', 0):.1%} -> "
                                           f"{after.get('val/match_sloppy', 0):.1%}"),
        ("warm start pass@8", f"{pass_k['pass@8']:.1%}"),
        ("GRPO steps", result.steps),
        ("total time", f"{total:.0f}s"),
        ("run directory", str(result.run_dir)),
        ("SFT run directory", str(warm.run_dir)),
    ])
    return {"before": before, "after": after, "best": result.best_val, "warm_pass_at_8": pass_k["pass@8"],
            "steps": result.steps, "seconds": total, "run_dir": str(result.run_dir)}


# -- a pretrained chat model ------------------------------------------------------------------------

PRETRAINED_CONFIG = "demo_smollm2.yaml"
PHRASINGS_FILE = "heldout_phrasings.jsonl"
# Kept out of GRPO's time budget: the phrasing evaluation (the base and the trained model, 200 greedy
# answers each, about 2 validations' time; reserved in validations, so that it scales with the
# machine: a fixed 60 s made a 10-minute demo take 663 s when the machine ran at half speed), and
# loading and the report (seconds).
PHRASING_EVAL_VALS = 2.0
FINAL_EVAL_RESERVE_S = 20.0


def run_pretrained_demo(model: str, overrides: list[str], minutes: float | None, console: Console) -> dict[str, Any]:
    """A pretrained chat model (default: the ``smollm2-135m-instruct`` preset) learns two-digit word
    problems with GRPO and LoRA (``rft/configs/demo_smollm2.yaml``): held-out greedy accuracy before
    and after, the same on problems worded unlike any training template (evaluated with ``rft eval``'s
    path), and the capability guard's general-text NLL before and after. ``minutes`` bounds the whole
    demo (GRPO stops early to leave time for the final evaluations)."""
    from rft.commands.eval import eval_command
    from rft.models.presets import preset_note
    from rft.tasks.word_problems import heldout_phrasings

    t0 = time.perf_counter()
    cfg = load_config(demo_config_path(PRETRAINED_CONFIG), [f"model.path={model}", *overrides])
    console.print(f"[bold]1/4 model[/] {cfg.model.path}")
    model_dir = resolve_model_path(cfg.model.path, cfg.model.revision)  # a preset is fetched and converted on first use
    n_params = sum(p.numel() for p in load_model(model_dir).parameters())
    note = preset_note(model_dir)
    console.print(f"   {model_dir} ({n_params / 1e6:.1f}M parameters, {time.perf_counter() - t0:.0f}s)"
                  + (f"\n   note: {note}" if note else ""))
    task = cfg.data.task
    console.print(f"[bold]2/4 task[/] {task.digits}-digit word problems ({' and '.join(task.ops)}), chat prompts, "
                  f"graded on the last number of the reply; {task.val_size} held-out problems")

    console.print(f"[bold]3/4 GRPO[/] LoRA r={cfg.model.lora.r if cfg.model.lora else '-'}, "
                  f"{cfg.grpo.prompts_per_step} prompts x {cfg.sampling.num_generations} samples a step, "
                  f"T={cfg.sampling.temperature}, capability guard {'on' if cfg.eval.capability else 'off'}")
    budget = minutes * 60 - (time.perf_counter() - t0) - FINAL_EVAL_RESERVE_S if minutes else None
    result: TrainResult = train(cfg, overwrite=True, console=console, time_limit_s=budget,
                                after_vals=PHRASING_EVAL_VALS)

    console.print(f"[bold]4/4 held-out phrasings[/] {task.val_size} problems worded unlike any training template")
    phrasings = Path(result.run_dir) / PHRASINGS_FILE
    write_jsonl(phrasings, heldout_phrasings(task, cfg.seed))
    evals = eval_command([str(model_dir), str(result.run_dir)], str(phrasings), out=str(phrasings.with_suffix(".eval.json")),
                         threads=cfg.threads, quiet=True)
    total = time.perf_counter() - t0
    before, after = result.first_val, result.last_val
    ph_before, ph_after = evals[0].metrics["pass@1"], evals[1].metrics["pass@1"]
    ops = {e.id: e.get("op") for e in read_dataset(phrasings)}
    by_op = {op: [_passed_share(ev.rows, ops, op) for ev in evals] for op in sorted(set(ops.values()))}
    rows = [
        ("held-out problems, greedy (before -> after)", f"{before['val/pass@1']:.1%} -> {after['val/pass@1']:.1%}"),
        ("held-out phrasings, greedy (before -> after)", f"{ph_before:.1%} -> {ph_after:.1%}  ("
         + ", ".join(f"{op} {b:.0%} -> {a:.0%}" for op, (b, a) in by_op.items()) + ")"),
    ]
    if "val/cap/nll" in after:
        rows.append(("general-text NLL (before -> after)", f"{before['val/cap/nll']:.3f} -> {after['val/cap/nll']:.3f} "
                     f"({after['val/cap/nll_rise']:+.1%}), KL to start {after['val/cap/kl']:.4f}"))
    rows += [("GRPO steps", result.steps), ("total time", f"{total:.0f}s"), ("run directory", str(result.run_dir)),
             ("compare yourself", f"rft eval {cfg.model.path} {result.run_dir} --data {phrasings}")]
    if note:
        rows.append(("model", note))
    console.table(f"rft demo: {cfg.model.path}", rows)
    return {"before": before, "after": after, "phrasings_before": ph_before, "phrasings_after": ph_after,
            "phrasings_by_op": by_op, "steps": result.steps, "seconds": total, "run_dir": str(result.run_dir)}


def _passed_share(rows: list[dict[str, Any]], ops: dict[str, str], op: str) -> float:
    mine = [r for r in rows if ops.get(r["id"]) == op]
    return sum(bool(r["passed"]) for r in mine) / max(len(mine), 1)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="a pretrained chat model (preset name or directory) instead of the tiny model; "
                   "uses rft/configs/demo_smollm2.yaml")
    p.add_argument("--task", choices=["sql"], help="sql: a pretrained chat model (default smollm2-135m-instruct) "
                   "learns a database's SQL and to fix its queries from SQLite's errors: doctor, SFT warm start, "
                   "3-turn GRPO (rft/configs/demo_sql_smollm2.yaml)")
    p.add_argument("--steps", type=int, help="GRPO steps (default from the demo config)")
    p.add_argument("--minutes", type=float, help="wall-clock budget; GRPO stops early to stay within it "
                   "(default: none for the tiny model, 10 with --model, 20 with --task sql)")
    p.add_argument("--seed", type=int)
    p.add_argument("--output-dir", help="where run directories go (default runs/)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--quiet", action="store_true")


def run(args: argparse.Namespace) -> int:
    overrides = list(args.overrides)
    if args.steps is not None:
        overrides.append(f"grpo.steps={args.steps}")
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    if args.output_dir is not None:
        overrides.append(f"output_dir={args.output_dir}")
    console = Console(args.quiet)
    if args.task == "sql":
        from rft.commands.demo_sql import run_sql_demo

        minutes = args.minutes if args.minutes is not None else 20.0
        model = args.model if args.model not in (None, "embedded") else "smollm2-135m-instruct"
        end_of_run_report(run_sql_demo(model, overrides, minutes, console)["run_dir"], console)
        return 0
    if args.model not in (None, "embedded"):
        minutes = args.minutes if args.minutes is not None else 10.0
        end_of_run_report(run_pretrained_demo(args.model, overrides, minutes, console)["run_dir"], console)
        return 0
    end_of_run_report(run_demo(overrides, args.minutes, console)["run_dir"], console)
    return 0
