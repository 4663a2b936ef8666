"""A preallocated KV cache for decoding: one slab per layer, written in place.

transformers' ``DynamicCache`` grows by ``torch.cat`` at every decode step, so each step copies the
whole cache (rows x heads x length x head_dim, keys and values, every layer). For 64 rows and 128
new tokens that copy costs more than the step's matmuls on a CPU. :class:`SlabLayer` allocates
``max_len`` positions once, writes each step's keys/values in place and hands attention a view of
the filled part, so attention never reads unused slots and a step copies one position. Dropping
rows (finished completions) copies only the filled part.

Not covered: sliding-window, chunked or linear-attention layers (their caches have their own
semantics): :func:`decode_cache` returns a plain ``DynamicCache`` for such models.
"""

from __future__ import annotations

import torch
from transformers import DynamicCache, PreTrainedModel
from transformers.cache_utils import DynamicLayer


class SlabLayer(DynamicLayer):
    """A ``DynamicLayer`` whose storage is a preallocated [B, H, max_len, D] slab."""

    def __init__(self, max_len: int) -> None:
        super().__init__()
        self.max_len = max_len
        self.length = 0
        self.k_slab: torch.Tensor | None = None
        self.v_slab: torch.Tensor | None = None

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        self.dtype, self.device = key_states.dtype, key_states.device
        B, H, _, _ = key_states.shape
        self.k_slab = key_states.new_empty(B, H, self.max_len, key_states.shape[-1])
        self.v_slab = value_states.new_empty(B, H, self.max_len, value_states.shape[-1])
        self.is_initialized = True

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        end = self.length + key_states.shape[-2]
        if end > self.max_len:
            raise RuntimeError(f"SlabLayer: {end} positions exceed the preallocated {self.max_len}")
        self.k_slab[:, :, self.length : end].copy_(key_states)
        self.v_slab[:, :, self.length : end].copy_(value_states)
        self.length = end
        self.keys, self.values = self.k_slab[:, :, :end], self.v_slab[:, :, :end]
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.length

    def _reslab(self, rows: torch.Tensor) -> None:
        """Keep the given batch rows (an index tensor; repeats allowed); copy only the filled part."""
        for name in ("k_slab", "v_slab"):
            old = getattr(self, name)
            new = old.new_empty(rows.numel(), *old.shape[1:])
            new[:, :, : self.length].copy_(old[:, :, : self.length].index_select(0, rows))
            setattr(self, name, new)
        self.keys, self.values = self.k_slab[:, :, : self.length], self.v_slab[:, :, : self.length]

    def batch_repeat_interleave(self, repeats: int) -> None:
        if self.length > 0:
            rows = torch.arange(self.k_slab.shape[0], device=self.k_slab.device).repeat_interleave(repeats)
            self._reslab(rows)

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        if self.length > 0:
            self._reslab(indices.to(self.k_slab.device))


def decode_cache(model: PreTrainedModel, max_len: int) -> DynamicCache:
    """A cache for ``max_len`` positions: slab layers when every layer is plain full attention."""
    cache = DynamicCache(config=model.config)
    if cache.layers and all(type(layer) is DynamicLayer for layer in cache.layers):
        cache.layers = [SlabLayer(max_len) for _ in cache.layers]
    return cache
