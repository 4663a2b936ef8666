"""The GRPO training loop. One plain function that reads top to bottom, phase by phase:

    rollout -> grade -> advantages -> ref_logprobs -> update -> (validate) -> (checkpoint)

Each phase is timed under its own name (``time/<phase>``) in ``metrics.jsonl``. A step is one
rollout batch of ``prompts_per_step`` groups of ``num_generations`` completions, followed by
``num_iterations`` optimizer updates. Validation (greedy pass@1 on the held-out split) runs before
step 1 and every ``eval.every`` steps; the best model by validation is kept in ``checkpoints/best``.
``resume=RUN_DIR`` restores model, optimizer, scheduler, RNG and data cursor from the latest
checkpoint and continues exactly as the uninterrupted run would.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch

from rft.checkpoint import load_training_state, save_checkpoint
from rft.config import Config
from rft.console import Console
from rft.data import PromptCursor
from rft.evaluate import evaluate
from rft.graders.pool import GraderPool
from rft.grpo.advantages import group_advantages, zero_std_fraction
from rft.grpo.logprobs import build_token_batch
from rft.grpo.update import batch_logprobs, update_policy
from rft.models.load import load_model, resolve_model_path
from rft.models.lora import is_lora, reference_scoring
from rft.optim import make_optimizer, make_scheduler, rng_state, set_rng_state
from rft.report.loggers import run_sinks
from rft.rollout import SamplingParams, TorchSampler
from rft.runs import RunDir
from rft.safety.monitors import Monitors, emit_alerts, repetition_rate
from rft.session import Session, open_session


@dataclass
class TrainResult:
    run_dir: Path
    first_val: dict[str, float]
    last_val: dict[str, float]
    best_val: float
    steps: int


@contextmanager
def timed(times: dict[str, float], phase: str) -> Iterator[None]:
    t0 = time.perf_counter()
    yield
    times[f"time/{phase}"] = times.get(f"time/{phase}", 0.0) + time.perf_counter() - t0


def validate(s: Session, sampler: TorchSampler, pool: GraderPool, run: RunDir, step: int) -> dict[str, float]:
    res = evaluate(sampler, s.tokenizer, pool, s.eval_examples, s.cfg.sampling.max_new_tokens,
                   s.cfg.eval.batch_size, s.cfg.eval.track_fields)
    pool.pop_stats()  # validation grades are not training grader stats
    run.write_samples(f"val_step_{step:06d}", res.rows[:100])
    return {f"val/{k}": v for k, v in res.metrics.items()}


def train(cfg: Config, *, resume: str | Path | None = None, overwrite: bool = False,
          console: Console | None = None, time_limit_s: float | None = None) -> TrainResult:
    """Run GRPO. ``time_limit_s`` ends the run early (validated and checkpointed) once exceeded."""
    console = console or Console()
    run = RunDir(resume if resume is not None else cfg.run_dir)
    run.sinks = run_sinks(cfg, run.path, console.json_lines)  # TensorBoard etc.; opened on the first record
    ckpt = run.latest_checkpoint() if resume is not None else None
    if resume is not None and ckpt is None:
        raise FileNotFoundError(f"{run.path}: no complete checkpoint to resume from (checkpoints/latest is missing)")

    # Everything is loaded and checked before the run directory is touched: bad input leaves nothing.
    s = open_session(cfg, model_path=str(ckpt) if ckpt else None)
    model, tok = s.model, s.tokenizer
    ref_model = None
    if cfg.grpo.beta > 0 and is_lora(model):  # LoRA: the base is the policy with its adapter off, no copy
        ref_model = model
    elif cfg.grpo.beta > 0:  # the frozen reference is always the configured base, also on resume
        ref_model = load_model(resolve_model_path(cfg.model.path), cfg.model.dtype, cfg.model.device)
        ref_model.requires_grad_(False)
    g = cfg.grpo
    G = cfg.sampling.num_generations
    optimizer = make_optimizer(model, g.lr, g.weight_decay)
    scheduler = make_scheduler(optimizer, g.lr_schedule, g.warmup_steps, g.steps * g.num_iterations)
    generator = torch.Generator().manual_seed(cfg.seed)
    cursor = PromptCursor(len(s.train), cfg.seed)
    sampler = TorchSampler(model, tok)
    params = SamplingParams(cfg.sampling.max_new_tokens, cfg.sampling.temperature, cfg.sampling.top_p,
                            cfg.sampling.top_k)
    pool = s.pool()
    state: dict[str, Any] = {"step": 0, "best_val": -1.0, "first_val": {}, "last_val": {}}

    if ckpt is not None:
        state, opt_state, sched_state, rng = load_training_state(ckpt)
        optimizer.load_state_dict(opt_state)
        scheduler.load_state_dict(sched_state)
        set_rng_state(rng, generator)
        cursor.epoch, cursor.index = state["cursor"]["epoch"], state["cursor"]["index"]
        run.truncate_metrics(state["step"])
        console.print(f"resuming {run.path} from step {state['step']}")
    else:
        run.create(cfg.to_yaml(), overwrite=overwrite)
        state["first_val"] = state["last_val"] = validate(s, sampler, pool, run, 0)
        state["best_val"] = state["first_val"]["val/pass@1"]
        run.log_metrics({"type": "val", "step": 0, **state["first_val"]})
        console.print(f"step 0: held-out pass@1 {state['first_val']['val/pass@1']:.3f}")

    deadline = time.monotonic() + time_limit_s if time_limit_s is not None else None
    monitors = Monitors(cfg.monitors, history=run.read_metrics())  # a resumed run replays its records
    with console.progress(g.steps, "grpo") as bar:
        bar.update(state["step"])
        for step in range(state["step"] + 1, g.steps + 1):
            times: dict[str, float] = {}
            t_step = time.perf_counter()

            # rollout: G samples per prompt, sampled in eval mode from the current policy
            with timed(times, "rollout"):
                examples = [s.train[i] for i in cursor.take(g.prompts_per_step)]
                groups = sampler.generate([s.prompt_ids[e.id] for e in examples], G, params, generator)
                flat_examples = [e for e in examples for _ in range(G)]
                completions = [c for grp in groups for c in grp]

            # grade: the verifier's score is the reward; grader failures are score 0, counted
            with timed(times, "grade"):
                grades = pool.grade([c.text for c in completions], flat_examples)
                rewards_B = torch.tensor([gr.score for gr in grades], dtype=torch.float32)

            # advantages: group-relative, no critic
            with timed(times, "advantages"):
                adv_B = group_advantages(rewards_B, G, g.scale_rewards)
                tokens = build_token_batch([s.prompt_ids[e.id] for e in flat_examples],
                                           [c.token_ids for c in completions], sampler.pad_id)

            # ref_logprobs: only when the KL penalty is on; no activations kept
            ref_logp = None
            if ref_model is not None:
                with timed(times, "ref_logprobs"), reference_scoring(ref_model):
                    micro = tokens.input_ids_BL.shape[0] // g.gradient_accumulation_steps
                    ref_logp = batch_logprobs(ref_model, tokens, micro, cfg.sampling.temperature)

            # update: clipped surrogate (+ beta * KL), mu passes, accumulation over whole groups
            with timed(times, "update"):
                upd = update_policy(model, optimizer, scheduler, tokens, adv_B, ref_logp, g,
                                    cfg.sampling.temperature, cfg.sampling.max_new_tokens)

            step_s = time.perf_counter() - t_step
            last = step == g.steps or (deadline is not None and time.monotonic() > deadline)
            lengths = torch.tensor([len(c.token_ids) for c in completions], dtype=torch.float32)
            record: dict[str, Any] = {
                "type": "train", "step": step,
                "reward_mean": float(rewards_B.mean()), "reward_std": float(rewards_B.std()),
                "frac_zero_std_groups": zero_std_fraction(rewards_B, G),
                "completion_len_mean": float(lengths.mean()), "completion_len_max": float(lengths.max()),
                "truncated_frac": sum(c.finish_reason == "length" for c in completions) / len(completions),
                "repetition": repetition_rate([c.token_ids for c in completions], cfg.monitors.repetition_ngram),
                "grader_errors": sum(gr.errored for gr in grades),
                "completion_tokens_per_s": float(lengths.sum()) / step_s, "step_s": step_s,
                **upd, **times, **pool.pop_stats(),
            }
            state["step"] = step
            state["cursor"] = cursor.state()

            # monitors: reward-hacking alerts; one named in monitors.stop_on ends the run like the time limit
            alerts = monitors.observe_train(record)
            last = last or bool(monitors.stops(alerts))

            # validate: held-out greedy pass@1; keep the best model
            if step % cfg.eval.every == 0 or last:
                bar.update(0, now=f"validating on {len(s.eval_examples)} held-out examples")
                with timed(times, "validate"):
                    state["last_val"] = validate(s, sampler, pool, run, step)
                    alerts += monitors.observe_val(step, state["last_val"])
                    run.write_samples(f"step_{step:06d}", [
                        {"group": i // G, "prompt": e.prompt, "completion": c.text, "score": gr.score,
                         "reason": gr.reason, "advantage": float(a)}
                        for i, (e, c, gr, a) in enumerate(zip(flat_examples, completions, grades, adv_B))])
                if state["last_val"]["val/pass@1"] > state["best_val"]:
                    state["best_val"] = state["last_val"]["val/pass@1"]
                    save_checkpoint(run, "best", model=model, tokenizer=tok, optimizer=optimizer,
                                    scheduler=scheduler, rng=rng_state(generator), state=state, latest=False)
            record.update(times)
            run.log_metrics(record)
            if "time/validate" in times:
                run.log_metrics({"type": "val", "step": step, **state["last_val"]})
            last = emit_alerts(alerts, monitors, run, console) or last

            # checkpoint: atomically, then prune old ones
            if step % cfg.checkpoint.every == 0 or last:
                save_checkpoint(run, f"step_{step:06d}", model=model, tokenizer=tok, optimizer=optimizer,
                                scheduler=scheduler, rng=rng_state(generator), state=state, latest=True)
                run.prune_checkpoints(cfg.checkpoint.keep_last)

            bar.update(1, reward=f"{record['reward_mean']:.3f}",
                       val=f"{state['last_val'].get('val/pass@1', float('nan')):.3f}")
            if last:
                break

    pool.close()
    run.close()
    return TrainResult(run.path, state["first_val"], state["last_val"], state["best_val"], state["step"])
