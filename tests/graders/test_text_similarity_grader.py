"""text_similarity grader: fuzzy_match, BLEU, ROUGE with a pass threshold."""

from __future__ import annotations

import pytest

from rft.config.base import SpecError
from rft.data import Example
from rft.graders import build
from rft.graders.text_similarity import bleu, rouge_l, rouge_n

REF = "the cat sat on the mat"


def ex(reference: str = REF) -> Example:
    return Example("t", "Describe the picture in one sentence.", {"answer": reference})


CASES = [
    # id, metric, threshold, completion, expected passed
    ("fuzzy_identical", "fuzzy_match", 0.9, REF, True),
    ("fuzzy_one_typo", "fuzzy_match", 0.9, "the cat sat on the mta", True),
    ("bleu_identical", "bleu", 0.99, REF, True),
    ("bleu_single_word_answer", "bleu", 0.99, "Paris", None),  # reference replaced below
    ("rouge_l_identical", "rouge_l", 0.99, REF, True),
    ("rouge_l_case_insensitive", "rouge_l", 0.99, REF.upper(), True),
    ("rouge_1_reordered_words", "rouge_1", 0.99, "the mat sat on the cat", True),
    ("rouge_2_near", "rouge_2", 0.5, "the cat sat on a mat", True),
    # adversarial negatives
    ("fuzzy_padding_with_repeats", "fuzzy_match", 0.8, " ".join([REF] * 5), False),
    ("bleu_padding_with_repeats", "bleu", 0.5, " ".join([REF] * 5), False),
    ("rouge_l_padding_with_repeats", "rouge_l", 0.5, " ".join([REF] * 5), False),
    ("bleu_word_spam_is_clipped", "bleu", 0.3, "the the the the the the", False),
    ("rouge_1_word_spam_is_clipped", "rouge_1", 0.5, "the the the the the the the the the the", False),
    ("echo_of_the_prompt", "rouge_l", 0.5, "Describe the picture in one sentence.", False),
    ("empty_answer_bleu", "bleu", 0.1, "", False),
    ("empty_answer_rouge", "rouge_l", 0.1, "", False),
    ("reordered_words_lose_bleu", "bleu", 0.9, "mat the on sat cat the", False),
    ("truncated_answer_brevity", "bleu", 0.6, "the cat", False),
]


@pytest.mark.parametrize("metric,threshold,completion,passed", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_text_similarity(metric, threshold, completion, passed):
    grader = build({"type": "text_similarity", "evaluation_metric": metric, "pass_threshold": threshold})
    example = ex("Paris") if passed is None else ex()
    grade = grader(completion, example)
    assert grade.passed is (True if passed is None else passed), grade.reason
    assert 0.0 <= grade.score <= 1.0


def test_bleu_matches_hand_computed_value():
    # candidate "the cat sat" vs reference "the cat sat on the mat": all 1..3-gram precisions are 1,
    # effective order 3, brevity penalty exp(1 - 6/3) = e^-1.
    assert bleu("the cat sat", REF) == pytest.approx(0.36787944, rel=1e-6)


def test_rouge_values_match_hand_computed():
    # LCS("the cat on mat", REF) = 4 tokens: P = 4/4, R = 4/6, F1 = 0.8
    assert rouge_l("the cat on mat", REF) == pytest.approx(0.8)
    # bigrams: cand {the cat, cat sat}, ref has both among 5: P = 1, R = 2/5 -> F1 = 4/7
    assert rouge_n("the cat sat", REF, 2) == pytest.approx(4 / 7)


def test_input_over_cap_scores_zero():
    grade = build({"type": "text_similarity", "max_chars": 10})(REF, ex())
    assert grade.score == 0.0 and grade.passed is False


@pytest.mark.parametrize(
    "spec,field",
    [
        ({"type": "text_similarity", "evaluation_metric": "cosine"}, "evaluation_metric"),
        ({"type": "text_similarity", "pass_threshold": 2}, "pass_threshold"),
        ({"type": "text_similarity", "input": "{{ sample.text }}"}, "input"),
    ],
    ids=["unsupported_metric", "threshold_above_one", "bad_placeholder"],
)
def test_bad_spec_names_the_field(spec, field):
    with pytest.raises(SpecError, match=field):
        build(spec)
