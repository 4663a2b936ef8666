"""``code_retry``: the model writes a program, sees which of the tests it was shown fail, and may fix it.

Each model turn's program runs in the ``code`` grader's sandbox against the example's *visible*
tests only: the first ``visible_tests`` of its ``tests`` (the row's own ``visible_tests`` field,
else the environment's). All visible tests pass: the episode ends. Some fail: the observation lists
each failing visible test's call and message (``f(3): expected 10, got 9``; the values were in the
prompt already). Hidden tests never run here, so no observation carries a hidden expected value.

The episode is graded on its last turn by the run's grader (``code``: every test, hidden ones
included). Not covered: stdio-mode tasks (their tests have no call to show).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from rft.data import Example
from rft.envs.base import EpisodeLimits
from rft.graders.base import Grade
from rft.graders.code import CodeGrader


def _call(entry: str, test: dict) -> str:
    args = ", ".join(repr(a) for a in test.get("args", []))
    kwargs = ", ".join(f"{k}={v!r}" for k, v in test.get("kwargs", {}).items())
    return f"{entry}({', '.join(p for p in (args, kwargs) if p)})"


@dataclass
class CodeRetryEpisode:
    env: "CodeRetry"
    example: Example
    visible: Example
    turns: list[str] = field(default_factory=list)

    def step(self, turn: str) -> str | None:
        self.turns.append(turn)
        grade = self.env.grader(turn, self.visible)
        if grade.errored or grade.skipped:
            raise RuntimeError(grade.reason)  # the sandbox itself failed: an environment error
        outcomes = grade.details.get("tests", [])
        if not outcomes:  # no program in the turn
            return f"Error: {grade.reason}"
        tests = self.visible.get(self.env.grader.spec.tests_field)
        entry = str(self.example.get(self.env.grader.spec.entry_point_field, "f"))
        failing = [f"{_call(entry, t)}: {o['status']}" + (f", {o['message']}" if o.get("message") else "")
                   for t, o in zip(tests, outcomes) if o["status"] != "passed"]
        if not failing:
            return None
        return "Failing tests:\n" + "\n".join(failing[:5])

    def answer(self) -> str:
        return self.turns[-1] if self.turns else ""

    def grade(self) -> Grade | None:
        return None


@dataclass
class CodeRetry:
    limits: EpisodeLimits
    grader: CodeGrader
    visible_tests: int | None = None
    cue: str = ""

    def mistake(self, example: Example, target: str, rng: random.Random) -> tuple[str, str] | None:
        """(a wrong first program, the observation it gets) for a procedural retry transcript whose second
        turn is ``target`` (an SFT warm start): ``target`` with one digit changed, or an operator swapped,
        when a visible test then fails. None when no such slip fails."""
        spots = [m for m in re.finditer(r"\d|[+*-]", target) if "return" in target[: m.start()]]
        for _ in range(6):
            if not spots:
                return None
            m = rng.choice(spots)
            options = "0123456789" if m.group(0).isdigit() else "+*-"
            bad = target[: m.start()] + rng.choice(options.replace(m.group(0), "")) + target[m.end():]
            observation = self.reset(example).step(bad)
            if observation is not None and observation.startswith("Failing tests:"):
                return bad, observation
        return None

    def reset(self, example: Example) -> CodeRetryEpisode:
        if self.grader.spec.mode != "function":
            raise ValueError("code_retry needs function-mode tests (a call to show per failing test)")
        n = example.get("visible_tests", self.visible_tests)
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"example {example.id!r}: how many tests the prompt shows is unknown; give the row a "
                             "'visible_tests' field or set environment.visible_tests")
        tests = example.get(self.grader.spec.tests_field) or []
        visible = Example(example.id, example.prompt, {**example.fields, self.grader.spec.tests_field: tests[:n]},
                          example.grader, example.base_dir)
        return CodeRetryEpisode(self, example, visible)
