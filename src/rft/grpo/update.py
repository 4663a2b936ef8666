"""One GRPO policy update over a graded rollout batch: mu passes, gradient accumulation, clipping.

The batch is group-major (rows g*G .. g*G+G-1 are one prompt's group) and split into
``gradient_accumulation_steps`` micro-batches of whole groups. Old log-probs are computed only when
``num_iterations`` (mu) > 1; with mu = 1 the ratio is ``exp(logp - logp.detach())``. The model stays
in eval mode (dropout off) so that the scored distribution is the sampled one.

A step without signal does not move the weights (:func:`has_signal`). When every advantage is 0
the clipped surrogate has no gradient, and the KL term's, beta * (1 - exp(ref - logp)) per token,
is 0 while the policy equals the reference -- in exact arithmetic only: two forward passes of the
same weights differ by rounding (up to 4.8e-7 nats at step 1 of a float32 run of the tiny model),
and Adam divides that noise by its own RMS into steps of up to lr on every weight. So the optimizer
step is skipped when every advantage of the global batch is 0 and either beta = 0 or no completion
token's log-prob is more than ``AT_REFERENCE_NATS`` (1e-4) from the reference's. Past that the
policy has really moved and the KL gradient is real: the step is taken and pulls the policy back
toward the reference, which is what beta > 0 asks for. A skipped step leaves the model, Adam's
moments and step count, and the lr schedule as they were (``update_skipped`` = 1 in its metrics):
the schedule counts updates taken, so a skipped one does not use up warm-up, and a decaying
schedule ends that many updates short of 0. Resume is unaffected (the scheduler state is saved).
Not covered: policies in bf16/fp16, whose two forwards may differ by more than 1e-4 nats; there a
step without signal at the reference is still taken, as before.

The update gate: a pass whose loss or (global) gradient norm is NaN or inf is not applied. Its
gradients are zeroed and the optimizer and the schedule are not stepped, so weights, Adam's moments
and the lr stay as they were, and the step's later passes are abandoned (they would start from the
same weights); ``update_skipped_nonfinite`` = 1 in its metrics (``loss`` and ``grad_norm`` keep the
non-finite values, null in metrics.jsonl). The loop alerts on such a step and stops the run with a
:class:`~rft.training.checkpoint.NonFiniteError` after ``grpo.max_nonfinite_steps`` of them in a row
(:mod:`rft.grpo.train`). Rewards are finite by then (the score gate, :func:`rft.graders.base.checked`);
what this catches is the model's side: an lr that overflows, logits that overflow in fp16.
Not covered: a finite update that makes a weight non-finite (an lr near float32's limit); the
checkpoint gate (:func:`rft.training.distributed.save_checkpoint_on_main`) refuses to save such a model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel

from rft.config import GRPOConfig
from rft.grpo.logprobs import TokenBatch, completion_logprobs
from rft.grpo.loss import AGGREGATIONS, LossNorm, k3_kl, per_token_loss
from rft.training.distributed import Dist

# Largest |ref - logp| (nats, any completion token) at which the policy counts as the reference
# itself: 200x the float32 rounding measured between two forwards of the same weights, and 1/10 of
# what one real update moves (the tiny model, 16 completions: up to 1.2e-3 nats at lr 5e-7).
AT_REFERENCE_NATS = 1e-4


def has_signal(adv_B: torch.Tensor, beta: float, max_ref_gap: float) -> bool:
    """Whether a step has a gradient worth an optimizer step: some advantage is nonzero, or the KL
    term is on and the policy is more than AT_REFERENCE_NATS away from the reference on some token
    (``max_ref_gap`` = max |ref - logp| over the completion tokens)."""
    return bool(adv_B.ne(0).any()) or (beta > 0 and max_ref_gap > AT_REFERENCE_NATS)


def batch_logprobs(model: PreTrainedModel, tokens: TokenBatch, micro: int, temperature: float) -> torch.Tensor:
    """Log-probs of every completion token, without keeping activations (old policy, reference).
    Runs under inference_mode (no autograd bookkeeping); the result is cloned out of it so that the
    loss may use it like any constant tensor."""
    with torch.inference_mode():
        parts = [completion_logprobs(model, tokens.select(slice(i, i + micro)), temperature)[0]
                 for i in range(0, tokens.input_ids_BL.shape[0], micro)]
        out = torch.cat(parts)
    return out.clone()


@dataclass
class Batch:
    """This rank's rows of a step, ready for the update: tokens, advantages, the reference's
    log-probs (None without the KL penalty) and the loss normalisers of the whole (global) batch."""

    tokens: TokenBatch
    adv_B: torch.Tensor
    ref_logp_BC: torch.Tensor | None
    norm: LossNorm


def update_policy(model: PreTrainedModel, optimizer: torch.optim.Optimizer,
                  scheduler: torch.optim.lr_scheduler.LRScheduler, batch: Batch, cfg: GRPOConfig,
                  temperature: float, dist: Dist | None = None) -> dict[str, float]:
    """``num_iterations`` optimizer updates on ``batch``. Under torchrun each rank passes its share
    with the global batch's normalisers (:func:`global_loss_norm`); the gradients are summed
    (``dist.sum_grads``, before clipping) and the decision to skip a step without signal is taken
    together (``dist.any``, after the first pass's backward), so that the update, or its skip,
    equals one process's on the whole batch."""
    dist = dist or Dist()  # one process: every collective is the identity
    tokens, norm, ref_logp_BC = batch.tokens, batch.norm, batch.ref_logp_BC
    device = next(model.parameters()).device
    B = tokens.input_ids_BL.shape[0]
    micro = B // cfg.gradient_accumulation_steps
    mask_BC = tokens.completion_mask_BC.to(device)
    adv_B = batch.adv_B.to(device)
    old_logp_BC = batch_logprobs(model, tokens, micro, temperature) if cfg.num_iterations > 1 else None
    eps_high = cfg.epsilon_high if cfg.epsilon_high is not None else cfg.epsilon
    params = [p for p in model.parameters() if p.requires_grad]

    sums = {"loss": 0.0, "entropy": 0.0, "kl": 0.0, "clipped": 0.0, "grad_norm": 0.0}
    n_tok, ref_gap, passes, skipped, nonfinite = float(mask_BC.sum()), 0.0, 0, False, False
    for it in range(cfg.num_iterations):
        optimizer.zero_grad(set_to_none=True)
        pass_loss = 0.0
        for start in range(0, B, micro):
            rows = slice(start, start + micro)
            m = mask_BC[rows]
            logp, entropy = completion_logprobs(model, tokens.select(rows), temperature, with_entropy=it == 0)
            old = old_logp_BC[rows] if old_logp_BC is not None else logp.detach()
            ref = ref_logp_BC[rows].to(device) if ref_logp_BC is not None else None
            if ref is not None:  # off the model's tokens the KL term is exactly 0, not inf * 0 (observations)
                ref = torch.where(m > 0, ref, logp.detach())
            loss_BT, clipped_BT = per_token_loss(logp, old, adv_B[rows], cfg.epsilon, eps_high, cfg.beta, ref)
            loss = AGGREGATIONS[cfg.loss_type](loss_BT, m, norm)
            loss.backward()
            pass_loss += float(loss.detach())
            sums["clipped"] += float((clipped_BT.float() * m).sum())
            if it == 0:
                sums["entropy"] += float((entropy * m).sum())
                if ref is not None:
                    sums["kl"] += float((k3_kl(logp.detach(), ref) * m).sum())
                    ref_gap = max(ref_gap, float(((ref - logp.detach()).abs() * m).max()))
        sums["loss"] += pass_loss
        passes += 1
        if it == 0:  # later passes start from the same weights when this one is skipped: decide once
            mine = has_signal(adv_B, cfg.beta, ref_gap)
            skipped = not dist.any(mine)
            if skipped:  # nothing to apply; a non-finite loss still says the model or the batch is broken
                nonfinite = dist.any(not math.isfinite(pass_loss))
                optimizer.zero_grad(set_to_none=True)
                break
        dist.sum_grads(params)
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm))
        sums["grad_norm"] += grad_norm
        # the update gate: a NaN or inf never reaches the weights or Adam's moments (the ranks agree)
        nonfinite = dist.any(not (math.isfinite(pass_loss) and math.isfinite(grad_norm)))
        if nonfinite:
            optimizer.zero_grad(set_to_none=True)
            break
        optimizer.step()
        scheduler.step()
    out = {
        "loss": sums["loss"] / passes,
        "entropy": sums["entropy"] / max(n_tok, 1.0),
        "clip_frac": sums["clipped"] / passes / max(n_tok, 1.0),
        "grad_norm": sums["grad_norm"] / passes,  # 0 on a skipped update: no gradient was applied
        "lr": scheduler.get_last_lr()[0],
        "update_skipped": float(skipped),
        "update_skipped_nonfinite": float(nonfinite),
    }
    if ref_logp_BC is not None:
        out["kl"] = sums["kl"] / max(n_tok, 1.0)
    return out


def global_loss_norm(dist: Dist, tokens: TokenBatch, grad_accum: int, max_completion_length: int) -> LossNorm:
    """Loss normalisers of the whole step batch: this rank's counts with one process; under torchrun
    sequences and micro-batches times the world size and completion tokens all-reduced."""
    if not dist.enabled:
        return LossNorm(tokens.input_ids_BL.shape[0], int(tokens.completion_mask_BC.sum()), grad_accum,
                        max_completion_length)
    (total_tokens,) = dist.all_reduce_sum([float(tokens.completion_mask_BC.sum())])
    return LossNorm(tokens.input_ids_BL.shape[0] * dist.world_size, int(round(total_tokens)),
                    grad_accum * dist.world_size, max_completion_length)


def reduce_update_metrics(dist: Dist, upd: dict[str, float], tokens: TokenBatch) -> dict[str, float]:
    """Global values of update_policy's metrics: ``loss`` is a share of the global loss (summed);
    per-token means (entropy, clip_frac, kl) are weighted by each rank's completion tokens;
    grad_norm (taken after the gradient sum), lr, update_skipped and update_skipped_nonfinite
    (agreed through ``Dist.any``) are the same on every rank."""
    if not dist.enabled:
        return upd
    same = {"grad_norm", "lr", "update_skipped", "update_skipped_nonfinite"}
    keys = [k for k in sorted(upd) if k not in same]
    n_tok = float(tokens.completion_mask_BC.sum())
    vals = [upd[k] if k == "loss" else upd[k] * n_tok for k in keys] + [n_tok]
    *sums, total = dist.all_reduce_sum(vals)
    out = dict(upd)
    for k, v in zip(keys, sums):
        out[k] = v if k == "loss" else v / max(total, 1.0)
    return out
