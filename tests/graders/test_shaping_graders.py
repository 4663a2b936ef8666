"""Shaping terms: DAPO soft overlong punishment and the n-gram repetition penalty."""

from __future__ import annotations

import pytest

from rft.config.base import SpecError
from rft.data import Example
from rft.graders import build

EX = Example("t", "p", {})
OVERLONG = {"type": "overlong", "max_length": 100, "cache_length": 20}

OVERLONG_CASES = [
    # id, spec overrides, completion length (chars), expected penalty
    ("short_is_free", {}, 10, 0.0),
    ("at_soft_start_is_free", {}, 80, 0.0),
    ("inside_buffer_linear", {}, 90, -0.5),
    ("end_of_buffer", {}, 100, -1.0),
    ("one_past_buffer", {}, 81, -0.05),
    ("over_max_is_minus_one", {}, 101, -1.0),
    ("far_over_max_is_still_minus_one", {}, 10_000, -1.0),
    ("token_estimate_inside", {"unit": "tokens", "chars_per_token": 4.0}, 360, -0.5),
    ("token_estimate_free", {"unit": "tokens", "chars_per_token": 4.0}, 320, 0.0),
    ("token_estimate_over", {"unit": "tokens", "chars_per_token": 2.0}, 400, -1.0),
]


@pytest.mark.parametrize("overrides,length,penalty", [c[1:] for c in OVERLONG_CASES], ids=[c[0] for c in OVERLONG_CASES])
def test_overlong(overrides, length, penalty):
    grade = build({**OVERLONG, **overrides})("x" * length, EX)
    assert grade.score == pytest.approx(penalty)
    assert grade.passed is None and -1.0 <= grade.score <= 0.0


REPETITION_CASES = [
    # id, spec overrides, completion, expected penalty
    ("no_repeats", {}, "the quick brown fox jumps over the lazy dog", 0.0),
    ("too_short_for_ngrams", {}, "hi there", 0.0),
    ("empty", {}, "", 0.0),
    ("looping_phrase", {}, "I think so. " * 20, -(1 - 3 / 58)),
    ("one_word_spam", {"ngram_size": 1}, "yes " * 100, -(1 - 1 / 100)),
    ("half_repeated_bigrams", {"ngram_size": 2, "max_penalty": -0.5}, "a b a b a", -0.5 * (1 - 2 / 4)),
    ("case_folded", {"ngram_size": 1}, "Yes yes YES", -(1 - 1 / 3)),
]


@pytest.mark.parametrize("overrides,completion,penalty", [c[1:] for c in REPETITION_CASES], ids=[c[0] for c in REPETITION_CASES])
def test_repetition(overrides, completion, penalty):
    grade = build({"type": "repetition", **overrides})(completion, EX)
    assert grade.score == pytest.approx(penalty)
    assert -1.0 <= grade.score <= 0.0


@pytest.mark.parametrize(
    "spec,field",
    [
        ({"type": "overlong", "max_length": 100}, "cache_length"),
        ({"type": "overlong", "max_length": 10, "cache_length": 20}, "cache_length"),
        ({"type": "overlong", "max_length": 10, "cache_length": 5, "unit": "words"}, "unit"),
        ({"type": "repetition", "max_penalty": 0.5}, "max_penalty"),
        ({"type": "repetition", "ngram_size": 0}, "ngram_size"),
    ],
    ids=["missing_cache", "cache_over_max", "unknown_unit", "positive_penalty", "zero_ngram"],
)
def test_bad_spec_names_the_field(spec, field):
    with pytest.raises(SpecError, match=field):
        build(spec)
