"""passed_of: the one rule every pass count reads -- the grader's verdict, else full score; skipped
and errored grades never pass."""

import pytest

from rft.data import Example
from rft.graders import build
from rft.graders.base import Grade, passed_of, safe_grade

CASES = [
    # id, grade, counts as passed
    ("verdict_true", Grade(0.4, True), True),  # a grader's own threshold wins over the score
    ("verdict_false_at_full_score", Grade(1.0, False), False),
    ("no_verdict_full_score", Grade(1.0, None), True),
    ("no_verdict_full_score_less_rounding", Grade(3 * (1 / 3) - 1e-12, None), True),
    ("no_verdict_above_full_score", Grade(2.5, None), True),
    ("no_verdict_partial_credit", Grade(0.99, None), False),
    ("no_verdict_zero", Grade(0.0, None), False),
    ("shaping_penalty", Grade(-0.3, None), False),
    ("skipped_row", Grade(0.0, None, "gold does not parse", {"skipped": True}), False),
    ("skipped_even_at_full_score", Grade(1.0, None, "", {"skipped": True}), False),
    ("errored_with_a_true_verdict", Grade(1.0, True, "", {"error": "UnpicklableDetails"}), False),
    ("timed_out", Grade(0.0, False, "timed out", {"error": "Timeout", "timeout": True}), False),
]


@pytest.mark.parametrize("grade, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_passed_of(grade, expected):
    assert passed_of(grade) is expected


EXACT = {"type": "python", "source": "def grade(sample, item):\n    return float(sample['output_text'] == item['answer'])"}
HALF = {"type": "python", "source": "def grade(sample, item):\n    return 0.5"}


def test_openai_python_grader_without_pass_threshold_passes_on_full_score_only():
    ex = Example("a", "1+1=", {"answer": "2"})
    right, wrong = build(EXACT)("2", ex), build(EXACT)("3", ex)
    assert right.passed is None and wrong.passed is None  # OpenAI's shape: no threshold, no verdict
    assert passed_of(right) and not passed_of(wrong)
    assert not passed_of(build(HALF)("2", ex))


def test_pass_threshold_on_the_spec_declares_another_pass_line():
    assert passed_of(build({**HALF, "pass_threshold": 0.5})("2", Example("a", "x", {})))


def test_a_python_grader_that_raises_never_passes():
    broken = build({"type": "python", "source": "def grade(sample, item):\n    return item['missing']"})
    assert not passed_of(safe_grade(broken, "2", Example("a", "x", {})))
