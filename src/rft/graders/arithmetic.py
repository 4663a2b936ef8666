"""The ``arithmetic`` grader: the completion must be exactly one integer equal to the true answer.

Formula: score = 1 if ``completion.strip()`` matches ``-?\\d+`` (at most ``max_chars`` characters)
and its value equals ``int(example[answer_field])``, else 0.

Strict on purpose: a "contains" or "starts with" check would reward padding ("85 or 86") and
hedging. Leading zeros are accepted ("085" == 85) because they do not change the value.
Not covered: expressions, decimals, words ("eighty-five") -- use the ``math`` grader for those.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rft.config.graders import ArithmeticSpec
from rft.data import Example
from rft.graders.base import Grade

_INT = re.compile(r"-?\d+")


@dataclass(frozen=True)
class ArithmeticGrader:
    spec: ArithmeticSpec

    def __call__(self, completion: str, example: Example) -> Grade:
        gold = example.get(self.spec.answer_field)
        if gold is None:
            return Grade(0.0, None, f"example has no '{self.spec.answer_field}' field", {"skipped": True})
        text = completion.strip()
        if len(text) > self.spec.max_chars or not _INT.fullmatch(text):
            return Grade(0.0, False, f"not a single integer: {text[:40]!r}", {"extracted": None})
        value, expected = int(text), int(gold)
        ok = value == expected
        return Grade(float(ok), ok, f"extracted {value}, expected {expected}", {"extracted": value})
