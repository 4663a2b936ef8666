"""``rft demo --task sql --model smollm2-135m-instruct``: a pretrained chat model learns a company
database's SQL, and to fix its queries from SQLite's errors (``rft/configs/demo_sql_smollm2.yaml``,
copied to ``configs/sql_smollm2.yaml``).

1. the doctor's baseline on the base model (greedy episodes and sampled pass@k on a few validation
   questions; its verdict is shown: a model that writes prose instead of queries gets ``block``,
   nothing to amplify), and the base model's greedy success on the validation questions;
2. an SFT warm start on the gold queries, a share ``sft.retry_share`` of them as procedural retry
   transcripts (a query with a slip, SQLite's real error, the gold query), LoRA over the bf16 base
   (merged into the warm start); the doctor's baseline again, on the warm start;
3. multi-turn GRPO with ``sql_retry`` (up to 3 turns, the error as the next user turn), a fresh LoRA
   over the warm start, within the time left of ``minutes``;
4. the base, the warm start and the final checkpoint on questions of intents never seen in training
   (:func:`rft.tasks.sql.unseen_template_questions`), through ``rft eval`` with the run's environment.

Prints greedy success at turn 1 and within 3 turns of the base, the warm start and the final model
(validation: held-out parameters of seen intents), the same on unseen intents, and the capability
guard's general-text NLL. Not covered: several seeds and the control arms (bench/sql_arms.py), pass@k of the
final model.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rft.config import Config, load_config
from rft.console import Console
from rft.data import write_jsonl

SQL_CONFIG = "demo_sql_smollm2.yaml"
UNSEEN_FILE = "unseen_templates.jsonl"
DOCTOR_N = 16  # validation questions the doctor's baseline samples (k = sampling.num_generations each)
# Kept out of GRPO's time budget, in validations: the unseen-intent evaluation of three models.
UNSEEN_EVAL_VALS = 2.5


def doctor_baseline(cfg: Config, model_path: str | None, n: int = DOCTOR_N) -> tuple[Any, dict[str, float]]:
    """(the doctor's baseline check, greedy episode metrics on the validation questions) of one model."""
    from rft.commands.doctor import check_baseline
    from rft.training.evaluate import evaluate
    from rft.training.session import open_session

    s = open_session(cfg, model_path=model_path)
    with s.pool() as pool:
        _, baseline, _ = check_baseline(s, pool, min(n, len(s.val)), cfg.sampling.num_generations)
        res = evaluate(s.engine(), s.tokenizer, pool, s.eval_examples,
                       cfg.sampling.max_new_tokens, cfg.eval.batch_size, episodes=s.episodes)
    return baseline, res.metrics


def _turns(m: dict[str, float], prefix: str = "", k: int = 3) -> str:
    return f"{m[f'{prefix}episode/success_by_turn_1']:.1%} / {m[f'{prefix}episode/success_by_turn_{k}']:.1%}"


def run_sql_demo(model: str, overrides: list[str], minutes: float | None, console: Console) -> dict[str, Any]:
    from rft.commands.common import demo_config_path
    from rft.commands.eval import eval_command
    from rft.grpo.train import train
    from rft.training.sft import sft
    from rft.tasks.sql import unseen_template_questions

    t0 = time.perf_counter()
    cfg = load_config(demo_config_path(SQL_CONFIG), [f"model.path={model}", *overrides])
    K, task = cfg.environment.turns, cfg.data.task
    console.print(f"[bold]1/4 base model[/] {cfg.model.path}: the doctor's baseline on {DOCTOR_N} questions "
                  f"x {cfg.sampling.num_generations} samples, {K}-turn episodes (sql_retry)")
    base_check, base = doctor_baseline(cfg, None)
    console.print(f"   doctor: [bold]{base_check.verdict}[/] -- {base_check.summary}; {base_check.advice}")
    console.print(f"   greedy success on {cfg.eval.size or task.val_size} held-out questions, turn 1 / within {K} turns: {_turns(base, k=K)}")

    console.print(f"[bold]2/4 SFT warm start[/] {cfg.sft.steps} steps on gold queries, {cfg.sft.retry_share:.0%} "
                  "shown as retry transcripts (a slip, SQLite's error, the fix)")
    t_sft = time.perf_counter()
    warm = sft(cfg, overwrite=True, console=console)
    sft_wall = time.perf_counter() - t_sft
    warm_check, _ = doctor_baseline(cfg, str(warm.model_dir))
    console.print(f"   warm start: turn 1 / within {K} turns {_turns(warm.val, 'val/', K)} ({warm.steps} steps, "
                  f"{warm.seconds:.0f}s); doctor: [bold]{warm_check.verdict}[/] -- {warm_check.advice}")

    console.print(f"[bold]3/4 GRPO[/] {K}-turn episodes, LoRA r={cfg.model.lora.r if cfg.model.lora else '-'}, "
                  f"{cfg.grpo.prompts_per_step} prompts x {cfg.sampling.num_generations} episodes a step")
    grpo_cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"path": str(warm.model_dir)})})
    budget = minutes * 60 - (time.perf_counter() - t0) if minutes else None
    t_grpo = time.perf_counter()
    result = train(grpo_cfg, overwrite=True, console=console, time_limit_s=budget, after_vals=UNSEEN_EVAL_VALS)
    grpo_wall = time.perf_counter() - t_grpo

    unseen_path = Path(result.run_dir) / UNSEEN_FILE
    write_jsonl(unseen_path, unseen_template_questions(task, cfg.seed))
    console.print(f"[bold]4/4 unseen intents[/] {sum(1 for _ in unseen_path.open())} questions of intents never "
                  "seen in training (rft eval, the run's environment)")
    evals = eval_command([cfg.model.path, str(warm.run_dir), str(result.run_dir)], str(unseen_path),
                         out=str(unseen_path.with_suffix(".eval.json")), threads=cfg.threads, quiet=True)
    unseen = [ev.metrics for ev in evals]
    total = time.perf_counter() - t0
    after = result.last_val
    rows = [
        (f"held-out questions, turn 1 / within {K} turns", f"base {_turns(base, k=K)}, warm start "
         f"{_turns(result.first_val, 'val/', K)}, final {_turns(after, 'val/', K)}"),
        (f"unseen intents, turn 1 / within {K} turns", ", ".join(
            f"{name} {_turns(m, k=K)}" for name, m in zip(("base", "warm start", "final"), unseen))),
        ("doctor: base -> warm start", f"{base_check.verdict} -> {warm_check.verdict}"),
    ]
    if "val/cap/nll" in after:
        rows.append(("general-text NLL (warm start -> final)", f"{result.first_val['val/cap/nll']:.3f} -> "
                     f"{after['val/cap/nll']:.3f} ({after['val/cap/nll_rise']:+.1%} vs the start of GRPO)"))
    rows += [("SFT steps / GRPO steps", f"{warm.steps} / {result.steps}"), ("total time", f"{total:.0f}s"),
             ("run directory", str(result.run_dir)),
             ("compare yourself", f"rft eval {cfg.model.path} {warm.run_dir} {result.run_dir} --data {unseen_path}")]
    console.table(f"rft demo --task sql: {cfg.model.path}", rows)
    return {"base": base, "warm": result.first_val, "after": after, "unseen": unseen,
            "doctor": {"base": base_check.verdict, "warm": warm_check.verdict}, "sft_steps": warm.steps,
            "sft_s": warm.seconds, "steps": result.steps, "seconds": total, "run_dir": str(result.run_dir),
            "sft_run_dir": str(warm.run_dir), "sft_wall_s": sft_wall, "grpo_wall_s": grpo_wall,
            "unseen_path": str(unseen_path)}

