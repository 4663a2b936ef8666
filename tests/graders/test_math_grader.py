"""math grader: equivalence via math-verify/SymPy, one final answer, bounded parsing."""

from __future__ import annotations

import time

import pytest

from rft.config.base import SpecError
from rft.data import Example
from rft.graders import build

FAST = {"type": "math", "timeout_s": 1.0}


def ex(gold: str, prompt: str = "Solve the problem.") -> Example:
    return Example("t", prompt, {"answer": gold})


CASES = [
    # id, spec overrides, gold, completion, expected score, expected passed
    ("boxed_integer", {}, "42", "The answer is \\boxed{42}.", 1.0, True),
    ("fraction_equals_decimal", {}, "\\frac{3}{4}", "\\boxed{0.75}", 1.0, True),
    ("decimal_gold_equals_fraction", {}, "0.5", "\\boxed{\\frac{1}{2}}", 1.0, True),
    ("reordered_polynomial", {}, "x^2+1", "\\boxed{1+x^2}", 1.0, True),
    ("equivalent_radicals", {}, "\\frac{\\sqrt{2}}{2}", "\\boxed{\\frac{1}{\\sqrt{2}}}", 1.0, True),
    ("same_box_repeated", {}, "3", "first \\boxed{3}, checking: \\boxed{ 3 }", 1.0, True),
    ("answer_tag_mode", {"extract": "tag"}, "7", "<think>3+4</think><answer>7</answer>", 1.0, True),
    ("gsm8k_hash_mode", {"extract": "hash"}, "72", "48 + 24 = 72\n#### 72", 1.0, True),
    # adversarial negatives
    ("tiny_numbers_factorials_differ", {}, "\\frac{1}{2004!}", "\\boxed{\\frac{1}{2006!}}", 0.0, False),
    ("one_minus_vs_one_plus_inverse_e", {}, "1-\\frac{1}{e}", "\\boxed{1+\\frac{1}{e}}", 0.0, False),
    ("different_bare_equations", {}, "x+y=5", "\\boxed{x-y=5}", 0.0, False),
    ("partial_answer_to_two_part_gold", {}, "x=2, y=3", "\\boxed{x=2}", 0.0, False),
    ("tiny_decimals_differ", {}, "0.00000001", "\\boxed{0.00000002}", 0.0, False),
    ("hedge_with_lor", {}, "3", "\\boxed{2 \\lor 3}", 0.0, False),
    ("hedge_with_text_or", {}, "3", "\\boxed{2 \\text{ or } 3}", 0.0, False),
    ("hedge_with_two_boxes", {}, "3", "maybe \\boxed{2}, or \\boxed{3}", 0.0, False),
    ("hedge_with_a_list", {}, "3", "\\boxed{1, 2, 3}", 0.0, False),
    ("no_final_answer", {}, "42", "I think it is 42", 0.0, False),
    ("unclosed_box", {}, "42", "\\boxed{42", 0.0, False),
    ("empty_box_format_spam", {}, "42", "\\boxed{}", 0.0, False),
    ("two_answer_tags", {"extract": "tag"}, "7", "<answer>7</answer><answer>8</answer>", 0.0, False),
    ("overlong_answer_padding", {}, "2", "\\boxed{" + "1+" * 200 + "1}", 0.0, False),
]


@pytest.mark.parametrize("overrides,gold,completion,score,passed", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_math_grades(overrides, gold, completion, score, passed):
    grade = build({**FAST, **overrides})(completion, ex(gold))
    assert (grade.score, grade.passed) == (score, passed), grade.reason


def test_answer_that_only_echoes_the_prompt_fails():
    grade = build(FAST)("\\boxed{6*7}", ex("42", prompt="What is 6*7?"))
    assert grade.score == 0.0 and "echo" in grade.reason


@pytest.mark.parametrize(
    "completion",
    ["\\boxed{9^{9^{9^{9}}}}", "\\boxed{10000000!}"],
    ids=["power_tower", "huge_factorial"],
)
def test_sympy_blowups_are_cut_off_by_the_time_bound(completion):
    t0 = time.monotonic()
    grade = build(FAST)(completion, ex("1"))
    assert grade.score == 0.0 and grade.passed is False
    assert grade.details.get("timeout") is True
    assert time.monotonic() - t0 < 5.0


def test_grader_recovers_after_a_timeout():
    grader = build(FAST)
    grader("\\boxed{9^{9^{9^{9}}}}", ex("1"))
    assert grader("\\boxed{5}", ex("5")).score == 1.0


def test_unparseable_gold_is_skipped_not_punished():
    grade = build(FAST)("\\boxed{1}", ex("\\sqrt{}"))
    assert grade.passed is None and grade.details.get("skipped") is True


def test_missing_gold_field_is_skipped():
    grade = build(FAST)("\\boxed{1}", Example("t", "p", {}))
    assert grade.passed is None


@pytest.mark.parametrize(
    "spec,field",
    [
        ({"type": "math", "extract": "box"}, "extract"),
        ({"type": "math", "tag": "<answer>"}, "tag"),
        ({"type": "math", "timeout_s": -1}, "timeout_s"),
        ({"type": "math", "anwser_field": "x"}, "anwser_field"),
    ],
    ids=["bad_extract", "bad_tag", "negative_timeout", "typo_field"],
)
def test_bad_spec_names_the_field(spec, field):
    with pytest.raises(SpecError, match=field):
        build(spec)
