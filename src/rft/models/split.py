"""A causal LM as its decoder and its output layer, for the code that applies the head itself.

For the architectures in :data:`HEAD_ONLY` a causal LM's forward is exactly
``lm_head(base_model(...).last_hidden_state)``: no logit scaling or soft-capping after the head.
Splitting them lets rft apply the head to the positions it needs, in the layout it needs:

- :class:`rft.grpo.logprobs.HeadLogprobs` applies it in chunks, never holding [tokens, vocabulary]
  logits;
- :func:`last_logits` applies it to a contiguous copy of the last position. transformers'
  ``logits_to_keep=1`` hands the head a strided slice ``hidden[:, -1:]``, and torch 2.13's CPU
  ``linear`` on a strided bfloat16 input takes a slow path: SmolLM2's head on 200 such rows took
  25-35 s instead of 0.06 s (measured; fp32 is not affected). That was the whole prefill of a
  200-example greedy validation.

Anything else -- other architectures, FSDP or DDP wrappers, an adapted or sharded head -- gets
``None``, and callers use the model's own forward.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

HEAD_ONLY = {"LlamaForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM", "MistralForCausalLM", "GPT2LMHeadModel"}


@dataclass
class SplitModel:
    """``body``: token ids -> last hidden states (the decoder); ``head``: the output layer."""

    body: nn.Module
    head: nn.Linear

    def hidden(self, **kwargs: Any) -> torch.Tensor:
        return self.body(**kwargs).last_hidden_state


def split_model(model: nn.Module) -> SplitModel | None:
    """The decoder and ``lm_head`` of a model in :data:`HEAD_ONLY` (through a peft wrapper), or None."""
    base = model.get_base_model() if callable(getattr(model, "get_base_model", None)) else model
    if type(base).__name__ not in HEAD_ONLY or type(base).__module__.split(".")[0] != "transformers":
        return None
    head = base.get_output_embeddings()
    if type(head) is not nn.Linear or type(head.weight) is not nn.Parameter:
        return None
    return SplitModel(base.base_model, head)


def last_logits(model: nn.Module, **kwargs: Any) -> torch.Tensor:
    """[B, V] logits of the last position of a forward with ``kwargs`` (ids, mask, positions, cache)."""
    split = split_model(model)
    if split is None:
        return model(logits_to_keep=1, **kwargs).logits[:, -1]
    return split.head(split.hidden(**kwargs)[:, -1].contiguous())
