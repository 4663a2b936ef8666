"""The rollout interface: prompts (token ids) in, ``n`` completions per prompt out.

Engines (the built-in KV-cache sampler; vLLM later) implement :class:`RolloutEngine`. They sample
with the policy in eval mode (no dropout), so that the sampling distribution is the one the loss
scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

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


# Why an episode ended (rft.envs). "answer": the environment ended it; "length": the model's turn hit
# max_new_tokens; the others are the rollout's limits and an environment error.
END_REASONS: tuple[str, ...] = ("answer", "length", "max_turns", "max_tokens", "timeout", "env_error")


@dataclass(frozen=True)
class Message:
    """One entry of an episode's transcript: a model turn or an observation, with its token count."""

    role: Literal["assistant", "observation"]
    text: str
    tokens: int


@dataclass(frozen=True)
class EpisodeRecord:
    """What an episode (rft.envs) was, beside the ids it trained on: the transcript, how it ended, the
    loss mask over the ids after the prompt (1 on the model's tokens, 0 on observations), and the
    episode's own grade (it graded itself, or the environment failed: score 0), else None."""

    transcript: tuple[Message, ...]
    end: str
    loss_mask: tuple[int, ...]
    error: str = ""
    grade: Any = None  # rft.graders.base.Grade | None
    answer_turn: int | None = None  # the turn the answer was found (Episode.answer_turn); None: the last turn

    @property
    def turns(self) -> int:
        return sum(m.role == "assistant" for m in self.transcript)

    def tokens_of(self, role: str) -> int:
        return sum(m.tokens for m in self.transcript if m.role == role)


@dataclass(frozen=True)
class Completion:
    """One sampled completion, or one episode's: ``token_ids`` are every id after the prompt (include
    the EOS token when ``finish_reason == "stop"``), ``text`` what is graded, ``episode`` the
    episode's record when it came from rft.envs (None: one model turn, nothing else)."""

    token_ids: list[int]
    text: str
    finish_reason: Literal["stop", "length"]
    episode: EpisodeRecord | None = None


class RolloutEngine(Protocol):
    """What samples completions: the torch sampler or vLLM, built by :func:`rft.rollout.engines.build_engine`."""

    pad_id: int  # the id prompts are padded with (the tokenizer's pad token, else its end of sequence)
    eos_id: int  # the id that ends a completion

    def generate(
        self, prompts: list[list[int]], n: int, params: SamplingParams, generator: torch.Generator | None = None,
        seeds: list[int] | None = None,
    ) -> list[list[Completion]]:
        """``n`` completions for each prompt, grouped per prompt, in order. With ``seeds`` (one per
        prompt) a prompt's group depends only on its own seed, not on the other prompts in the batch."""
        ...
