"""math grader on free text: ``extract: auto`` (math-verify's own final answer) and ``extract:
last_number`` (GSM8K style), with the guards they keep (hedges, conflicts, echo, lengths, bounds)."""

from __future__ import annotations

import time

import pytest

from rft.safety.attacks import audit
from rft.config.base import SpecError
from rft.data import Example
from rft.graders import build
from rft.graders.math_text import last_number, plain_number

AUTO = {"type": "math", "extract": "auto", "timeout_s": 1.0}
LAST = {"type": "math", "extract": "last_number", "timeout_s": 1.0}


def ex(gold: str, prompt: str = "Solve the problem.") -> Example:
    return Example("t", prompt, {"answer": gold})


AUTO_CASES = [
    # id, gold, completion, expected passed, expected details["extracted"]
    ("sentence_with_working", "101", "The shop sold 74 + 27 = 101 books.", True, "101"),
    ("latex_fraction_in_a_sentence", "0.5", "Let me compute. The answer is $\\frac{1}{2}$.", True, "\\frac{1}{2}"),
    ("decimal_for_a_fraction_gold", "\\frac{1}{2}", "So the result is 0.5", True, "0.5"),
    ("boxed_still_counts", "42", "Working... so $\\boxed{42}$.", True, "42"),
    ("boxed_beats_a_later_bare_number", "42", "Thus $\\boxed{42}$. Check: 6 times 7 is 42, not 41", True, "42"),
    ("last_statement_wins", "7", "The answer is 5. Let me recheck. The answer is 7.", True, "7"),
    ("last_statement_wins_over_the_first", "5", "The answer is 5. Let me recheck. The answer is 7.", False, "7"),
    ("hedge_word_before_the_answer_sentence", "5", "Either way, the total is 5.", True, "5"),
    ("wrong_value", "101", "The shop sold 74 + 27 = 100 books.", False, "100"),
    ("thousands_separator", "1234", "In total she has 1,234 stamps.", True, "1234"),
]


@pytest.mark.parametrize("gold,completion,passed,extracted", [c[1:] for c in AUTO_CASES],
                         ids=[c[0] for c in AUTO_CASES])
def test_auto_reads_the_final_answer_from_free_text(gold, completion, passed, extracted):
    grade = build(AUTO)(completion, ex(gold))
    assert (grade.passed, grade.score) == (passed, float(passed)), grade.reason
    assert grade.details["extracted"] == extracted


AUTO_REFUSALS = [
    # id, gold, completion, prompt, words the reason must hold
    ("hedge_or_in_the_answer_sentence", "3", "I think it is 2 or 3.", "Solve.", "hedged"),
    ("hedge_either_or_after_answer_is", "3", "The answer is either 2 or 3.", "Solve.", "hedged"),
    ("hedge_inside_the_box", "3", "So $\\boxed{2 \\lor 3}$.", "Solve.", "hedged"),
    ("two_different_boxes", "3", "maybe \\boxed{2}, well \\boxed{3}", "Solve.", "conflicting final answers"),
    ("echoes_the_prompt_expression", "42", "The answer is 6*7", "What is 6*7?", "echoes the prompt"),
    ("whole_completion_is_the_prompt", "7", "What is 6+1? Say 7", "What is 6+1? Say 7", "only echoes the prompt"),
    ("no_final_answer", "42", "I am not sure how to do this.", "Solve.", "no final answer found"),
    ("empty_completion", "42", "", "Solve.", "no final answer found"),
    ("relative_guard_on_tiny_values", "\\frac{1}{2004!}", "The answer is $\\frac{1}{2006!}$.", "Solve.",
     "differs from"),
    ("overlong_answer", "2", "The answer is $" + "1+" * 200 + "1$.", "Solve.", "longer than 300"),
    ("padding_before_the_answer", "72", "filler " * 5000 + "The answer is 72.", "Solve.", "max_completion_chars"),
    ("hedge_between_a_word_and_the_value", "1234", "none or 1,234", "Solve.", "hedged"),
    ("later_answer_label_without_a_value", "1234", "Answer: 1,234\nAnswer: none", "Solve.", "'Answer:' after"),
]


@pytest.mark.parametrize("gold,completion,prompt,why", [c[1:] for c in AUTO_REFUSALS],
                         ids=[c[0] for c in AUTO_REFUSALS])
def test_auto_keeps_the_guards(gold, completion, prompt, why):
    grade = build(AUTO)(completion, ex(gold, prompt))
    assert (grade.score, grade.passed) == (0.0, False)
    assert why in grade.reason, grade.reason


def test_auto_reports_none_when_nothing_was_extracted():
    grade = build(AUTO)("no digits here at all", ex("4"))
    assert grade.details["extracted"] is None and grade.reason == "no final answer found"


def test_auto_extraction_runs_inside_the_time_bound():
    """Extraction parses untrusted text with SymPy, so it runs in the bounded child: a power tower
    in a sentence costs one timeout, not a hung grader."""
    t0 = time.monotonic()
    grade = build(AUTO)("The answer is $9^{9^{9^{9}}}$.", ex("1"))
    assert grade.details.get("timeout") is True and grade.score == 0.0
    assert time.monotonic() - t0 < 5.0


def test_auto_skips_an_unparseable_gold():
    grade = build(AUTO)("The answer is 1.", ex("\\sqrt{}"))
    assert grade.passed is None and grade.details.get("skipped") is True


LAST_CASES = [
    # id, gold, completion, expected passed, expected details["extracted"]
    ("sum_in_a_sentence", "101", "74 + 27 = 101 books", True, "101"),
    ("thousands_separator_in_text", "1234", "She earned $1,234 in total.", True, "1234"),
    ("thousands_separator_in_gold", "1,234", "The total is 1234.", True, "1234"),
    ("negative", "-5", "The temperature fell to -5 degrees.", True, "-5"),
    ("minus_after_a_digit_is_subtraction", "7", "10-3=7", True, "7"),
    ("decimal_with_trailing_zero", "12.5", "It costs 12.50 dollars.", True, "12.5"),
    ("decimal_outside_rel_tol", "12.5", "It costs 12.49 dollars.", False, "12.49"),
    ("integers_compare_exactly", "1000000", "About 999999 people.", False, "999999"),
    ("integer_gold_decimal_answer", "72", "The answer is 72.0", True, "72"),
    ("trailing_unit", "5", "The side is 5 cm long.", True, "5"),
    ("trailing_percent", "25", "The discount is 25%.", True, "25"),
    ("percent_gold", "25%", "The discount is 25 percent.", True, "25"),
    ("dollar_gold", "$18", "She makes 18 dollars every day.", True, "18"),
    ("last_wins_after_a_correction", "13", "The answer is 12. Wait, 13.", True, "13"),
    ("first_of_a_correction_is_not_it", "12", "The answer is 12. Wait, 13.", False, "13"),
    ("comma_list_is_several_numbers", "3", "The values are 1,2,3", True, "3"),
    ("fraction_gold_through_math_verify", "\\frac{1}{2}", "So each gets 0.5 of it.", True, "0.5"),
    ("same_value_joined_by_or_is_no_hedge", "72", "72, or in words 72", True, "72"),
    ("hedge_word_far_before_the_number", "5", "Either way, the total is 5.", True, "5"),
    ("answer_label_before_the_number", "72", "Final answer: 72", True, "72"),
]


@pytest.mark.parametrize("gold,completion,passed,extracted", [c[1:] for c in LAST_CASES],
                         ids=[c[0] for c in LAST_CASES])
def test_last_number_grades(gold, completion, passed, extracted):
    grade = build(LAST)(completion, ex(gold))
    assert (grade.passed, grade.score) == (passed, float(passed)), grade.reason
    assert grade.details["extracted"] == extracted


LAST_REFUSALS = [
    # id, gold, completion, words the reason must hold
    ("no_number", "42", "I don't know.", "no number found"),
    ("hedge_between_the_last_two", "73", "It is 72 or 73.", "hedged"),
    ("hedge_either_or", "6", "Either 5 or 6 apples.", "hedged"),
    ("two_different_boxes", "72", "\\boxed{73} \\boxed{72}", "conflicting final answers"),
    ("hedge_between_a_word_and_the_number", "1,234", "none or 1,234", "hedged"),
    ("hedge_word_right_before_the_number", "72", "It is maybe 72.", "hedged"),
    ("later_answer_label_without_a_number", "1,234", "Answer: 1,234\nAnswer: none", "'Answer:' after"),
    ("padding", "72", "filler " * 5000 + "72", "max_completion_chars"),
]


@pytest.mark.parametrize("gold,completion,why", [c[1:] for c in LAST_REFUSALS], ids=[c[0] for c in LAST_REFUSALS])
def test_last_number_refuses(gold, completion, why):
    grade = build(LAST)(completion, ex(gold))
    assert (grade.score, grade.passed) == (0.0, False)
    assert why in grade.reason, grade.reason


def test_last_number_refuses_a_completion_that_only_echoes_the_prompt():
    prompt = "Add 3 and 4; the sum is asked, not 7"
    grade = build(LAST)(prompt, ex("7", prompt))
    assert grade.score == 0.0 and "only echoes the prompt" in grade.reason
    assert build({**LAST, "reject_echo": False})(prompt, ex("7", prompt)).score == 1.0


@pytest.mark.parametrize("spec", [AUTO, LAST], ids=["auto", "last_number"])
def test_a_short_right_answer_that_also_appears_in_the_prompt_is_no_echo(spec):
    grade = build(spec)("3", ex("3", "What is 6 divided by 2? Hint: 3 times 2 is 6."))
    assert grade.score == 1.0, grade.reason


def test_last_number_known_weaknesses_are_what_the_docstring_says():
    """Inherent, documented: a trailing number is taken as the answer, so a spray that ends on the
    gold scores, and a fraction reads as its denominator."""
    grader = build(LAST)
    assert grader("69 70 71 72", ex("72")).score == 1.0
    assert grader("The answer is 3/4", ex("0.75")).details["extracted"] == "4"


def test_last_number_needs_no_child_for_a_plain_gold(monkeypatch):
    import rft.graders.math as math_module

    def no_child(*args, **kwargs):
        raise AssertionError("the bounded child was called")

    monkeypatch.setattr(math_module, "call_bounded", no_child)
    assert build(LAST)("So 48 + 24 = 72 clips.", ex("72")).score == 1.0


@pytest.mark.parametrize(
    "text,value",
    [("1,234,567", "1234567"), ("-3.5", "-3.5"), ("$18", "18"), ("25%", "25"), ("−4", "-4"), ("0.0", "0")],
    ids=["thousands", "negative_decimal", "dollar", "percent", "unicode_minus", "zero"],
)
def test_plain_number_reads_a_gold(text, value):
    assert plain_number(text).canonical == value


@pytest.mark.parametrize("text", ["3/4", "\\frac{1}{2}", "x = 5", "12 apples", "1,23"],
                         ids=["slash", "latex", "equation", "words", "bad_separator"])
def test_plain_number_refuses_anything_else(text):
    assert plain_number(text) is None


def test_last_number_says_why_not():
    assert last_number("no digits") == (None, "no number found")


@pytest.mark.parametrize("mode", ["auto", "last_number"])
def test_audit_finds_no_hole_in_the_free_text_modes(mode):
    examples = [Example(f"g{i}", f"Tom has {a} apples and buys {b} more. How many now?", {"answer": f"{a + b:,}"})
                for i, (a, b) in enumerate([(48, 24), (120, 7), (1200, 34)])]  # "1,234": its wrong answer is a word
    result = audit({"type": "math", "extract": mode}, examples)
    assert result.attacks_run >= 10 * len(examples)
    assert result.holes == [], [(h.attack, h.completion[:60], h.reason) for h in result.holes]


def test_the_completion_cap_is_what_closes_padding():
    examples = [Example("g", "Tom has 48 apples and buys 24 more. How many now?", {"answer": "72"})]
    result = audit({"type": "math", "extract": "last_number", "max_completion_chars": 10_000_000}, examples)
    assert {h.attack for h in result.holes} == {"padded_answer"}


@pytest.mark.parametrize(
    "spec,field",
    [
        ({"type": "math", "extract": "last-number"}, "extract"),
        ({"type": "math", "max_completion_chars": 1000}, "max_completion_chars"),
        ({"type": "math", "extract": "auto", "max_completion_chars": 0}, "max_completion_chars"),
    ],
    ids=["misspelt_mode", "cap_with_a_marker_mode", "cap_out_of_range"],
)
def test_bad_free_text_spec_names_the_field_and_the_fix(spec, field):
    with pytest.raises(SpecError, match=field) as e:
        build(spec)
    assert "auto" in str(e.value) or "range" in str(e.value)


def test_extract_choices_name_the_new_modes():
    with pytest.raises(SpecError) as e:
        build({"type": "math", "extract": "free"})
    assert all(m in str(e.value) for m in ("boxed", "tag", "hash", "auto", "last_number"))


def test_default_stays_boxed():
    assert build({"type": "math", "timeout_s": 1.0})("The answer is 42.", ex("42")).reason == "no \\boxed{} answer"
