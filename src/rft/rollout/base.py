"""The rollout interface: prompts (token ids) in, ``n`` completions per prompt out.

Engines (the built-in KV-cache sampler; vLLM later) implement :class:`RolloutEngine`. They sample
with the policy in eval mode (no dropout), so that the sampling distribution is the one the loss
scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import torch

from rft.config import SamplingConfig


@dataclass(frozen=True)
class SamplingParams:
    """temperature 0 means greedy decoding; top_k 0 and top_p 1 disable those filters."""

    max_new_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0

    @classmethod
    def of(cls, cfg: SamplingConfig) -> "SamplingParams":
        """The configured sampling (``sampling:``): what training rollouts and sampled pass@k use."""
        return cls(cfg.max_new_tokens, cfg.temperature, cfg.top_p, cfg.top_k)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


@dataclass(frozen=True)
class Completion:
    """One sampled completion. ``token_ids`` include the EOS token when ``finish_reason == "stop"``."""

    token_ids: list[int]
    text: str
    finish_reason: Literal["stop", "length"]


class RolloutEngine(Protocol):
    def generate(
        self, prompts: list[list[int]], n: int, params: SamplingParams, generator: torch.Generator | None = None,
        seeds: list[int] | None = None,
    ) -> list[list[Completion]]:
        """``n`` completions for each prompt, grouped per prompt, in order. With ``seeds`` (one per
        prompt) a prompt's group depends only on its own seed, not on the other prompts in the batch."""
        ...
