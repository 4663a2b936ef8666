"""Per-token log-probabilities of completion tokens under a causal LM.

A batch is laid out as ``[left-padded prompt | right-padded completion]``: every prompt ends at
column P, so the logits that predict the completion are those of positions P-1 .. P+C-2, and the
model computes only those. Each distinct prompt is run once per batch and completions are run in
length buckets (see :func:`completion_logprobs`). Log-probs are gathered token by token
(``logit[token] - logsumexp(logits)``) instead of materialising a log-softmax of the whole batch;
for the common architectures the output layer itself runs in chunks (:class:`HeadLogprobs`).
Logits are divided by the sampling temperature, so that the scored distribution is the sampled one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import DynamicCache, PreTrainedModel
from transformers.cache_utils import DynamicLayer

from rft.models.compat import cache_kwargs
from rft.models.split import split_model


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


def build_token_batch(prompts: list[list[int]], completions: list[list[int]], pad_id: int,
                      loss_masks: list[tuple[int, ...] | None] | None = None) -> TokenBatch:
    """The batch of ``prompts`` + ``completions``; ``loss_masks`` (one per row, None: every token)
    marks which completion tokens are the model's: an episode's observation tokens are context that
    gets no loss, no KL and no entropy term (their ``completion_mask_BC`` is 0)."""
    P = max(len(p) for p in prompts)
    C = max(max((len(c) for c in completions), default=1), 1)
    masks = loss_masks if loss_masks is not None else [None] * len(prompts)
    # laid out as Python lists and converted once: a tensor per row cost ~1 ms for 64 rows
    ids = [[pad_id] * (P - len(p)) + list(p) + list(c) + [pad_id] * (C - len(c)) for p, c in zip(prompts, completions)]
    attn = [[0] * (P - len(p)) + [1] * (len(p) + len(c)) + [0] * (C - len(c)) for p, c in zip(prompts, completions)]
    cmask = [([1.0] * len(c) if own is None else [float(m) for m in own]) + [0.0] * (C - len(c))
             for c, own in zip(completions, masks)]
    return TokenBatch(torch.tensor(ids, dtype=torch.long), torch.tensor(attn, dtype=torch.long),
                      torch.tensor(cmask, dtype=torch.float32), P)


MIN_CHUNK_ROWS = 8  # rows of the smallest length bucket: fewer make matmuls too small to pay off
MAX_BUCKET_RATIO = 1.25  # longest / shortest completion in one bucket: bounds the padding computed


def length_buckets(lengths: list[int], min_rows: int = MIN_CHUNK_ROWS) -> list[list[int]]:
    """Rows grouped by completion length (ascending), so that each bucket is padded only to its own
    longest row: a bucket closes once it holds ``min_rows`` rows and the next row is more than
    ``MAX_BUCKET_RATIO`` times as long as its shortest. Rows of one length stay in one bucket."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    buckets: list[list[int]] = []
    for i in order:
        cur = buckets[-1] if buckets else None
        if cur is None or (len(cur) >= min_rows and lengths[i] > MAX_BUCKET_RATIO * max(lengths[cur[0]], 1)
                           and lengths[i] != lengths[cur[-1]]):
            buckets.append([i])
        else:
            cur.append(i)
    return buckets


def _shares_prefix_cache(model: PreTrainedModel) -> bool:
    """True for plain full-attention caches (a wrapper without ``config`` takes the plain path)."""
    if getattr(model, "config", None) is None:
        return False
    cache = DynamicCache(config=model.config)
    return bool(cache.layers) and all(type(layer) is DynamicLayer for layer in cache.layers)


HEAD_CHUNK_ELEMENTS = 1 << 23  # logits computed at a time: 8M floats (32 MB), ~170 tokens of a 49k vocabulary


class HeadLogprobs(torch.autograd.Function):
    """log softmax((h W^T + b) / T)[target] per token, and the entropy of that distribution, computed
    in chunks of tokens so that the [tokens, vocabulary] logits are never held whole.

    Forward, per chunk: logits = (h W^T + b) / T in float32 (the matmul runs in W's dtype, as the
    model's own head does), lse = logsumexp(logits), logp = logits[target] - lse, entropy = lse -
    sum softmax(logits) * logits (no gradient). Backward recomputes each chunk's logits and uses
    d logp / d logits = (onehot(target) - softmax(logits)) / T, then dh = g W and dW = g^T h. The
    full computation keeps [tokens, V] logits plus a float copy, a scaled copy, a softmax and their
    gradients: with SmolLM2's 49,152-token vocabulary and 2,048 completion tokens that is ~400 MB a
    tensor and a third of the update's time (measured: the update 9.9 s -> see BENCHMARKS.md).
    """

    @staticmethod
    def forward(ctx, h_ND: torch.Tensor, w_VD: torch.Tensor, b_V: torch.Tensor | None, target_N: torch.Tensor,
                temperature: float, with_entropy: bool) -> tuple[torch.Tensor, torch.Tensor]:
        N, V = h_ND.shape[0], w_VD.shape[0]
        chunk = max(1, HEAD_CHUNK_ELEMENTS // V)
        logp_N = torch.empty(N, dtype=_acc(w_VD), device=h_ND.device)
        ent_N = torch.zeros(N if with_entropy else 0, dtype=_acc(w_VD), device=h_ND.device)
        for s in range(0, N, chunk):
            logits = _chunk_logits(h_ND[s : s + chunk], w_VD, b_V, temperature)
            lse = torch.logsumexp(logits, dim=-1)
            logp_N[s : s + chunk] = logits.gather(-1, target_N[s : s + chunk, None]).squeeze(-1) - lse
            if with_entropy:
                ent_N[s : s + chunk] = lse - (torch.softmax(logits, dim=-1) * logits).sum(-1)
        ctx.save_for_backward(h_ND, w_VD, b_V if b_V is not None else h_ND.new_empty(0), target_N)
        ctx.temperature, ctx.has_bias, ctx.chunk = temperature, b_V is not None, chunk
        ctx.mark_non_differentiable(ent_N)
        return logp_N, ent_N

    @staticmethod
    def backward(ctx, g_N: torch.Tensor, _g_ent: torch.Tensor):
        h_ND, w_VD, b_V, target_N = ctx.saved_tensors
        b = b_V if ctx.has_bias else None
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        dh = torch.empty_like(h_ND) if need_h else None
        acc = _acc(w_VD)
        dw = torch.zeros(w_VD.shape, dtype=acc, device=w_VD.device) if need_w else None
        db = torch.zeros(w_VD.shape[0], dtype=acc, device=w_VD.device) if need_b and b is not None else None
        for s in range(0, h_ND.shape[0], ctx.chunk):
            h, t, g = h_ND[s : s + ctx.chunk], target_N[s : s + ctx.chunk], g_N[s : s + ctx.chunk].to(acc)
            dlogits = torch.softmax(_chunk_logits(h, w_VD, b, ctx.temperature), dim=-1).mul_(-g[:, None])
            dlogits.scatter_add_(-1, t[:, None], g[:, None])
            dlogits.div_(ctx.temperature)
            if dh is not None:
                dh[s : s + ctx.chunk] = dlogits.to(w_VD.dtype) @ w_VD
            if dw is not None:
                dw.addmm_(dlogits.t(), h.to(acc))
            if db is not None:
                db += dlogits.sum(0)
        return (dh, dw.to(w_VD.dtype) if dw is not None else None, db.to(w_VD.dtype) if db is not None else None,
                None, None, None)


def _acc(w: torch.Tensor) -> torch.dtype:
    """Softmax arithmetic in float32 (float64 for float64 weights, as in gradient checks)."""
    return torch.float64 if w.dtype == torch.float64 else torch.float32


def _chunk_logits(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, temperature: float) -> torch.Tensor:
    logits = torch.nn.functional.linear(h.to(w.dtype), w, b).to(_acc(w))
    return logits.div_(temperature) if temperature != 1.0 else logits


def head_logprobs(hidden_BCD: torch.Tensor, head: nn.Linear, target_BC: torch.Tensor, temperature: float,
                  with_entropy: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(logp_BC, entropy_BC or None) of ``target`` from the last hidden states, via :class:`HeadLogprobs`."""
    B, C, D = hidden_BCD.shape
    logp, ent = HeadLogprobs.apply(hidden_BCD.reshape(B * C, D), head.weight, head.bias, target_BC.reshape(-1),
                                   temperature, with_entropy)
    return logp.view(B, C), ent.view(B, C) if with_entropy else None


def completion_logprobs(
    model: PreTrainedModel, batch: TokenBatch, temperature: float = 1.0, with_entropy: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(logp_BC, entropy_BC or None) of the completion tokens. Entropy is computed without grad.

    Work is cut three ways (the numbers equal one plain forward over the padded batch, to rounding):
    each distinct prompt is run once (the G rows of a group share its keys/values, and in the
    backward its gradient); completions are run in length buckets, each padded to its own longest
    row instead of the batch's; and for the architectures of :func:`split_model` the output layer is
    applied in chunks by :class:`HeadLogprobs`, never holding [tokens, vocabulary] logits. The last
    completion token is never an input (it predicts nothing). Models with sliding-window or other
    non-plain caches, and batches where no prompt repeats, take one forward over the padded batch.
    Values at padding positions (completion_mask 0) are 0.
    """
    device = next(model.parameters()).device
    ids = batch.input_ids_BL.to(device)
    attn = batch.attention_mask_BL.to(device)
    P = batch.prompt_width
    B, C = ids.shape[0], ids.shape[1] - P
    mask_BC = batch.completion_mask_BC.to(device)
    split = split_model(model)

    def scored(forward_out: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        # forward_out: hidden states with a split model, else logits
        if split is not None:
            return head_logprobs(forward_out, split.head, target, temperature, with_entropy)
        return _token_logprobs(forward_out, target, temperature, with_entropy)

    def run(**kwargs) -> torch.Tensor:
        if split is not None:
            keep = kwargs.pop("logits_to_keep", 0)
            h = split.hidden(**kwargs)
            return h[:, -keep:] if keep else h
        return model(**kwargs).logits

    prompt_BP = torch.cat([ids[:, :P], attn[:, :P]], dim=-1)
    uniq_UP, inv_B = torch.unique(prompt_BP, dim=0, return_inverse=True)
    if not _shares_prefix_cache(model) or uniq_UP.shape[0] == B:
        # No prompt shared (SFT batches, G = 1): one plain forward. Measured on the demo's SFT batch
        # (64 distinct prompts, 3-4 completion tokens), the bucketed path costs 43 ms vs 32 ms.
        pos = (attn.cumsum(-1) - 1).clamp(min=0)
        out = run(input_ids=ids[:, :-1], attention_mask=attn[:, :-1], position_ids=pos[:, :-1], logits_to_keep=C)
        logp_BC, entropy_BC = scored(out, ids[:, P:])
        return logp_BC * mask_BC, (entropy_BC * mask_BC if entropy_BC is not None else None)

    # Prompts: each distinct one once, keeping its keys/values and the output of its last position.
    u_ids, u_attn = uniq_UP[:, :P], uniq_UP[:, P:]
    u_pos = (u_attn.cumsum(-1) - 1).clamp(min=0)
    cache = DynamicCache(config=model.config)
    first_UX = run(input_ids=u_ids, attention_mask=u_attn, position_ids=u_pos, use_cache=True, logits_to_keep=1,
                   **cache_kwargs(model, cache))[:, -1]
    kv = [(layer.keys, layer.values) for layer in cache.layers]
    prompt_len_B = attn[:, :P].sum(-1)

    # Completions, by length bucket: the bucket's rows attend to their prompt's cached keys/values.
    lengths = batch.completion_mask_BC.sum(-1).long().clamp(min=1).tolist()
    logp_parts, ent_parts, row_order = [], [], []
    for rows in length_buckets(lengths):
        r = torch.tensor(rows, device=device)
        L = max(lengths[i] for i in rows)
        u = inv_B[r]
        out = first_UX[u][:, None]
        if L > 1:
            bucket_cache = DynamicCache(ddp_cache_data=[(k[u], v[u]) for k, v in kv])
            step_attn = torch.cat([attn[r, :P], attn.new_ones(len(rows), L - 1)], dim=-1)
            step_pos = prompt_len_B[r, None] + torch.arange(L - 1, device=device)
            tail = run(input_ids=ids[r, P : P + L - 1], attention_mask=step_attn, position_ids=step_pos,
                       use_cache=True, **cache_kwargs(model, bucket_cache))
            out = torch.cat([out, tail], dim=1)
        logp, ent = scored(out, ids[r, P : P + L])
        logp_parts.append(torch.nn.functional.pad(logp, (0, C - L)))
        if ent is not None:
            ent_parts.append(torch.nn.functional.pad(ent, (0, C - L)))
        row_order.extend(rows)
    back = torch.empty(B, dtype=torch.long, device=device)
    back[torch.tensor(row_order, device=device)] = torch.arange(B, device=device)
    logp_BC = torch.cat(logp_parts)[back] * mask_BC
    entropy_BC = torch.cat(ent_parts)[back] * mask_BC if with_entropy else None
    return logp_BC, entropy_BC


def _token_logprobs(logits_BCV: torch.Tensor, target_BC: torch.Tensor, temperature: float,
                    with_entropy: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log p(target) = logit[target] - logsumexp(logits), gathered: no [B, C, V] log-softmax kept."""
    logits_BCV = logits_BCV.float()
    if temperature != 1.0:
        logits_BCV = logits_BCV / temperature
    lse_BC = torch.logsumexp(logits_BCV, dim=-1)
    logp_BC = logits_BCV.gather(-1, target_BC[..., None]).squeeze(-1) - lse_BC
    entropy = None
    if with_entropy:
        with torch.no_grad():
            probs = torch.softmax(logits_BCV.detach(), dim=-1)
            entropy = lse_BC.detach() - (probs * logits_BCV.detach()).sum(-1)
    return logp_BC, entropy
