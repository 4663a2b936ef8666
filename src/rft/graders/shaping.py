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
from typing import Any

from rft.data import Example
from rft.graders.base import Grade, SpecError
from rft.graders.specs import SpecReader


@dataclass(frozen=True)
class OverlongGrader:
    max_length: int
    cache_length: int
    unit: str = "chars"
    chars_per_token: float = 4.0

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> "OverlongGrader":
        r = SpecReader.open(spec, "overlong", ["max_length", "cache_length", "unit", "chars_per_token", "name"])
        for key in ("max_length", "cache_length"):
            if key not in spec:
                raise SpecError(f"overlong grader: missing field '{key}'; e.g. max_length: 1024, cache_length: 256")
        max_length, cache_length = r.integer("max_length", 0, lo=1), r.integer("cache_length", 0, lo=1)
        if cache_length > max_length:
            raise r.error("cache_length", f"larger than max_length ({max_length})", "use a buffer no longer than max_length")
        return cls(
            max_length=max_length,
            cache_length=cache_length,
            unit=r.choice("unit", "chars", ["chars", "tokens"]),
            chars_per_token=float(r.number("chars_per_token", 4.0, lo=0.1, hi=100) or 4.0),
        )

    def length(self, completion: str) -> int:
        if self.unit == "chars":
            return len(completion)
        return math.ceil(len(completion) / self.chars_per_token)

    def __call__(self, completion: str, example: Example) -> Grade:
        n = self.length(completion)
        soft_start = self.max_length - self.cache_length
        if n <= soft_start:
            score = 0.0
        elif n <= self.max_length:
            score = (soft_start - n) / self.cache_length
        else:
            score = -1.0
        return Grade(score, None, f"length {n} {self.unit}: penalty {score:.3f}", {"length": n, "unit": self.unit})


@dataclass(frozen=True)
class RepetitionGrader:
    ngram_size: int = 3
    max_penalty: float = -1.0

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> "RepetitionGrader":
        r = SpecReader.open(spec, "repetition", ["ngram_size", "max_penalty", "name"])
        return cls(
            ngram_size=r.integer("ngram_size", 3, lo=1, hi=100),
            max_penalty=float(r.number("max_penalty", -1.0, lo=-1.0, hi=0.0)),  # type: ignore[arg-type]
        )

    def __call__(self, completion: str, example: Example) -> Grade:
        words = completion.lower().split()
        n = self.ngram_size
        grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
        if not grams:
            return Grade(0.0, None, f"fewer than {n} words: no penalty", {"repeated_fraction": 0.0})
        repeated = 1 - len(set(grams)) / len(grams)
        score = self.max_penalty * repeated or 0.0  # no "-0.0" in logs
        return Grade(score, None, f"{repeated:.1%} of {n}-grams repeated: penalty {score:.3f}", {"repeated_fraction": repeated})
