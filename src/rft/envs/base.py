"""The environment contract: an episode of model turns and observations, ended with one graded answer.

An :class:`Environment` is built from the config's ``environment:`` section and started once per
episode from an example: ``env.reset(example) -> Episode``. The episode's first prompt is the
example's own (its ``prompt`` or chat ``messages``). Each model turn goes to ``episode.step(turn)``,
which answers with an observation (the episode goes on: the model sees the observation and takes
another turn) or ``None`` (the episode is over). ``episode.answer()`` is the text the run's grader
grades; an episode that scores itself (a TRL environment's ``get_reward()``) returns its
:class:`Grade` from ``episode.grade()`` instead (None: let the grader grade the answer).

One completion graded once is the trivial environment (:class:`SingleTurn`): its ``step`` ends the
episode at once and its answer is the completion. Single-turn training is that environment, on the
same rollout path (:class:`rft.envs.episodes.EpisodeRunner`).

Limits (:class:`EpisodeLimits`) are enforced by the rollout, not trusted to the environment: at most
``max_turns`` model turns, ``max_tokens`` tokens after the prompt (model turns and observations),
``timeout_s`` of wall clock per episode. An exception in ``reset``/``step``/``answer``/``grade`` ends
that episode with score 0 and the reason (``details["env_error"]``), never the run.

Observations are untrusted text shown to the model: an environment must never put an expected value
(gold query results, hidden tests' outputs) in one. ``rft audit`` checks the built-in ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from rft.data import Example
from rft.graders.base import Grade


@dataclass(frozen=True)
class EpisodeLimits:
    max_turns: int = 1
    max_tokens: int | None = None  # after the prompt, model turns and observations together
    timeout_s: float | None = None  # wall clock of one episode (its turns and its environment calls)
    max_observation_tokens: int = 128  # an observation is cut to this many tokens


class Episode(Protocol):
    def step(self, turn: str) -> str | None:
        """The observation that answers the model's ``turn``; None ends the episode."""
        ...

    def answer(self) -> str:
        """The text the run's grader grades (e.g. the last query the model wrote)."""
        ...

    def grade(self) -> Grade | None:
        """The episode's own final grade, or None to have the run's grader grade :meth:`answer`."""
        ...


class Environment(Protocol):
    limits: EpisodeLimits

    def reset(self, example: Example) -> Episode: ...


@dataclass
class _OneTurn:
    last: str = ""

    def step(self, turn: str) -> str | None:
        self.last = turn
        return None

    def answer(self) -> str:
        return self.last

    def grade(self) -> Grade | None:
        return None


@dataclass
class SingleTurn:
    """One completion, graded once: every run without an ``environment:`` of its own."""

    limits: EpisodeLimits = field(default_factory=EpisodeLimits)

    def reset(self, example: Example) -> Episode:
        return _OneTurn()
