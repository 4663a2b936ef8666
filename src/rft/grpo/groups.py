"""The rollout phase of a GRPO step: sample G completions per prompt, grade them, and (optionally)
refill the batch with fresh prompts, behind one call.

:meth:`GroupSampler.rollout` returns a :class:`Rollout` at once, holding this rank's training rows
(its prompts' completions, group-major); ``Rollout.wait()`` returns ``(groups, sampled)``: the
step's ``prompts_per_step`` graded training groups and every group sampled this step, gathered
from all ranks. The loop builds the token batch and runs the reference forward between the two,
which need no rewards:

* **without** ``grpo.dynamic_sampling`` the grades are only submitted to the pool
  (:meth:`GraderPool.submit`) and its worker processes grade while the loop works; ``wait()``
  collects them. ``groups`` and ``sampled`` are the same list.
* **with** it (DAPO, Yu et al. 2025) the grades decide the refills, so each round is graded before
  the next one samples and ``wait()`` has nothing left to wait for. Groups whose G rewards are all
  equal are dropped and fresh prompts sampled, up to ``max_refill_rounds`` more rounds; each round
  asks for the missing count divided by the share of groups with signal so far (at least 1/4, at
  most 4x the batch). A batch still short after the last round is topped up with dropped groups, so
  every update sees the same number of groups.

Under torchrun (:mod:`rft.training.distributed`) every rank walks the same prompt cursor; rank r samples and
grades the r-th contiguous share of each round's prompts (a group is never split) and the groups
are gathered after grading. The step's prompt i samples with the seed of (seed, step, i)
(:func:`group_seeds`), so completions do not depend on the number of ranks, and a refill round asks
for a multiple of the world size. Each rank trains on its share of the training groups.
``time/rollout`` is sampling; ``time/grade`` the time spent in the pool (submitting and waiting),
not the graders' work that overlapped the loop's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

from rft.config import GRPOConfig
from rft.console import timed
from rft.data import Example, PromptCursor
from rft.envs.episodes import EpisodeRunner, with_own_grades
from rft.graders.base import Grade
from rft.graders.pool import GraderPool
from rft.rollout.base import Completion, RolloutEngine, SamplingParams
from rft.training.distributed import Dist, group_seeds


@dataclass
class Group:
    """One prompt's G graded completions."""

    example: Example
    completions: list[Completion]
    grades: list[Grade]

    @property
    def has_signal(self) -> bool:
        """False when all G rewards are equal: every advantage is 0, the group teaches nothing."""
        scores = [gr.score for gr in self.grades]
        return max(scores) != min(scores)


@dataclass
class Rollout:
    """One step's rollout: this rank's training rows now, the graded groups on :meth:`wait`."""

    examples: list[Example]  # this rank's training rows: each group's example G times, group-major
    completions: list[Completion]
    _finish: Callable[[], tuple[list[Group], list[Group]]]

    @property
    def loss_masks(self) -> list[tuple[int, ...] | None]:
        """Per row, which completion tokens are the model's (an episode's observations are not); None: all."""
        return [c.episode.loss_mask if c.episode else None for c in self.completions]

    def wait(self) -> tuple[list[Group], list[Group]]:
        """(the step's training groups, every group sampled this step), all ranks', in order."""
        return self._finish()


@dataclass
class GroupSampler:
    """Draws the step's prompts from ``cursor``, samples them with ``engine`` and grades them in ``pool``."""

    engine: RolloutEngine
    pool: GraderPool
    train: list[Example]
    prompt_ids: dict[str, list[int]]
    cursor: PromptCursor
    params: SamplingParams
    num_generations: int
    grpo: GRPOConfig
    seed: int
    dist: Dist
    episodes: EpisodeRunner = field(default_factory=EpisodeRunner.single_turn)

    def rollout(self, step: int, times: dict[str, float]) -> Rollout:
        want = self.grpo.prompts_per_step
        if self.grpo.dynamic_sampling:
            groups, sampled = self._refilled(want, step, times)
            mine = self.dist.shard(len(groups) * self.num_generations)
            rows = [grp.example for grp in groups for _ in grp.completions][mine]
            return Rollout(rows, [c for grp in groups for c in grp.completions][mine], lambda: (groups, sampled))
        examples, out = self._sample(want, 0, step, times)
        rows = [e for e, grp in zip(examples, out) for _ in grp]
        with timed(times, "grade"):  # bad specs raise here; with worker processes the first chunks go out now
            pending = self.pool.submit([c.text for grp in out for c in grp], rows)

        def finish() -> tuple[list[Group], list[Group]]:
            with timed(times, "grade"):  # only what the loop waits here, not the overlapped grading
                grades = with_own_grades([c for grp in out for c in grp], pending.wait(), self.pool)
            groups = self.dist.gather(_groups(examples, out, grades))
            return groups, groups

        return Rollout(rows, [c for grp in out for c in grp], finish)

    def _sample(self, k: int, start: int, step: int,
                times: dict[str, float]) -> tuple[list[Example], list[list[Completion]]]:
        """The next ``k`` prompts of the cursor (the step's prompts ``start .. start+k-1``): this rank's
        contiguous share of them, and G episodes for each (eval mode, current policy; one completion
        each in a single-turn run)."""
        examples = [self.train[i] for i in self.cursor.take(k)]
        seeds = group_seeds(self.seed, step, start, k)
        mine = self.dist.shard(k)
        examples, seeds = examples[mine], seeds[mine]
        with timed(times, "rollout"):
            out = self.episodes.run(self.engine, examples, [self.prompt_ids[e.id] for e in examples],
                                    self.num_generations, self.params, seeds=seeds)
        return examples, out

    def _graded(self, k: int, start: int, step: int, times: dict[str, float]) -> list[Group]:
        """``k`` prompts sampled and graded in sequence; every rank's groups, in order."""
        examples, out = self._sample(k, start, step, times)
        with timed(times, "grade"):
            done = [c for grp in out for c in grp]
            grades = with_own_grades(done, self.pool.grade([c.text for c in done],
                                                           [e for e, grp in zip(examples, out) for _ in grp]),
                                     self.pool)
        return self.dist.gather(_groups(examples, out, grades))

    def _refilled(self, want: int, step: int, times: dict[str, float]) -> tuple[list[Group], list[Group]]:
        """Dynamic sampling: (``want`` groups, those with signal first; every group sampled)."""
        sampled = self._graded(want, 0, step, times)
        for _ in range(self.grpo.max_refill_rounds):
            kept = sum(grp.has_signal for grp in sampled)
            if kept >= want:
                break
            need = self.dist.round_up(min(math.ceil((want - kept) / max(kept / len(sampled), 0.25)), 4 * want))
            sampled += self._graded(need, len(sampled), step, times)
        with_signal = [grp for grp in sampled if grp.has_signal][:want]
        top_up = [grp for grp in sampled if not grp.has_signal][: want - len(with_signal)]
        return with_signal + top_up, sampled


def _groups(examples: list[Example], out: list[list[Completion]], grades: list[Grade]) -> list[Group]:
    G = len(out[0]) if out else 0
    return [Group(e, out[i], grades[i * G : (i + 1) * G]) for i, e in enumerate(examples)]
