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
that episode with score 0 and the reason (``details["env_error"]``), never the run. The runner
makes each call inside :func:`call_deadline` (the moment it stops waiting for it), and an
environment that bounds its own calls reads :func:`time_left`: a TRL class's calls into its host
process end when the runner stops waiting, so no thread is left behind in user code.

Observations are untrusted text shown to the model: an environment must never put an expected value
(gold query results, hidden tests' outputs) in one. ``rft audit`` checks the built-in ones.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Iterator, Protocol

from rft.data import Example
from rft.graders.base import Grade


@dataclass(frozen=True)
class EpisodeLimits:
    max_turns: int = 1
    max_tokens: int | None = None  # after the prompt, model turns and observations together
    timeout_s: float | None = None  # wall clock of one episode (its turns and its environment calls)
    max_observation_tokens: int = 128  # an observation is cut to this many tokens


_DEADLINE: ContextVar[float | None] = ContextVar("rft_env_call_deadline", default=None)


@contextmanager
def call_deadline(at: float | None) -> Iterator[None]:
    """Environment calls made inside must end by ``at`` (``time.monotonic()``; None: no deadline)."""
    token = _DEADLINE.set(at)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def time_left(default_s: float) -> float:
    """Seconds the environment call in progress may take: until its :func:`call_deadline`, else ``default_s``."""
    at = _DEADLINE.get()
    return default_s if at is None else max(at - time.monotonic(), 0.01)


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

    # Optional: ``answer_turn() -> int``, the model turn (1-based) at which the answer was found, when
    # the episode goes on after it (sql_retry's ``on_success: show``: the model confirms a query a turn
    # later). ``episode/success_by_turn_k`` counts a passed episode at that turn; without it, at its last.


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
