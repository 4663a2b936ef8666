"""Capability guard: does narrow RL cost the policy its general ability?

At each validation the policy reads a small held-out set of general text (``general_text.txt``,
shipped with rft and written for it: prose, instructions, dialogue, code, SQL, JSON, arithmetic in
words; or the user's ``eval.capability_file``) and we measure:

- ``cap/nll``: mean negative log-likelihood per token (``cap/ppl`` = exp of it);
- ``cap/kl``: KL(reference || policy) of the next-token distributions, averaged over the text's
  positions. The reference is the model the run starts from: its distributions are snapshotted at
  the first measurement (step 0, where policy == reference) as the top ``TOP_K`` log-probs per
  position plus the rest of the mass as one bucket. The KL of those coarsened distributions is a
  lower bound on the full KL (exact for vocabularies of at most ``TOP_K`` tokens) and needs neither a
  second model in memory nor a (positions x vocabulary) table;
- ``cap/nll_rise``: relative rise of ``cap/nll`` since the snapshot.

The snapshot is saved in the run directory (``capability_ref.pt``) so that a resumed run compares
against the same reference. The ``capability`` monitor alerts on ``cap/nll_rise`` and ``cap/kl``.
Not covered: task-specific general benchmarks (the set measures language modelling, not skills).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from rft.files import jsonl_lines, read_text

DEFAULT_TEXT = Path(__file__).with_name("general_text.txt")
TOP_K = 64
MAX_LOGITS = 2**25  # floats of logits per forward chunk (128 MB): keeps big vocabularies in memory


def read_general_text(path: str | Path | None = None) -> list[str]:
    """Paragraphs of a .txt (separated by blank lines) or the 'text' field of each .jsonl line."""
    p = Path(path) if path is not None else DEFAULT_TEXT
    if not p.is_file():
        raise FileNotFoundError(f"eval.capability_file = {str(p)!r}: no such file; give a .txt or .jsonl of general text")
    if p.suffix == ".jsonl":
        texts = []
        for n, row, bad in jsonl_lines(p):
            if bad:
                raise ValueError(f"{p}:{n}: {bad}; each line must be {{\"text\": \"...\"}}")
            if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                raise ValueError(f"{p}:{n}: expected an object with a string 'text' field")
            texts.append(row["text"])
    else:
        texts = [t.strip() for t in read_text(p, "eval.capability_file", 256 << 20).split("\n\n") if t.strip()]
    if not texts:
        raise ValueError(f"{p}: no text found; the capability guard needs at least one paragraph")
    return texts


@dataclass
class _Chunk:
    ids_BT: torch.Tensor
    mask_BT: torch.Tensor  # 1 where position t+1 is a real token that position t predicts


class CapabilityGuard:
    def __init__(self, tokenizer: PreTrainedTokenizerBase, texts: list[str], max_tokens: int = 256,
                 vocab_size: int | None = None) -> None:
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        seqs = [list(tokenizer(t)["input_ids"])[:max_tokens] for t in texts]
        seqs = sorted((s for s in seqs if len(s) >= 2), key=len)  # similar lengths share a chunk
        if not seqs:
            raise ValueError("capability guard: every general-text paragraph is shorter than 2 tokens")
        rows = max(1, MAX_LOGITS // (max_tokens * (vocab_size or len(tokenizer))))
        self.chunks: list[_Chunk] = []
        for i in range(0, len(seqs), rows):
            part = seqs[i : i + rows]
            T = max(len(s) for s in part)
            ids = torch.full((len(part), T), pad, dtype=torch.long)
            mask = torch.zeros((len(part), T), dtype=torch.long)
            for j, s in enumerate(part):
                ids[j, : len(s)] = torch.tensor(s)
                mask[j, : len(s)] = 1
            self.chunks.append(_Chunk(ids, mask))
        self.tokens = sum(len(s) - 1 for s in seqs)
        self.reference: list[tuple[torch.Tensor, torch.Tensor]] | None = None  # per chunk: (top-k logp, indices)
        self.nll_ref: float | None = None

    @classmethod
    def from_config(cls, tokenizer: PreTrainedTokenizerBase, path: str | None, max_tokens: int,
                    vocab_size: int | None = None) -> "CapabilityGuard":
        return cls(tokenizer, read_general_text(path), max_tokens, vocab_size)

    # -- measuring -------------------------------------------------------------------------------
    @torch.no_grad()
    def _logprobs(self, model: PreTrainedModel, chunk: _Chunk) -> tuple[torch.Tensor, torch.Tensor]:
        """(log-softmax over the vocabulary at each predicting position, its mask), on the CPU."""
        device = next(model.parameters()).device
        ids, attn = chunk.ids_BT.to(device), chunk.mask_BT.to(device)
        logits = model(input_ids=ids, attention_mask=attn).logits[:, :-1].float()
        return logits.log_softmax(-1).cpu(), chunk.mask_BT[:, 1:].float()

    @torch.no_grad()
    def measure(self, model: PreTrainedModel) -> dict[str, float]:
        """``cap/nll``, ``cap/ppl``, ``cap/kl`` and ``cap/nll_rise``. The first call (or :meth:`load`)
        fixes the reference."""
        was_training = model.training
        model.eval()
        try:
            snapshot = self.reference is None
            ref: list[tuple[torch.Tensor, torch.Tensor]] = []
            nll_sum = kl_sum = 0.0
            for c, chunk in enumerate(self.chunks):
                logp_BTV, m_BT = self._logprobs(model, chunk)
                target = chunk.ids_BT[:, 1:]
                nll_sum += float(-(logp_BTV.gather(-1, target[..., None]).squeeze(-1) * m_BT).sum())
                if snapshot:
                    top = logp_BTV.topk(min(TOP_K, logp_BTV.shape[-1]), dim=-1)
                    ref.append((top.values, top.indices))
                else:
                    ref_logp, idx = self.reference[c]  # type: ignore[index]
                    kl_sum += float((coarse_kl(ref_logp, logp_BTV.gather(-1, idx)) * m_BT).sum())
        finally:
            model.train(was_training)
        nll = nll_sum / self.tokens
        if snapshot:
            self.reference, self.nll_ref = ref, nll
        assert self.nll_ref is not None
        return {"cap/nll": nll, "cap/ppl": math.exp(min(nll, 50.0)), "cap/kl": kl_sum / self.tokens,
                "cap/nll_rise": (nll - self.nll_ref) / max(self.nll_ref, 1e-8)}

    # -- persistence (resume compares against the same reference) -------------------------------
    def save(self, path: str | Path) -> None:
        tmp = Path(f"{path}.tmp")
        torch.save({"reference": self.reference, "nll_ref": self.nll_ref, "tokens": self.tokens}, tmp)
        os.replace(tmp, path)

    def load(self, path: str | Path) -> None:
        state = torch.load(path, weights_only=True)
        if state["tokens"] != self.tokens:
            raise ValueError(f"{path}: the reference was taken on a different general-text set "
                             f"({state['tokens']} tokens, now {self.tokens}); keep eval.capability_file as it was")
        self.reference, self.nll_ref = state["reference"], state["nll_ref"]


def coarse_kl(ref_topk_logp: torch.Tensor, pol_logp_at_topk: torch.Tensor) -> torch.Tensor:
    """KL(ref || policy) per position over the reference's top-k tokens plus one bucket holding the
    rest of each distribution's mass. Inputs are (..., k) log-probs at the same token indices."""
    p_ref = ref_topk_logp.exp()
    kl = (p_ref * (ref_topk_logp - pol_logp_at_topk)).sum(-1)
    rest_ref = (1.0 - p_ref.sum(-1)).clamp(min=0.0)
    rest_pol = (1.0 - pol_logp_at_topk.exp().sum(-1)).clamp(min=1e-12)
    tail = torch.where(rest_ref > 1e-12, rest_ref * (rest_ref.clamp(min=1e-12).log() - rest_pol.log()),
                       torch.zeros_like(rest_ref))
    return (kl + tail).clamp(min=0.0)
