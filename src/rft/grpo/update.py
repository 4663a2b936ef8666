"""One GRPO policy update over a graded rollout batch: mu passes, gradient accumulation, clipping.

The batch is group-major (rows g*G .. g*G+G-1 are one prompt's group) and split into
``gradient_accumulation_steps`` micro-batches of whole groups. Old log-probs are computed only when
``num_iterations`` (mu) > 1; with mu = 1 the ratio is ``exp(logp - logp.detach())``. The model stays
in eval mode (dropout off) so that the scored distribution is the sampled one.
"""

from __future__ import annotations

from typing import Callable

import torch
from transformers import PreTrainedModel

from rft.config import GRPOConfig
from rft.grpo.logprobs import TokenBatch, completion_logprobs
from rft.grpo.loss import AGGREGATIONS, LossNorm, k3_kl, per_token_loss


def batch_logprobs(model: PreTrainedModel, tokens: TokenBatch, micro: int, temperature: float) -> torch.Tensor:
    """Log-probs of every completion token, without keeping activations (old policy, reference).
    Runs under inference_mode (no autograd bookkeeping); the result is cloned out of it so that the
    loss may use it like any constant tensor."""
    with torch.inference_mode():
        parts = [completion_logprobs(model, tokens.select(slice(i, i + micro)), temperature)[0]
                 for i in range(0, tokens.input_ids_BL.shape[0], micro)]
        out = torch.cat(parts)
    return out.clone()


def update_policy(
    model: PreTrainedModel,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    tokens: TokenBatch,
    adv_B: torch.Tensor,
    ref_logp_BC: torch.Tensor | None,
    cfg: GRPOConfig,
    temperature: float,
    max_completion_length: int,
    norm: LossNorm | None = None,
    grad_sync: Callable[[list[torch.Tensor]], None] | None = None,
) -> dict[str, float]:
    """``norm``: the loss normalisers; default the counts of this batch. ``grad_sync``: called on the
    trained parameters after an update's backward passes, before clipping. Data-parallel ranks
    (rft.distributed) pass the global batch's counts and a gradient sum, so that their update equals
    one process's on the whole batch."""
    device = next(model.parameters()).device
    B = tokens.input_ids_BL.shape[0]
    micro = B // cfg.gradient_accumulation_steps
    mask_BC = tokens.completion_mask_BC.to(device)
    adv_B = adv_B.to(device)
    norm = norm or LossNorm(B, int(mask_BC.sum()), cfg.gradient_accumulation_steps, max_completion_length)
    old_logp_BC = batch_logprobs(model, tokens, micro, temperature) if cfg.num_iterations > 1 else None
    eps_high = cfg.epsilon_high if cfg.epsilon_high is not None else cfg.epsilon
    params = [p for p in model.parameters() if p.requires_grad]

    sums = {"loss": 0.0, "entropy": 0.0, "kl": 0.0, "clipped": 0.0, "grad_norm": 0.0}
    n_tok = float(mask_BC.sum())
    for it in range(cfg.num_iterations):
        optimizer.zero_grad(set_to_none=True)
        for start in range(0, B, micro):
            rows = slice(start, start + micro)
            m = mask_BC[rows]
            logp, entropy = completion_logprobs(model, tokens.select(rows), temperature, with_entropy=it == 0)
            old = old_logp_BC[rows] if old_logp_BC is not None else logp.detach()
            ref = ref_logp_BC[rows].to(device) if ref_logp_BC is not None else None
            loss_BT, clipped_BT = per_token_loss(logp, old, adv_B[rows], cfg.epsilon, eps_high, cfg.beta, ref)
            loss = AGGREGATIONS[cfg.loss_type](loss_BT, m, norm)
            loss.backward()
            sums["loss"] += float(loss.detach()) / cfg.num_iterations
            sums["clipped"] += float((clipped_BT.float() * m).sum()) / cfg.num_iterations
            if it == 0:
                sums["entropy"] += float((entropy * m).sum())
                if ref is not None:
                    sums["kl"] += float((k3_kl(logp.detach(), ref) * m).sum())
        if grad_sync is not None:
            grad_sync(params)
        grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        sums["grad_norm"] += float(grad_norm) / cfg.num_iterations
        optimizer.step()
        scheduler.step()
    out = {
        "loss": sums["loss"],
        "entropy": sums["entropy"] / max(n_tok, 1.0),
        "clip_frac": sums["clipped"] / max(n_tok, 1.0),
        "grad_norm": sums["grad_norm"],
        "lr": scheduler.get_last_lr()[0],
    }
    if ref_logp_BC is not None:
        out["kl"] = sums["kl"] / max(n_tok, 1.0)
    return out
