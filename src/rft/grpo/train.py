"""The GRPO training loop. One plain function that reads top to bottom, phase by phase:

    rollout -> grade -> advantages -> ref_logprobs -> update -> (validate) -> (checkpoint)

Grading overlaps the model work that needs no rewards: without ``grpo.dynamic_sampling`` the
completions are handed to the grader pool (:meth:`GraderPool.submit`) right after the rollout, the
token batch and the reference log-probs are computed while the pool's worker processes grade, and
the loop waits for the grades only before the advantages. Under torchrun each rank submits its own
share, and the groups are gathered after the wait (each rank trains on the rows it sampled, so it
needs nothing from the others before that). The grades and the order of every computation on the
tensors are unchanged, so a fixed seed gives the same rewards and weights as grading first. Not
overlapped: with ``grading.workers: 0`` the pool grades in-process inside the wait; with dynamic
sampling the grades decide the refills, so every round grades before the next one samples and the
step runs in sequence.

Each phase is timed under its own name (``time/<phase>``) in ``metrics.jsonl``; the phases do not
overlap in the loop's own time, so rollout to update add up to about ``step_s``. ``time/grade`` is
the time the loop spends in the pool (submitting and waiting for grades), not the graders' work,
part of which ran during ``time/ref_logprobs`` (on a machine with few cores, graders that use CPU
slow that forward down); what one grade costs in its worker is ``grader/<type>/latency_ms``.
``time/advantages`` includes building the token batch. A step is one rollout batch of
``prompts_per_step`` groups of ``num_generations`` completions, followed by ``num_iterations``
optimizer updates, or none when the step has no signal (every advantage 0, and beta 0 or the
policy still at the reference: ``update_skipped`` = 1; :mod:`rft.grpo.update`). Validation (greedy
pass@1 on the held-out split) runs before step 1 and every ``eval.every`` steps; the best model by
validation is kept in ``checkpoints/best``.
``resume=RUN_DIR`` restores model, optimizer, scheduler, RNG and data cursor from the latest
checkpoint and continues exactly as the uninterrupted run would.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch

from rft.checkpoint import load_training_state
from rft.config import Config
from rft.console import Console
from rft.data import Example, PromptCursor
from rft.distributed import Dist, FollowerRunDir, group_seeds, init_distributed, save_checkpoint_on_main
from rft.evaluate import evaluate, sampled_pass_at_k
from rft.graders.base import Grade
from rft.graders.pool import GraderPool, PendingGrades
from rft.grpo.advantages import group_advantages, zero_std_fraction
from rft.grpo.logprobs import build_token_batch
from rft.grpo.update import batch_logprobs, global_loss_norm, reduce_update_metrics, update_policy
from rft.models.load import context_length, load_model, resolve_model_path
from rft.models.lora import is_lora, reference_scoring
from rft.optim import make_optimizer, make_scheduler, rng_state, set_rng_state
from rft.report.loggers import run_sinks
from rft.rollout import SamplingParams, TorchSampler
from rft.rollout.base import Completion
from rft.rollout.vllm import make_engine
from rft.runs import RunDir
from rft.safety.capability import CapabilityGuard
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


@dataclass
class Group:
    """One prompt's G graded completions."""

    example: Example
    completions: list[Completion]
    grades: list[Grade]

    @property
    def has_signal(self) -> bool:
        """False when all G rewards are equal: every advantage is 0, the group teaches nothing."""
        scores = [gr.score for gr in self.grades]
        return max(scores) != min(scores)


def _sample(s: Session, sampler: TorchSampler, examples: list[Example], seeds: list[int], params: SamplingParams,
            ctx: Dist, times: dict[str, float]) -> tuple[list[Example], list[list[Completion]]]:
    """rollout: G samples per prompt (eval mode, current policy) of this rank's contiguous share of
    ``examples``; returns (that share, its groups of completions)."""
    mine = ctx.shard(len(examples))
    examples, seeds = examples[mine], seeds[mine]
    with timed(times, "rollout"):
        out = sampler.generate([s.prompt_ids[e.id] for e in examples], s.cfg.sampling.num_generations, params,
                               seeds=seeds)
    return examples, out


def _groups(examples: list[Example], out: list[list[Completion]], grades: list[Grade]) -> list[Group]:
    G = len(out[0]) if out else 0
    return [Group(e, out[i], grades[i * G : (i + 1) * G]) for i, e in enumerate(examples)]


def sample_groups(s: Session, sampler: TorchSampler, pool: GraderPool, examples: list[Example], seeds: list[int],
                  params: SamplingParams, ctx: Dist, times: dict[str, float]) -> list[Group]:
    """rollout then grade, in sequence (grader errors score 0). Under torchrun each rank samples and
    grades its contiguous share of ``examples`` and the groups are gathered: every rank returns all
    of them, in order."""
    examples, out = _sample(s, sampler, examples, seeds, params, ctx, times)
    with timed(times, "grade"):
        grades = pool.grade([c.text for grp in out for c in grp], [e for e, grp in zip(examples, out) for _ in grp])
    return ctx.gather(_groups(examples, out, grades))


@dataclass
class PendingGroups:
    """This rank's sampled groups whose grades are in flight in the pool (:meth:`GraderPool.submit`).
    ``rows()`` are what this rank trains on; ``wait()`` collects the grades and gathers every rank's
    groups, the list :func:`sample_groups` returns."""

    examples: list[Example]
    out: list[list[Completion]]
    grades: PendingGrades
    ctx: Dist

    def rows(self) -> tuple[list[Example], list[Completion]]:
        return [e for e, grp in zip(self.examples, self.out) for _ in grp], [c for grp in self.out for c in grp]

    def wait(self, times: dict[str, float]) -> list[Group]:
        with timed(times, "grade"):
            grades = self.grades.wait()
        return self.ctx.gather(_groups(self.examples, self.out, grades))


def submit_groups(s: Session, sampler: TorchSampler, pool: GraderPool, cursor: PromptCursor, params: SamplingParams,
                  step: int, ctx: Dist, times: dict[str, float]) -> PendingGroups:
    """The step's ``prompts_per_step`` groups sampled (this rank's share) and their grades submitted,
    not awaited: what :func:`rollout` returns without dynamic sampling, once ``wait()`` returns."""
    k = s.cfg.grpo.prompts_per_step
    examples = [s.train[i] for i in cursor.take(k)]
    examples, out = _sample(s, sampler, examples, group_seeds(s.cfg.seed, step, 0, k), params, ctx, times)
    with timed(times, "grade"):  # bad specs raise here; with worker processes the first chunks go out now
        pending = pool.submit([c.text for grp in out for c in grp], [e for e, grp in zip(examples, out) for _ in grp])
    return PendingGroups(examples, out, pending, ctx)


def rollout(s: Session, sampler: TorchSampler, pool: GraderPool, cursor: PromptCursor, params: SamplingParams,
            step: int, ctx: Dist, times: dict[str, float]) -> tuple[list[Group], list[Group]]:
    """(the step's ``prompts_per_step`` training groups, every group sampled this step).

    Without ``grpo.dynamic_sampling`` the two are the same. With it (DAPO, Yu et al. 2025), groups with
    no reward variance are dropped and fresh prompts are sampled, up to ``max_refill_rounds`` more
    rounds; each round asks for the missing count divided by the share of groups with signal so far
    (at least 1/4, at most 4x the batch). A batch still short after the last round is topped up with
    dropped groups, so every update sees the same number of groups. Under torchrun a refill round
    asks for a multiple of the world size, so that every rank gets an equal share."""
    g = s.cfg.grpo
    want = g.prompts_per_step

    def draw(k: int, start: int) -> list[Group]:
        # the step's prompt i samples with the seed of (seed, step, i): the same for any number of ranks
        examples = [s.train[i] for i in cursor.take(k)]
        return sample_groups(s, sampler, pool, examples, group_seeds(s.cfg.seed, step, start, k), params, ctx, times)

    sampled = draw(want, 0)
    if not g.dynamic_sampling:
        return sampled, sampled
    for _ in range(g.max_refill_rounds):
        kept = sum(grp.has_signal for grp in sampled)
        if kept >= want:
            break
        need = ctx.round_up(min(math.ceil((want - kept) / max(kept / len(sampled), 0.25)), 4 * want))
        sampled += draw(need, len(sampled))
    with_signal = [grp for grp in sampled if grp.has_signal][:want]
    top_up = [grp for grp in sampled if not grp.has_signal][: want - len(with_signal)]
    return with_signal + top_up, sampled


def validate(s: Session, sampler: TorchSampler, pool: GraderPool, run: RunDir, step: int,
             guard: CapabilityGuard | None = None) -> dict[str, float]:
    """Greedy pass@1 and mean reward per grader on the held-out split; pass@k and maj@n from
    ``eval.samples`` samples per example on its first ``eval.sampled_size`` examples (a fixed seed, so
    successive validations differ only by the policy; training's sampling streams are not touched); the
    capability guard's general-text NLL and KL."""
    e, sc = s.cfg.eval, s.cfg.sampling
    res = evaluate(sampler, s.tokenizer, pool, s.eval_examples, sc.max_new_tokens, e.batch_size, e.track_fields)
    metrics = dict(res.metrics)
    if e.samples > 0:
        sampled = sampled_pass_at_k(sampler, s.tokenizer, pool, s.eval_examples[: e.sampled_size], e.samples,
                                    SamplingParams(sc.max_new_tokens, sc.temperature, sc.top_p, sc.top_k),
                                    torch.Generator().manual_seed(s.cfg.seed + 104_729), max(1, e.batch_size // e.samples))
        metrics.update({f"sampled/{k}": v for k, v in sampled.items()})
    if guard is not None:
        metrics.update(guard.measure(s.model))
    pool.pop_stats()  # validation grades are not training grader stats
    run.write_samples(f"val_step_{step:06d}", res.rows[:100])
    return {f"val/{k}": v for k, v in metrics.items()}


def out_of_time(deadline: float | None, step_s: float, val_s: float) -> bool:
    """Whether another step of ``step_s`` plus a final validation of ``val_s`` would end past ``deadline``."""
    return deadline is not None and time.monotonic() + step_s + val_s > deadline


def train(cfg: Config, *, resume: str | Path | None = None, overwrite: bool = False,
          console: Console | None = None, time_limit_s: float | None = None) -> TrainResult:
    """Run GRPO. ``time_limit_s`` ends the run early (validated and checkpointed) at the first step after
    which another step and the final validation, timed as the last ones took, would not fit in it.
    Under torchrun this is one data-parallel rank (rft.distributed); only rank 0 writes and prints."""
    t_start = time.monotonic()  # time_limit_s counts from here: loading and the first validation included
    ctx = init_distributed(cfg)
    console = (console or Console()) if ctx.is_main else Console(quiet=True)
    run = (RunDir if ctx.is_main else FollowerRunDir)(resume if resume is not None else cfg.run_dir)
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
    ctx.shard_model(model)  # FSDP under torchrun: before the optimizer, which must see the sharded parameters
    optimizer = make_optimizer(model, g.lr, g.weight_decay)
    scheduler = make_scheduler(optimizer, g.lr_schedule, g.warmup_steps, g.steps * g.num_iterations)
    cursor = PromptCursor(len(s.train), cfg.seed)
    sampler = make_engine(cfg, s.model_path, model, tok)  # sampling.backend: the torch sampler or vLLM
    params = SamplingParams(cfg.sampling.max_new_tokens, cfg.sampling.temperature, cfg.sampling.top_p,
                            cfg.sampling.top_k)
    pool = s.pool()
    state: dict[str, Any] = {"step": 0, "best_val": -1.0, "first_val": {}, "last_val": {}}
    val_s = 0.0  # the last validation's seconds: what the final one is expected to take
    guard, guard_ref = None, run.path / "capability_ref.pt"  # the reference's general-text distributions
    if cfg.eval.capability:
        guard = CapabilityGuard.from_config(tok, cfg.eval.capability_file,  # paragraphs cut to the context
                                            min(cfg.eval.capability_max_tokens, context_length(model)),
                                            model.config.vocab_size)

    if ckpt is not None:
        state, opt_state, sched_state, rng = load_training_state(ckpt)
        ctx.load_optimizer_state(model, optimizer, opt_state)
        scheduler.load_state_dict(sched_state)
        set_rng_state(rng)
        cursor.epoch, cursor.index = state["cursor"]["epoch"], state["cursor"]["index"]
        run.truncate_metrics(state["step"])
        console.print(f"resuming {run.path} from step {state['step']}")
        if guard is not None and guard_ref.is_file():
            guard.load(guard_ref)
        elif guard is not None:  # a snapshot now would take the trained policy as the reference
            guard = None
            console.print(f"capability guard off: {guard_ref} is missing (the run was started without the guard)")
    else:
        run.create(cfg.to_yaml(), overwrite=overwrite)
        t_val = time.monotonic()
        with ctx.full_weights(model):
            state["first_val"] = state["last_val"] = validate(s, sampler, pool, run, 0, guard)
        val_s = time.monotonic() - t_val
        if guard is not None and ctx.is_main:
            guard.save(guard_ref)
        state["best_val"] = state["first_val"]["val/pass@1"]
        run.log_metrics({"type": "val", "step": 0, **state["first_val"]})
        console.print(f"step 0: held-out pass@1 {state['first_val']['val/pass@1']:.3f}")

    ctx.barrier()  # rank 0 has created or truncated the run directory before the others read it
    deadline = t_start + time_limit_s if time_limit_s is not None else None
    monitors = Monitors(cfg.monitors, history=run.read_metrics())  # a resumed run replays its records
    with console.progress(g.steps, "grpo") as bar:
        bar.update(state["step"])
        for step in range(state["step"] + 1, g.steps + 1):
            times: dict[str, float] = {}
            t_step = time.perf_counter()

            # rollout + grade: G samples per prompt scored by the verifier. Dynamic sampling refills on the
            # grades, so it grades here; otherwise the grades are only submitted and the pool grades while
            # the token batch and the reference log-probs, which need no rewards, are computed
            pending = None
            with ctx.full_weights(model):
                if g.dynamic_sampling:
                    groups, sampled = rollout(s, sampler, pool, cursor, params, step, ctx, times)
                else:
                    pending = submit_groups(s, sampler, pool, cursor, params, step, ctx, times)
            if pending is not None:  # this rank's rows are the groups it sampled (a contiguous share)
                rows_examples, rows_completions = pending.rows()
            else:
                mine = ctx.shard(len(groups) * G)
                rows_examples = [grp.example for grp in groups for _ in range(G)][mine]
                rows_completions = [c for grp in groups for c in grp.completions][mine]
            with timed(times, "advantages"):
                tokens = build_token_batch([s.prompt_ids[e.id] for e in rows_examples],
                                           [c.token_ids for c in rows_completions], sampler.pad_id)

            # ref_logprobs: only when the KL penalty is on; no activations kept
            ref_logp = None
            if ref_model is not None:
                with timed(times, "ref_logprobs"), reference_scoring(ref_model):
                    micro = tokens.input_ids_BL.shape[0] // g.gradient_accumulation_steps
                    ref_logp = batch_logprobs(ref_model, tokens, micro, cfg.sampling.temperature)
            if pending is not None:  # time/grade: only what the loop waits here, not the overlapped grading
                groups = sampled = pending.wait(times)
            flat_examples = [grp.example for grp in groups for _ in range(G)]
            completions = [c for grp in groups for c in grp.completions]
            grades = [gr for grp in groups for gr in grp.grades]
            rewards_B = torch.tensor([gr.score for gr in grades], dtype=torch.float32)

            # advantages: group-relative, no critic; over the whole batch, then each rank trains on its rows
            with timed(times, "advantages"):
                adv_B = group_advantages(rewards_B, G, g.scale_rewards)
                mine = ctx.shard(len(completions))

            # update: clipped surrogate (+ beta * KL), mu passes, accumulation over whole groups
            with timed(times, "update"):
                upd = update_policy(model, optimizer, scheduler, tokens, adv_B[mine], ref_logp, g,
                                    cfg.sampling.temperature, cfg.sampling.max_new_tokens,
                                    norm=global_loss_norm(ctx, tokens, g.gradient_accumulation_steps,
                                                       cfg.sampling.max_new_tokens), grad_sync=ctx.sum_grads,
                                    agree=ctx.any)  # a step without signal is skipped on every rank or none
                upd = reduce_update_metrics(ctx, upd, tokens)

            step_s = time.perf_counter() - t_step
            last = ctx.any(step == g.steps or out_of_time(deadline, step_s, val_s))
            # policy statistics are over everything sampled this step (dropped groups included)
            all_done = [c for grp in sampled for c in grp.completions]
            all_rewards = torch.tensor([gr.score for grp in sampled for gr in grp.grades], dtype=torch.float32)
            lengths = torch.tensor([len(c.token_ids) for c in all_done], dtype=torch.float32)
            record: dict[str, Any] = {
                "type": "train", "step": step,
                "reward_mean": float(all_rewards.mean()), "reward_std": float(all_rewards.std()),
                "frac_zero_std_groups": zero_std_fraction(all_rewards, G),
                "completion_len_mean": float(lengths.mean()), "completion_len_max": float(lengths.max()),
                "truncated_frac": sum(c.finish_reason == "length" for c in all_done) / len(all_done),
                "repetition": repetition_rate([c.token_ids for c in all_done], cfg.monitors.repetition_ngram),
                "grader_errors": sum(gr.errored for grp in sampled for gr in grp.grades),
                "completion_tokens_per_s": float(lengths.sum()) / step_s, "step_s": step_s,
                **upd, **times, **ctx.merge_grader_stats(pool.pop_stats()),
            }
            if g.dynamic_sampling:
                record["dynamic/groups_sampled"] = len(sampled)
                record["dynamic/groups_with_signal"] = sum(grp.has_signal for grp in groups)
            state["step"] = step
            state["cursor"] = cursor.state()

            # monitors: reward-hacking alerts; one named in monitors.stop_on ends the run like the time limit
            alerts = monitors.observe_train(record)
            last = ctx.any(last or bool(monitors.stops(alerts)))  # ranks must agree, or they deadlock

            # validate: held-out greedy pass@1; keep the best model
            if step % cfg.eval.every == 0 or last:
                bar.update(0, now=f"validating on {len(s.eval_examples)} held-out examples")
                with timed(times, "validate"), ctx.full_weights(model):
                    state["last_val"] = validate(s, sampler, pool, run, step, guard)
                    alerts += monitors.observe_val(step, state["last_val"])
                    run.write_samples(f"step_{step:06d}", [
                        {"group": i // G, "prompt": e.prompt, "completion": c.text, "score": gr.score,
                         "reason": gr.reason, "advantage": float(a)}
                        for i, (e, c, gr, a) in enumerate(zip(flat_examples, completions, grades, adv_B))])
                if state["last_val"]["val/pass@1"] > state["best_val"]:
                    state["best_val"] = state["last_val"]["val/pass@1"]
                    save_checkpoint_on_main(ctx, run, "best", model=model, tokenizer=tok, optimizer=optimizer,
                                            scheduler=scheduler, rng=rng_state(), state=state, latest=False)
            record.update(times)
            run.log_metrics(record)
            if "time/validate" in times:
                val_s = times["time/validate"]
                run.log_metrics({"type": "val", "step": step, **state["last_val"]})
            last = ctx.any(emit_alerts(alerts, monitors, run, console) or last)

            # checkpoint: atomically, then prune old ones
            if step % cfg.checkpoint.every == 0 or last:
                save_checkpoint_on_main(ctx, run, f"step_{step:06d}", model=model, tokenizer=tok,
                                        optimizer=optimizer, scheduler=scheduler, rng=rng_state(),
                                        state=state, latest=True)
                run.prune_checkpoints(cfg.checkpoint.keep_last)

            bar.update(1, reward=f"{record['reward_mean']:.3f}",
                       val=f"{state['last_val'].get('val/pass@1', float('nan')):.3f}")
            if last:
                break

    pool.close()
    run.close()
    ctx.close()
    return TrainResult(run.path, state["first_val"], state["last_val"], state["best_val"], state["step"])
