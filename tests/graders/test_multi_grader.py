"""multi grader: weighted sums and safe calculate_output formulas over named sub-graders."""

from __future__ import annotations

import pytest

from rft.config.base import SpecError
from rft.data import Example
from rft.graders import build

EX = Example("t", "What is 2+2?", {"answer": "4"})
SUBS = {
    "correct": {"type": "string_check", "input": "{{ sample.output_json.answer }}", "reference": "{{ item.answer }}", "operation": "eq"},
    "short": {"type": "overlong", "max_length": 40, "cache_length": 20},
}
GOOD = '{"answer": "4"}'
WRONG = '{"answer": "5"}'
LONG_GOOD = '{"answer": "4", "pad": "' + "x" * 40 + '"}'

CASES = [
    # id, spec extras, completion, expected score
    ("weights_correct_short", {"weights": {"correct": 1.0, "short": 0.5}}, GOOD, 1.0),
    ("weights_wrong", {"weights": {"correct": 1.0, "short": 0.5}}, WRONG, 0.0),
    ("weights_correct_but_long", {"weights": {"correct": 1.0, "short": 0.5}}, LONG_GOOD, 0.5),
    ("formula_openai_caret_power", {"calculate_output": "correct ^ 2 + short"}, GOOD, 1.0),
    ("caret_binds_tighter_than_plus", {"calculate_output": "1 + 2 ^ 3 - 8 * correct"}, GOOD, 1.0),
    ("caret_is_right_associative", {"calculate_output": "2 ^ 3 ^ 2 / 512"}, GOOD, 1.0),
    ("formula_python_power", {"calculate_output": "2 ** correct"}, GOOD, 2.0),
    ("formula_functions", {"calculate_output": "max(0, min(1, correct + short)) + abs(-1) - floor(0.5) + ceil(0.2) - sqrt(4) + log(exp(0))"}, LONG_GOOD, 0.0),
    ("formula_unary_minus", {"calculate_output": "-short"}, LONG_GOOD, 1.0),
    ("formula_division", {"calculate_output": "(correct + 1) / 2"}, WRONG, 0.5),
    # adversarial: a broken term scores 0 without poisoning the others, math errors are contained
    ("formula_division_by_zero_contained", {"calculate_output": "correct / (correct - 1)"}, GOOD, 0.0),
    ("formula_overflow_contained", {"calculate_output": "10 ^ 10 ^ 10"}, GOOD, 0.0),
    ("formula_sqrt_negative_contained", {"calculate_output": "sqrt(short)"}, LONG_GOOD, 0.0),
    ("non_json_answer_skips_component", {"weights": {"correct": 1.0, "short": 1.0}}, "4", 0.0),
]


@pytest.mark.parametrize("extras,completion,score", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_multi(extras, completion, score):
    grade = build({"type": "multi", "graders": SUBS, **extras})(completion, EX)
    assert grade.score == pytest.approx(score), grade.reason
    assert set(grade.details["components"]) == {"correct", "short"}


def test_components_are_reported_separately():
    grade = build({"type": "multi", "graders": SUBS, "weights": {"correct": 1.0, "short": 1.0}})(LONG_GOOD, EX)
    assert grade.details["components"] == {"correct": 1.0, "short": -1.0}


def test_pass_threshold_decides_passed():
    spec = {"type": "multi", "graders": SUBS, "weights": {"correct": 1.0, "short": 1.0}, "pass_threshold": 0.9}
    assert build(spec)(GOOD, EX).passed is True
    assert build(spec)(LONG_GOOD, EX).passed is False


@pytest.mark.parametrize(
    "extras,field",
    [
        ({"calculate_output": "__import__('os').system('true')"}, "calculate_output"),
        ({"calculate_output": "correct.__class__"}, "calculate_output"),
        ({"calculate_output": "[correct][0]"}, "calculate_output"),
        ({"calculate_output": "correct if short else 1"}, "calculate_output"),
        ({"calculate_output": "pow(correct, 2)"}, "calculate_output"),
        ({"calculate_output": "unknown + 1"}, "calculate_output"),
        ({"calculate_output": "max()"}, "calculate_output"),
        ({"calculate_output": "correct +"}, "calculate_output"),
        ({"weights": {"correct": 1.0}}, "weights"),
        ({"weights": {"correct": 1.0, "short": "high"}}, "weights"),
        ({}, "weights"),
        ({"weights": {"correct": 1.0, "short": 1.0}, "calculate_output": "correct"}, "weights"),
    ],
    ids=[
        "import_call", "attribute_access", "subscript", "conditional", "unlisted_function", "unknown_name",
        "min_arity", "syntax_error", "weights_missing_a_grader", "non_numeric_weight", "neither", "both",
    ],
)
def test_unsafe_or_bad_specs_are_refused(extras, field):
    with pytest.raises(SpecError, match=field):
        build({"type": "multi", "graders": SUBS, **extras})


def test_bad_sub_grader_spec_names_the_sub_grader():
    with pytest.raises(SpecError, match="sub-grader 'correct'"):
        build({"type": "multi", "graders": {"correct": {"type": "math", "extract": "nope"}}, "calculate_output": "correct"})
