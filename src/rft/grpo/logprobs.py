"""Per-token log-probabilities of completion tokens under a causal LM.

A batch is laid out as ``[left-padded prompt | right-padded completion]``: every prompt ends at
column P, so the logits that predict the completion are the last ``C + 1`` positions minus the final
one, and the model computes only those (``logits_to_keep``). Log-probs are gathered token by token
(``logit[token] - logsumexp(logits)``) instead of materialising a log-softmax of the whole batch.
Logits are divided by the sampling temperature, so that the scored distribution is the sampled one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import PreTrainedModel


@dataclass
class TokenBatch:
    """input_ids_BL = prompt (P columns, left-padded) + completion (C columns, right-padded)."""

    input_ids_BL: torch.Tensor
    attention_mask_BL: torch.Tensor
    completion_mask_BC: torch.Tensor  # 1 on real completion tokens (EOS included), 0 on padding
    prompt_width: int

    @property
    def completion_ids_BC(self) -> torch.Tensor:
        return self.input_ids_BL[:, self.prompt_width :]

    def select(self, rows: slice) -> "TokenBatch":
        return TokenBatch(self.input_ids_BL[rows], self.attention_mask_BL[rows], self.completion_mask_BC[rows],
                          self.prompt_width)


def build_token_batch(prompts: list[list[int]], completions: list[list[int]], pad_id: int) -> TokenBatch:
    P = max(len(p) for p in prompts)
    C = max(max((len(c) for c in completions), default=1), 1)
    B = len(prompts)
    ids = torch.full((B, P + C), pad_id, dtype=torch.long)
    attn = torch.zeros((B, P + C), dtype=torch.long)
    cmask = torch.zeros((B, C), dtype=torch.float32)
    for i, (p, c) in enumerate(zip(prompts, completions)):
        ids[i, P - len(p) : P] = torch.tensor(p, dtype=torch.long)
        attn[i, P - len(p) : P + len(c)] = 1
        if c:
            ids[i, P : P + len(c)] = torch.tensor(c, dtype=torch.long)
            cmask[i, : len(c)] = 1.0
    return TokenBatch(ids, attn, cmask, P)


def completion_logprobs(
    model: PreTrainedModel, batch: TokenBatch, temperature: float = 1.0, with_entropy: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(logp_BC, entropy_BC or None) of the completion tokens. Entropy is computed without grad."""
    device = next(model.parameters()).device
    ids = batch.input_ids_BL.to(device)
    attn = batch.attention_mask_BL.to(device)
    pos = (attn.cumsum(-1) - 1).clamp(min=0)
    C = ids.shape[1] - batch.prompt_width
    logits = model(input_ids=ids, attention_mask=attn, position_ids=pos, logits_to_keep=C + 1).logits
    logits_BCV = logits[:, :-1].float()
    if temperature != 1.0:
        logits_BCV = logits_BCV / temperature
    target_BC = ids[:, batch.prompt_width :]
    lse_BC = torch.logsumexp(logits_BCV, dim=-1)
    logp_BC = logits_BCV.gather(-1, target_BC[..., None]).squeeze(-1) - lse_BC
    entropy = None
    if with_entropy:
        with torch.no_grad():
            probs = torch.softmax(logits_BCV.detach(), dim=-1)
            entropy = lse_BC.detach() - (probs * logits_BCV.detach()).sum(-1)
    return logp_BC, entropy
