"""The clipped GRPO objective and its loss-aggregation variants, as pure functions on tensors.

Per token (PPO clip, Schulman et al. 2017; GRPO, Shao et al. 2024):

    ratio_t = exp(logp_t - old_logp_t)
    l_t     = -min(ratio_t * A, clip(ratio_t, 1 - eps_low, 1 + eps_high) * A) + beta * KL_t
    KL_t    = exp(ref_t - logp_t) - (ref_t - logp_t) - 1      (k3 estimator, Schulman 2020)

With one update per batch (mu = 1) old_logp is logp detached, so ratio = 1 in value but carries the
gradient of logp. Aggregation over tokens (mask m: 1 on completion tokens) is the variant:

    grpo     sum_i (sum_t l_it m_it / sum_t m_it) / N_seq                (DeepSeekMath: per-sequence mean)
    bnpo     (sum l m / sum m over the micro-batch) / n_micro            (TRL's bnpo)
    dr_grpo  sum l m / (N_seq * max_completion_length)                   (Dr. GRPO, constant normaliser)
    dapo     sum l m / total completion tokens of the whole step batch   (DAPO, token-level)

N_seq and the token total are counted over the whole step batch (all micro-batches), so summing the
micro-batch losses of a step gives the full-batch loss, whatever the gradient accumulation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch


@dataclass(frozen=True)
class LossNorm:
    """Batch-level counts the aggregation variants normalise by."""

    num_sequences: int  # sequences in the whole step batch
    num_tokens: int  # completion tokens in the whole step batch
    num_micro_batches: int
    max_completion_length: int


def k3_kl(logp_BT: torch.Tensor, ref_logp_BT: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimate of KL(policy || reference); >= 0, unbiased in expectation."""
    delta = ref_logp_BT - logp_BT
    return torch.exp(delta) - delta - 1.0


def per_token_loss(
    logp_BT: torch.Tensor,
    old_logp_BT: torch.Tensor,
    adv_B: torch.Tensor,
    eps_low: float,
    eps_high: float,
    beta: float = 0.0,
    ref_logp_BT: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss_BT, clipped_BT): the clipped surrogate (+ beta * KL) and where clipping was active."""
    ratio_BT = torch.exp(logp_BT - old_logp_BT)
    adv_B1 = adv_B[:, None]
    unclipped = ratio_BT * adv_B1
    clipped = torch.clamp(ratio_BT, 1.0 - eps_low, 1.0 + eps_high) * adv_B1
    loss_BT = -torch.minimum(unclipped, clipped)
    if beta != 0.0:
        if ref_logp_BT is None:
            raise ValueError("beta > 0 needs reference log-probs")
        loss_BT = loss_BT + beta * k3_kl(logp_BT, ref_logp_BT)
    return loss_BT, (clipped < unclipped)


def _grpo(loss_BT: torch.Tensor, mask_BT: torch.Tensor, norm: LossNorm) -> torch.Tensor:
    per_seq = (loss_BT * mask_BT).sum(-1) / mask_BT.sum(-1).clamp(min=1)
    return per_seq.sum() / norm.num_sequences


def _bnpo(loss_BT: torch.Tensor, mask_BT: torch.Tensor, norm: LossNorm) -> torch.Tensor:
    return (loss_BT * mask_BT).sum() / mask_BT.sum().clamp(min=1) / norm.num_micro_batches


def _dr_grpo(loss_BT: torch.Tensor, mask_BT: torch.Tensor, norm: LossNorm) -> torch.Tensor:
    return (loss_BT * mask_BT).sum() / (norm.num_sequences * norm.max_completion_length)


def _dapo(loss_BT: torch.Tensor, mask_BT: torch.Tensor, norm: LossNorm) -> torch.Tensor:
    return (loss_BT * mask_BT).sum() / max(norm.num_tokens, 1)


AGGREGATIONS: dict[str, Callable[[torch.Tensor, torch.Tensor, LossNorm], torch.Tensor]] = {
    "grpo": _grpo,
    "bnpo": _bnpo,
    "dr_grpo": _dr_grpo,
    "dapo": _dapo,
}
