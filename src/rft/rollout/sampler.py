"""The built-in batched sampler: KV cache, prefill once per group, finished rows dropped.

For B prompts and ``n`` samples each: the B left-padded prompts are prefilled once, the cache is
repeated ``n`` times per prompt (the G samples of a group share one prefill), then tokens are
decoded one step at a time for all unfinished rows. A row that samples EOS leaves the batch (its
cache rows are dropped), so finished sequences cost nothing. Positions are computed from the
attention mask, so left padding does not shift positions.

Sampling draws from ``generator`` only (never the global RNG): fixed seed -> same completions.
With ``seeds`` (one per prompt) each group instead draws from its own generator, one uniform per
live row per step (inverse-CDF sampling), so a group's completions do not depend on which other
groups share the batch (data-parallel ranks see different batches). Greedy (temperature 0) is
argmax and matches transformers' greedy ``generate``.
"""

from __future__ import annotations

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from rft.models.compat import cache_kwargs
from rft.models.split import last_logits
from rft.rollout.base import Completion, SamplingParams
from rft.rollout.fast_decode import fast_decoder
from rft.rollout.kv_cache import decode_cache

COMPACT_AT = 0.125  # share of finished rows in the batch that triggers dropping them (0.25: 4 % slower at 128 tokens)


def filter_logits(logits_BV: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """Mask logits outside the top-k / nucleus (top-p) set with -inf."""
    if top_k > 0 and top_k < logits_BV.shape[-1]:
        kth = torch.topk(logits_BV, top_k, dim=-1).values[:, -1:]
        logits_BV = logits_BV.masked_fill(logits_BV < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, idx = torch.sort(logits_BV, descending=True, dim=-1)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        drop_sorted = cum - sorted_logits.softmax(-1) > top_p  # keep the token that crosses top_p
        drop = drop_sorted.scatter(-1, idx, drop_sorted)
        logits_BV = logits_BV.masked_fill(drop, float("-inf"))
    return logits_BV


def left_pad(prompts: list[list[int]], pad_id: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, width - len(p) :] = torch.tensor(p, dtype=torch.long)
        mask[i, width - len(p) :] = 1
    return ids.to(device), mask.to(device)


class TorchSampler:
    """Implements :class:`rft.rollout.base.RolloutEngine` with the policy's own forward pass."""

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, fast: bool = True) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.fast = fast  # decode steps written out for GPT-2/Llama-style models (rft.rollout.fast_decode)
        self.eos_id = tokenizer.eos_token_id
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_id

    def _next_tokens(self, logits_BV: torch.Tensor, params: SamplingParams, gen: torch.Generator | None,
                     group_gens: list[torch.Generator] | None, group_B: torch.Tensor) -> torch.Tensor:
        if params.greedy:
            return logits_BV.argmax(-1)
        probs_BV = filter_logits(logits_BV.float() / params.temperature, params.top_k, params.top_p).softmax(-1)
        if group_gens is None:
            return torch.multinomial(probs_BV, 1, generator=gen).squeeze(-1)
        # per-group streams: live rows are group-ordered, so draw each group's uniforms in turn
        counts = torch.bincount(group_B, minlength=len(group_gens)).tolist()
        u_B = torch.cat([torch.rand(k, generator=group_gens[i]) for i, k in enumerate(counts) if k])
        cdf_BV = probs_BV.cumsum(-1)
        u_B = (u_B.to(cdf_BV.device) * cdf_BV[:, -1]).unsqueeze(-1)
        return torch.searchsorted(cdf_BV, u_B, right=True).squeeze(-1).clamp(max=probs_BV.shape[-1] - 1)

    @torch.inference_mode()  # no autograd bookkeeping at all: ~8% faster decode steps than no_grad
    def generate(
        self, prompts: list[list[int]], n: int, params: SamplingParams, generator: torch.Generator | None = None,
        seeds: list[int] | None = None,
    ) -> list[list[Completion]]:
        """``n`` completions per prompt. ``seeds`` (one int per prompt) gives each group its own RNG
        stream, independent of the rest of the batch; otherwise all rows draw from ``generator``."""
        if seeds is not None and len(seeds) != len(prompts):
            raise ValueError(f"seeds: got {len(seeds)} seeds for {len(prompts)} prompts; pass one seed per prompt")
        group_gens = [torch.Generator().manual_seed(int(s)) for s in seeds] if seeds is not None else None
        was_training = self.model.training
        if was_training:  # a GRPO policy is already in eval mode: switching walks every module (~0.6 ms each way)
            self.model.eval()
        try:
            tokens = self._decode(prompts, n, params, generator, group_gens)
        finally:
            if was_training:
                self.model.train()
        out: list[list[Completion]] = []
        for i in range(len(prompts)):
            group = []
            for ids in tokens[i * n : (i + 1) * n]:
                stopped = bool(ids) and ids[-1] == self.eos_id
                text = self.tokenizer.decode(ids[:-1] if stopped else ids, skip_special_tokens=True)
                group.append(Completion(ids, text, "stop" if stopped else "length"))
            out.append(group)
        return out

    def _decode(self, prompts: list[list[int]], n: int, params: SamplingParams, gen: torch.Generator | None,
                group_gens: list[torch.Generator] | None) -> list[list[int]]:
        device = next(self.model.parameters()).device
        T = params.max_new_tokens
        ids, mask = left_pad(prompts, self.pad_id, device)
        cache = decode_cache(self.model, ids.shape[1] + T)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        padded = bool((mask == 0).any())
        logits = last_logits(self.model, input_ids=ids, attention_mask=mask if padded else None, position_ids=pos,
                             use_cache=True, **cache_kwargs(self.model, cache))
        if n > 1:  # share the prefill: repeat cache, mask and logits for the G samples of each prompt
            cache.batch_repeat_interleave(n)
            mask = mask.repeat_interleave(n, 0)
            logits = logits.repeat_interleave(n, 0)
        N = len(prompts) * n
        mask = torch.cat([mask, mask.new_ones((N, T))], dim=-1)  # grows by one column a step (a view)
        width = ids.shape[1]
        next_pos = mask[:, :width].sum(-1, keepdim=True)
        fast = fast_decoder(self.model, cache) if self.fast else None  # None: the model's own forward
        rows = torch.arange(N, device=device)  # original row of each row still in the batch
        done = torch.zeros(N, dtype=torch.bool, device=device)  # finished rows kept until compaction
        tokens_NT = torch.full((N, T), self.pad_id, dtype=torch.long, device=device)
        for t in range(T):
            tok = torch.full_like(rows, self.pad_id)
            live = (~done).nonzero().squeeze(-1)
            if live.numel() == done.numel():
                tok = self._next_tokens(logits, params, gen, group_gens, rows // n)
            else:  # only live rows draw random numbers: a group's stream depends on its own rows only
                tok[live] = self._next_tokens(logits[live], params, gen, group_gens, rows[live] // n)
            tokens_NT[rows[live], t] = tok[live]
            done = done | (tok == self.eos_id)
            n_done = int(done.sum())
            if t == T - 1 or n_done == done.numel():
                break
            # Finished rows stay in the batch (fed pad, ignored) until COMPACT_AT of it is finished:
            # compaction copies the cache, which costs more than a few rows of wasted compute.
            if n_done >= COMPACT_AT * done.numel():
                keep = (~done).nonzero().squeeze(-1)
                cache.batch_select_indices(keep)
                rows, tok, mask, next_pos, done = rows[keep], tok[keep], mask[keep], next_pos[keep], done[keep]
            step_mask = mask[:, : width + t + 1] if padded else None
            if fast is not None:
                logits = fast(tok, next_pos, step_mask.bool() if padded else None)
            else:
                out = self.model(input_ids=tok[:, None], attention_mask=step_mask, position_ids=next_pos,
                                 use_cache=True, **cache_kwargs(self.model, cache))
                logits = out.logits[:, -1]
            next_pos = next_pos + 1
        result = []
        for row in tokens_NT.tolist():  # cut each row after its first EOS
            result.append(row[: row.index(self.eos_id) + 1] if self.eos_id in row else row)
        return result
