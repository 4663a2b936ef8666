"""Supervised warm start: teacher-forced cross-entropy on the completion tokens only.

Each training example is ``prompt -> example[target_field] + EOS`` (``target_field`` falls back to
``answer``). The loss is the mean negative log-likelihood over completion tokens (EOS included);
prompt tokens are context, never targets. Training stops at ``sft.steps`` or as soon as greedy
held-out accuracy (the grader's pass@1) reaches ``sft.target_accuracy``. The result is a model
directory (``save_pretrained``) that ``rft train`` loads through ``model.path``; it is written to a
temporary directory and renamed into place, so a crash never leaves a half-written model.

With a multi-turn environment that makes procedural retry transcripts (``sql_retry``), a share
``sft.retry_share`` of the rows is shown as one: the prompt, a wrong first turn (the target with a
slip), the environment's observation of it, and the target as the second turn -- laid out token for
token as an episode lays them out (:meth:`rft.envs.episodes.EpisodeRunner.retry_prompt`), the wrong
turn and the observation as context only. Validation then runs the environment's episodes.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from rft.config import Config, ConfigError
from rft.console import Console
from rft.data import DataError, Example, PromptCursor
from rft.files import atomic_directory, atomic_write_text
from rft.grpo.logprobs import build_token_batch, completion_logprobs
from rft.models.lora import is_lora
from rft.report.loggers import run_sinks
from rft.training.evaluate import evaluate
from rft.training.optim import make_optimizer, make_scheduler
from rft.training.run_dir import RunDir
from rft.training.session import open_session


@dataclass
class SFTResult:
    run_dir: Path
    model_dir: Path
    steps: int
    val: dict[str, float]
    seconds: float


def sft_run_dir(cfg: Config) -> Path:
    return Path(cfg.output_dir) / f"{cfg.name}-sft"


def target_text(example: Example, field: str) -> str:
    for name in (field, "answer"):
        value = example.get(name)
        if value is not None:
            return str(value)
    raise DataError(f"example {example.id!r} has no '{field}' (or 'answer') field to imitate; set sft.target_field")


def save_model_atomically(model, tokenizer, out: Path) -> Path:
    with atomic_directory(out) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return out


def sft(cfg: Config, *, overwrite: bool = False, console: Console | None = None,
        time_limit_s: float | None = None) -> SFTResult:
    """Run the warm start. ``time_limit_s`` (loading counts too) ends it, validated and saved, after the
    first step past which another step and a validation, timed as the last ones, would not fit -- as
    :func:`rft.grpo.train.train` does (an arm of an equal-wall-time comparison, bench/sql_arms.py)."""
    deadline = time.monotonic() + time_limit_s if time_limit_s is not None else None
    console = console or Console()
    s = open_session(cfg)
    c = cfg.sft
    eos = s.tokenizer.eos_token_id
    targets = {e.id: list(s.tokenizer(target_text(e, c.target_field), add_special_tokens=False)["input_ids"]) + [eos]
               for e in s.train}
    rng = random.Random(cfg.seed + 2)
    retry = {e.id: ids for e in s.train if c.retry_share > 0
             and (ids := s.episodes.retry_prompt(e, s.prompt_ids[e.id], target_text(e, c.target_field), rng))}
    if c.retry_share > 0 and not retry:
        raise ConfigError(f"sft.retry_share: environment {cfg.environment.type!r} makes no retry transcripts for "
                          "these examples; set sft.retry_share to 0")
    run = RunDir(sft_run_dir(cfg))
    run.sinks = run_sinks(cfg, run.path, console.json_lines)
    run.create(cfg.to_yaml(), overwrite=overwrite)

    model, tok = s.model, s.tokenizer
    optimizer = make_optimizer(model, c.lr, c.weight_decay)
    scheduler = make_scheduler(optimizer, "constant", c.warmup_steps, c.steps)
    cursor = PromptCursor(len(s.train), cfg.seed + 1)
    sampler, pool = s.engine(model), s.pool()

    def check(step: int) -> dict[str, float]:
        res = evaluate(sampler, tok, pool, s.eval_examples, cfg.sampling.max_new_tokens, cfg.eval.batch_size,
                       cfg.eval.track_fields, s.episodes)
        pool.pop_stats()
        metrics = {f"val/{k}": v for k, v in res.metrics.items()}
        run.log_metrics({"type": "val", "step": step, **metrics})
        return metrics

    t0 = time.perf_counter()
    val: dict[str, float] = {}
    step, val_s = 0, 0.0
    with console.progress(c.steps, "sft") as bar:
        for step in range(1, c.steps + 1):
            t_step = time.monotonic()
            examples = [s.train[i] for i in cursor.take(c.batch_size)]
            prompts = [retry[e.id] if e.id in retry and rng.random() < c.retry_share else s.prompt_ids[e.id]
                       for e in examples]
            batch = build_token_batch(prompts, [targets[e.id] for e in examples], sampler.pad_id)
            model.train()
            logp_BC, _ = completion_logprobs(model, batch)
            mask = batch.completion_mask_BC.to(logp_BC.device)
            loss = -(logp_BC * mask).sum() / mask.sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), c.max_grad_norm)
            optimizer.step()
            scheduler.step()
            model.eval()
            if step % 25 == 0:
                run.log_metrics({"type": "train", "step": step, "loss": float(loss.detach()), "grad_norm": float(grad_norm),
                                 "lr": scheduler.get_last_lr()[0]})
            now = time.monotonic()
            last = step == c.steps or (deadline is not None and now + (now - t_step) + val_s > deadline)
            if step % c.eval_every == 0 or last:
                val = check(step)
                val_s = time.monotonic() - now
                if c.target_accuracy is not None and val["val/pass@1"] >= c.target_accuracy:
                    bar.update(1, loss=f"{float(loss.detach()):.3f}", val=f"{val['val/pass@1']:.3f}")
                    break
            bar.update(1, loss=f"{float(loss.detach()):.3f}", val=f"{val.get('val/pass@1', float('nan')):.3f}")
            if last:
                break
    seconds = time.perf_counter() - t0
    run.close()
    if is_lora(model):  # merged weights: `rft train` starts from model/ like from any model directory
        model = model.merge_and_unload()
    model_dir = save_model_atomically(model, tok, run.path / "model")
    atomic_write_text(model_dir / "rft_sft.json", json.dumps({"steps": step, "val": val, "seconds": seconds}))
    return SFTResult(run.path, model_dir, step, val, seconds)
