"""The GRPO training loop. One plain function that reads top to bottom, phase by phase:

    rollout -> grade -> advantages -> ref_logprobs -> update -> (validate) -> (checkpoint)

Grading overlaps the model work that needs no rewards: the rollout phase
(:class:`rft.grpo.groups.GroupSampler`) returns this rank's rows at once and submits their grades
to the grader pool; the token batch and the reference log-probs are computed while the pool's
worker processes grade, and the loop waits for the grades (``Rollout.wait()``) only before the
advantages. With ``grpo.dynamic_sampling`` the grades decide the refills, so the rollout grades in
sequence and the wait returns at once. The order of every computation on the tensors is the same
either way, so a fixed seed gives the same rewards and weights as grading first. Not overlapped:
with ``grading.workers: 0`` the pool grades in-process inside the wait.

Each phase is timed under its own name (``time/<phase>``) in ``metrics.jsonl``; the phases do not
overlap in the loop's own time, so rollout to update add up to about ``step_s``. ``time/grade`` is
the time the loop spends in the pool (submitting and waiting for grades), not the graders' work,
part of which ran during ``time/ref_logprobs`` (on a machine with few cores, graders that use CPU
slow that forward down); what one grade costs in its worker is ``grader/<type>/latency_ms``.
``time/advantages`` includes building the token batch. A step is one rollout batch of
``prompts_per_step`` groups of ``num_generations`` completions, followed by ``num_iterations``
optimizer updates, or none when the step has no signal (every advantage 0, and beta 0 or the
policy still at the reference: ``update_skipped`` = 1; :mod:`rft.grpo.update`), or none when its loss
or gradient is NaN or inf (``update_skipped_nonfinite`` = 1, an alert; ``grpo.max_nonfinite_steps``
of those in a row stop the run with a NonFiniteError, and no checkpoint is written from a model
that is not finite). Validation (greedy
pass@1 on the held-out split) runs before step 1 and every ``eval.every`` steps; the best model by
validation is kept in ``checkpoints/best``.
``resume=RUN_DIR`` restores model, optimizer, scheduler, RNG and data cursor from the latest
checkpoint and continues exactly as the uninterrupted run would.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from rft.config import Config
from rft.console import Console, clock, timed
from rft.data import PromptCursor
from rft.envs.episodes import EpisodeRunner, model_ids
from rft.graders.pool import GraderPool
from rft.graders.stats import GraderStats
from rft.grpo.advantages import group_advantages, zero_std_fraction
from rft.grpo.control import step_rewards
from rft.grpo.groups import Group, GroupSampler
from rft.grpo.logprobs import build_token_batch
from rft.grpo.update import (
    Batch,
    batch_logprobs,
    global_loss_norm,
    reduce_update_metrics,
    update_policy,
)
from rft.models.load import context_length, load_model, resolve_model_path
from rft.models.lora import is_lora, reference_scoring
from rft.report.loggers import run_sinks
from rft.rollout import RolloutEngine, SamplingParams
from rft.safety.capability import CapabilityGuard
from rft.safety.monitors import Monitors, emit_alerts, repetition_rate
from rft.training.checkpoint import load_training_state
from rft.training.distributed import (
    Dist,
    FollowerRunDir,
    init_distributed,
    save_checkpoint_on_main,
)
from rft.training.evaluate import evaluate, sampled_pass_at_k
from rft.training.optim import make_optimizer, make_scheduler, rng_state, set_rng_state
from rft.training.run_dir import RunDir
from rft.training.session import Session, open_session


@dataclass
class TrainResult:
    run_dir: Path
    first_val: dict[str, float]
    last_val: dict[str, float]
    best_val: float
    steps: int


@dataclass
class TrainState:
    """Where the run is; saved as a checkpoint's ``trainer_state.json`` next to the tensors."""

    step: int = 0
    best_val: float = -1.0  # the best held-out pass@1 so far (checkpoints/best)
    first_val: dict[str, float] = field(default_factory=dict)
    last_val: dict[str, float] = field(default_factory=dict)
    cursor: dict[str, int] = field(default_factory=dict)  # PromptCursor.state() after the step


def step_record(step: int, groups: list[Group], sampled: list[Group], G: int, step_s: float, repetition_ngram: int,
                dynamic_sampling: bool, update: dict[str, float], times: dict[str, float],
                grader_stats: dict[str, float], episodes: EpisodeRunner | None = None) -> dict[str, Any]:
    """The step's ``train`` record of metrics.jsonl. Policy statistics are over everything sampled
    this step (groups dropped by dynamic sampling included); ``update`` is update_policy's metrics.
    Lengths and repetition count the model's tokens (an episode's observations left out)."""
    done = [c for grp in sampled for c in grp.completions]
    rewards = torch.tensor([gr.score for grp in sampled for gr in grp.grades], dtype=torch.float32)
    lengths = torch.tensor([len(model_ids(c)) for c in done], dtype=torch.float32)
    record: dict[str, Any] = {
        "type": "train", "step": step,
        "reward_mean": float(rewards.mean()), "reward_std": float(rewards.std()),
        "frac_zero_std_groups": zero_std_fraction(rewards, G),
        "completion_len_mean": float(lengths.mean()), "completion_len_max": float(lengths.max()),
        "truncated_frac": sum(c.finish_reason == "length" for c in done) / len(done),
        "repetition": repetition_rate([model_ids(c) for c in done], repetition_ngram),
        "grader_errors": sum(gr.errored for grp in sampled for gr in grp.grades),
        "completion_tokens_per_s": float(lengths.sum()) / step_s, "step_s": step_s,
        **update, **times, **grader_stats,
        **(episodes.metrics(done, [gr for grp in sampled for gr in grp.grades]) if episodes else {}),
    }
    if dynamic_sampling:
        record["dynamic/groups_sampled"] = len(sampled)
        record["dynamic/groups_with_signal"] = sum(grp.has_signal for grp in groups)
    return record


def sample_rows(groups: list[Group], adv_B: torch.Tensor, episodes: EpisodeRunner | None = None) -> list[dict[str, Any]]:
    """The training groups as rows of ``samples/step_N.jsonl``, with each completion's advantage (and
    in a multi-turn run its transcript)."""
    rows = [(i, grp.example, c, gr) for i, grp in enumerate(groups) for c, gr in zip(grp.completions, grp.grades)]
    return [{"group": i, "prompt": e.prompt, "completion": c.text, "score": gr.score, "reason": gr.reason,
             "advantage": float(a), **(episodes.sample_fields(c) if episodes else {})}
            for (i, e, c, gr), a in zip(rows, adv_B)]


def validate(s: Session, sampler: RolloutEngine, pool: GraderPool, run: RunDir, step: int,
             guard: CapabilityGuard | None = None) -> dict[str, float]:
    """Greedy pass@1 and mean reward per grader on the held-out split; pass@k and maj@n from
    ``eval.samples`` samples per example on its first ``eval.sampled_size`` examples (a fixed seed, so
    successive validations differ only by the policy; training's sampling streams are not touched); the
    capability guard's general-text NLL and KL."""
    e, sc = s.cfg.eval, s.cfg.sampling
    res = evaluate(sampler, s.tokenizer, pool, s.eval_examples, sc.max_new_tokens, e.batch_size, e.track_fields,
                   s.episodes)
    metrics = dict(res.metrics)
    if e.samples > 0:
        sampled = sampled_pass_at_k(sampler, s.tokenizer, pool, s.eval_examples[: e.sampled_size], e.samples,
                                    SamplingParams.of(sc), torch.Generator().manual_seed(s.cfg.seed + 104_729),
                                    max(1, e.batch_size // e.samples), s.episodes)
        metrics.update({f"sampled/{k}": v for k, v in sampled.items()})
    if guard is not None:
        metrics.update(guard.measure(s.model))
    pool.pop_stats()  # validation grades are not training grader stats
    run.write_samples(f"val_step_{step:06d}", res.rows[:100])
    run.write_samples(f"val_passed_step_{step:06d}", [{"id": r["id"], "passed": r["passed"]} for r in res.rows])
    return {f"val/{k}": v for k, v in metrics.items()}


def never(step_s: float) -> bool:
    """``train``'s default ``until``: no caller's rule ends the run."""
    return False


def out_of_time(deadline: float | None, step_s: float, val_s: float) -> bool:
    """Whether another step of ``step_s`` plus a final validation of ``val_s`` would end past ``deadline``."""
    return deadline is not None and time.monotonic() + step_s + val_s > deadline


def train(cfg: Config, *, resume: str | Path | None = None, overwrite: bool = False, console: Console | None = None,
          time_limit_s: float | None = None, after_vals: float = 0.0, until: Callable[[float], bool] = never) -> TrainResult:
    """GRPO as in DeepSeekMath (Shao et al. 2024): G samples (episodes, rft.envs) per prompt, graded;
    every token the model wrote gets A = r - mean(its group's r) (/ std, ``scale_rewards``); loss =
    PPO-clipped surrogate + beta * k3 KL to the frozen reference, aggregated as ``loss_type`` says.
    No critic, no reward model. DAPO's clip-higher and dynamic sampling are switches of the same loop.

    ``time_limit_s`` ends the run (validated, checkpointed) after the first step past which another step and
    the final validation, timed as the last ones, would not fit (plus ``after_vals`` validations for the caller,
    e.g. the SmolLM2 demo's); so does ``until(step_s)`` returning True (rft doctor's probe). Under torchrun
    this is one data-parallel rank (rft.training.distributed); only rank 0 writes and prints."""
    deadline = time.monotonic() + time_limit_s if time_limit_s is not None else None  # loading counts too
    ctx = init_distributed(cfg)
    console, run, ckpt = open_run(cfg, ctx, resume, console)

    # Everything is loaded and checked before the run directory is touched: bad input leaves nothing.
    s = open_session(cfg, model_path=str(ckpt) if ckpt else None)
    model, tok, g, G = s.model, s.tokenizer, cfg.grpo, cfg.sampling.num_generations
    ref_model = reference_model(cfg, model)
    ctx.shard_model(model)  # FSDP under torchrun: before the optimizer, which must see the sharded parameters
    optimizer = make_optimizer(model, g.lr, g.weight_decay)
    scheduler = make_scheduler(optimizer, g.lr_schedule, g.warmup_steps, g.steps * g.num_iterations)
    cursor = PromptCursor(len(s.train), cfg.seed)
    engine = s.engine(model)  # sampling.backend: the torch sampler or vLLM
    pool = s.pool()
    groups_of = GroupSampler(engine, pool, s.train, s.prompt_ids, cursor, SamplingParams.of(cfg.sampling), G, g,
                             cfg.seed, ctx, s.episodes)
    state, val_s = TrainState(), 0.0  # val_s: the last validation's seconds, what the final one should take
    guard, guard_ref = capability_guard(cfg, model, tok), run.path / "capability_ref.pt"

    def save(name: str, latest: bool) -> None:
        save_checkpoint_on_main(ctx, run, name, model=model, tokenizer=tok, optimizer=optimizer, scheduler=scheduler,
                                rng=rng_state(), state=asdict(state), latest=latest)

    if ckpt is not None:
        state = restore(ckpt, ctx, model, optimizer, scheduler, cursor)
        run.truncate_metrics(state.step)
        console.print(f"resuming {run.path} from step {state.step}")
        guard = resumed_guard(guard, guard_ref, console)
    else:
        run.create(cfg.to_yaml(), overwrite=overwrite)
        state, val_s = first_validation(s, engine, pool, run, ctx, guard, guard_ref)
        console.print(f"step 0: held-out pass@1 {state.first_val['val/pass@1']:.3f}")

    ctx.barrier()  # rank 0 has created or truncated the run directory before the others read it
    monitors = Monitors(cfg.monitors, run.read_metrics(), g.max_nonfinite_steps)  # a resumed run replays its records
    with console.progress(g.steps, "grpo") as bar:
        bar.update(state.step)
        for step in range(state.step + 1, g.steps + 1):
            times: dict[str, float] = {}  # time/<phase>: seconds of each phase of this step
            t_step = clock()

            # rollout (+ grade): G samples per prompt; this rank's rows now, grades in flight in the pool
            with ctx.full_weights(model):
                rollout = groups_of.rollout(step, times)
            with timed(times, "advantages"):
                tokens = build_token_batch([s.prompt_ids[e.id] for e in rollout.examples],
                                           [c.token_ids for c in rollout.completions], engine.pad_id, rollout.loss_masks)

            # ref_logprobs: only when the KL penalty is on; no activations kept; the pool grades meanwhile
            ref_logp = None
            if ref_model is not None:
                with timed(times, "ref_logprobs"), reference_scoring(ref_model):
                    micro = tokens.input_ids_BL.shape[0] // g.gradient_accumulation_steps
                    ref_logp = batch_logprobs(ref_model, tokens, micro, cfg.sampling.temperature)
            groups, sampled = rollout.wait()  # every rank's graded groups

            # advantages: group-relative, no critic; over the whole batch, then each rank trains on its rows
            with timed(times, "advantages"):
                rewards_B = step_rewards(groups, g.control, cfg.seed, step)  # a control arm: rft.grpo.control
                adv_B = group_advantages(rewards_B, G, g.scale_rewards)

            # update: clipped surrogate (+ beta * KL), mu passes, whole groups per micro-batch (or skipped)
            with timed(times, "update"):
                norm = global_loss_norm(ctx, tokens, g.gradient_accumulation_steps, cfg.sampling.max_new_tokens)
                batch = Batch(tokens, adv_B[ctx.shard(len(adv_B))], ref_logp, norm)  # this rank's rows
                upd = update_policy(model, optimizer, scheduler, batch, g, cfg.sampling.temperature, ctx)
                upd = reduce_update_metrics(ctx, upd, tokens)

            step_s = clock() - t_step
            last = ctx.any(step == g.steps or out_of_time(deadline, step_s, val_s * (1 + after_vals)) or until(step_s))
            record = step_record(step, groups, sampled, G, step_s, cfg.monitors.repetition_ngram, g.dynamic_sampling,
                                 upd, times, GraderStats.merged(ctx.gather([pool.pop_stats()])).metrics(), s.episodes)
            state.step, state.cursor = step, cursor.state()

            # monitors: reward-hacking alerts; one named in monitors.stop_on ends the run like the time limit
            alerts = monitors.observe_train(record)
            last = ctx.any(last or bool(monitors.stops(alerts)))  # ranks must agree, or they deadlock

            # validate: held-out greedy pass@1; keep the best model
            if step % cfg.eval.every == 0 or last:
                bar.update(0, now=f"validating on {len(s.eval_examples)} held-out examples")
                with timed(times, "validate"), ctx.full_weights(model):
                    state.last_val = validate(s, engine, pool, run, step, guard)
                    alerts += monitors.observe_val(step, state.last_val)
                    run.write_samples(f"step_{step:06d}", sample_rows(groups, adv_B, s.episodes))
                if state.last_val["val/pass@1"] > state.best_val:
                    state.best_val = state.last_val["val/pass@1"]
                    save("best", latest=False)
            record.update(times)
            run.log_metrics(record)
            if "time/validate" in times:
                val_s = times["time/validate"]
                run.log_metrics({"type": "val", "step": step, **state.last_val})
            last = ctx.any(emit_alerts(alerts, monitors, run, console) or last)  # raises after max_nonfinite_steps

            # checkpoint: atomically, then prune old ones
            if step % cfg.checkpoint.every == 0 or last:
                save(f"step_{step:06d}", latest=True)
                run.prune_checkpoints(cfg.checkpoint.keep_last)

            bar.update(1, reward=f"{record['reward_mean']:.3f}",
                       val=f"{state.last_val.get('val/pass@1', float('nan')):.3f}")
            if last:
                break

    pool.close()
    run.close()
    ctx.close()
    return TrainResult(run.path, state.first_val, state.last_val, state.best_val, state.step)


def open_run(cfg: Config, ctx: Dist, resume: str | Path | None,
             console: Console | None) -> tuple[Console, RunDir, Path | None]:
    """(the console, the run directory, the checkpoint to resume from): rank 0 alone prints and writes."""
    console = (console or Console()) if ctx.is_main else Console(quiet=True)
    run = (RunDir if ctx.is_main else FollowerRunDir)(resume if resume is not None else cfg.run_dir)
    run.sinks = run_sinks(cfg, run.path, console.json_lines)  # TensorBoard etc.; opened on the first record
    ckpt = run.latest_checkpoint() if resume is not None else None
    if resume is not None and ckpt is None:
        raise FileNotFoundError(f"{run.path}: no complete checkpoint to resume from (checkpoints/latest is missing)")
    return console, run, ckpt


def reference_model(cfg: Config, model: torch.nn.Module) -> torch.nn.Module | None:
    """The frozen reference of the KL penalty (None with ``beta: 0``): under LoRA the policy itself with
    its adapter off (no copy); else the configured base, loaded again (also on resume)."""
    if cfg.grpo.beta > 0 and is_lora(model):
        return model
    if cfg.grpo.beta > 0:
        ref = load_model(resolve_model_path(cfg.model.path), cfg.model.dtype, cfg.model.device)
        ref.requires_grad_(False)
        return ref
    return None


def capability_guard(cfg: Config, model: torch.nn.Module, tok: Any) -> CapabilityGuard | None:
    """The guard of general-text ability (``eval.capability``), its paragraphs cut to the model's context."""
    if not cfg.eval.capability:
        return None
    return CapabilityGuard.from_config(tok, cfg.eval.capability_file,
                                       min(cfg.eval.capability_max_tokens, context_length(model)),
                                       model.config.vocab_size)


def first_validation(s: Session, engine: RolloutEngine, pool: GraderPool, run: RunDir, ctx: Dist,
                     guard: CapabilityGuard | None, guard_ref: Path) -> tuple[TrainState, float]:
    """Step 0 of a new run: the starting policy validated and logged, the capability guard's reference
    distributions saved; returns (the state before step 1, the validation's seconds)."""
    t_val = time.monotonic()
    with ctx.full_weights(s.model):
        first = validate(s, engine, pool, run, 0, guard)
    val_s = time.monotonic() - t_val
    if guard is not None and ctx.is_main:
        guard.save(guard_ref)
    run.log_metrics({"type": "val", "step": 0, **first})
    return TrainState(best_val=first["val/pass@1"], first_val=first, last_val=first), val_s


def restore(ckpt: Path, ctx: Dist, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
            scheduler: torch.optim.lr_scheduler.LRScheduler, cursor: PromptCursor) -> TrainState:
    """A checkpoint's training state beside its weights (which the session loaded): optimizer,
    schedule, RNG and the data cursor, so that the run continues exactly as the straight run would."""
    saved, opt_state, sched_state, rng = load_training_state(ckpt)
    ctx.load_optimizer_state(model, optimizer, opt_state)
    scheduler.load_state_dict(sched_state)
    set_rng_state(rng)
    state = TrainState(**saved)
    cursor.epoch, cursor.index = state.cursor["epoch"], state.cursor["index"]
    return state


def resumed_guard(guard: CapabilityGuard | None, ref_path: Path, console: Console) -> CapabilityGuard | None:
    """The guard with the reference distributions the run saved at its start; off when there are none
    (a snapshot now would take the trained policy as the reference)."""
    if guard is not None and ref_path.is_file():
        guard.load(ref_path)
    elif guard is not None:
        console.print(f"capability guard off: {ref_path} is missing (the run was started without the guard)")
        return None
    return guard
