"""Shaping terms: ``overlong`` (DAPO soft overlong punishment) and ``repetition`` (n-gram penalty).

Both return a penalty in [-1, 0] (``passed`` is None: they have no notion of pass) and are meant to
be added to a correctness grader in ``multi``, where the pool logs each term separately
(``grader/multi/<name>``) so shaping never hides in the correctness numbers.

``overlong`` (Yu et al., 2025, DAPO, eq. 13): with length L, maximum ``max_length`` = L_max and
buffer ``cache_length`` = L_cache::

    R(L) = 0                              if L <= L_max - L_cache
         = ((L_max - L_cache) - L) / L_cache   if L_max - L_cache < L <= L_max
         = -1                             if L > L_max

L is measured in ``unit``: ``chars`` (exact), or ``tokens`` estimated as ceil(chars /
``chars_per_token``) (default 4.0, a rough English average). The grader sees only text, not token
ids; for exact token lengths set ``chars_per_token`` from your tokenizer on your data.

``repetition`` (as open-r1's repetition penalty; Yeo et al., 2025): with the completion's
whitespace-separated words and their ``ngram_size``-grams (default 3)::

    R = max_penalty * (1 - distinct n-grams / total n-grams)     (0 when fewer than n words)

with ``max_penalty`` in [-1, 0] (default -1). Not covered: token-level n-grams, repetition across
completions of a group.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rft.config.graders import OverlongSpec, RepetitionSpec
from rft.data import Example
from rft.graders.base import Grade


@dataclass(frozen=True)
class OverlongGrader:
    spec: OverlongSpec

    def length(self, completion: str) -> int:
        if self.spec.unit == "chars":
            return len(completion)
        return math.ceil(len(completion) / self.spec.chars_per_token)

    def __call__(self, completion: str, example: Example) -> Grade:
        n = self.length(completion)
        soft_start = self.spec.max_length - self.spec.cache_length
        if n <= soft_start:
            score = 0.0
        elif n <= self.spec.max_length:
            score = (soft_start - n) / self.spec.cache_length
        else:
            score = -1.0
        return Grade(score, None, f"length {n} {self.spec.unit}: penalty {score:.3f}", {"length": n, "unit": self.spec.unit})


@dataclass(frozen=True)
class RepetitionGrader:
    spec: RepetitionSpec

    def __call__(self, completion: str, example: Example) -> Grade:
        words = completion.lower().split()
        n = self.spec.ngram_size
        grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
        if not grams:
            return Grade(0.0, None, f"fewer than {n} words: no penalty", {"repeated_fraction": 0.0})
        repeated = 1 - len(set(grams)) / len(grams)
        score = self.spec.max_penalty * repeated or 0.0  # no "-0.0" in logs
        return Grade(score, None, f"{repeated:.1%} of {n}-grams repeated: penalty {score:.3f}", {"repeated_fraction": repeated})
