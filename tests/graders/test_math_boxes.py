"""math grader: several boxes make one answer only when together they equal a set- or tuple-valued
gold (rft.graders.math_boxes); every other pair of different boxes stays a hedge or a conflict. Also
the comparison fixes the math-verify vectors needed: a clock time, a percent, a hedge window that
starts inside a word, a later "Answer:" that restates the answer, a gold holding boxes."""

from __future__ import annotations

import pytest

from rft.safety.attacks import audit
from rft.data import Example
from rft.graders import build
from rft.graders.math import final_answer
from rft.graders.math_boxes import boxed_contents, hedge_between_boxes
from rft.graders.math_text import SENTENCE_REACH

MODES = ["boxed", "auto"]
HUNDRED = " ".join(f"\\boxed{{{i}}}" for i in range(1, 101))


def grade(mode: str, gold: str, completion: str, prompt: str = "Solve the problem."):
    return build({"type": "math", "extract": mode, "timeout_s": 5.0})(completion, Example("t", prompt, {"answer": gold}))


ACCEPTED = [
    # id, gold, completion: several boxes that together are the gold (both modes)
    ("set_of_pairs_one_per_box", "(2, 2), (6, 2)", "So $\\boxed{(2, 2)} \\text{ and } \\boxed{(6, 2)}$."),
    ("set_in_any_order", "1, 2, 3", "The roots are \\boxed{3}, \\boxed{1} and \\boxed{2}."),
    ("set_with_a_box_restated", "1, 2", "We get \\boxed{1} and \\boxed{2}. Check: \\boxed{1} works."),
    ("set_box_holding_a_list", "1, 2, 3", "So \\boxed{1, 2} and \\boxed{3}."),
    ("set_of_named_values", "k = 45, n = 2", "Hence $\\boxed{k = 45} \\quad \\text{and} \\quad \\boxed{n = 2}$"),
    ("set_with_equivalent_forms", "\\frac{1}{2}, 3", "The values are \\boxed{0.5} and \\boxed{\\frac{6}{2}}."),
    ("tuple_in_written_order", "(6, 31, -1)", "So $p = \\boxed{6}$, $q = \\boxed{31}$ and $r = \\boxed{-1}$."),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("gold,completion", [c[1:] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED])
def test_boxes_that_together_equal_a_set_or_tuple_gold_pass(mode, gold, completion):
    g = grade(mode, gold, completion)
    assert (g.passed, g.score) == (True, 1.0), g.reason


REFUSED = [
    # id, gold, completion, words the reason must hold (both modes)
    ("many_candidates_for_a_scalar", "42", HUNDRED, "conflicting final answers"),
    ("right_and_wrong_box_for_a_scalar", "3", "\\boxed{3} and \\boxed{4}", "conflicting final answers"),
    ("wrong_then_right_box_for_a_scalar", "3", "\\boxed{4}, no: \\boxed{3}", "conflicting final answers"),
    ("two_forms_of_one_scalar", "\\frac{1}{2}", "\\boxed{\\frac{1}{2}} = \\boxed{0.5}", "conflicting final answers"),
    ("interval_endpoints_in_two_boxes", "(3, 5)", "\\boxed{3} and \\boxed{5}", "conflicting final answers"),
    ("equation_split_over_boxes", "x + y = 5", "\\boxed{x + y} = \\boxed{5}", "conflicting final answers"),
    ("superset_of_a_set_gold", "1, 2", "\\boxed{1}, \\boxed{2} and \\boxed{3}", "differs from"),
    ("many_candidates_for_a_set", "1, 2", HUNDRED, "differs from"),
    ("subset_of_a_set_gold", "1, 2, 3", "\\boxed{1} and \\boxed{2}", "differs from"),
    ("wrong_pair_in_a_set_of_pairs", "(2, 2), (6, 2)", "\\boxed{(2, 2)} and \\boxed{(2, 6)}", "differs from"),
    ("tuple_out_of_order", "(6, 31, -1)", "\\boxed{31}, \\boxed{6}, \\boxed{-1}", "differs from"),
    ("tuple_restated_in_a_last_box", "(6, 31, -1)", "\\boxed{6}, \\boxed{31}, \\boxed{-1}: \\boxed{(6, 31, -1)}",
     "differs from"),
    ("hedge_between_boxes_for_a_set", "2, 3", "\\boxed{2} or \\boxed{3}", "hedged"),
    ("hedge_inside_a_box_for_a_set", "2, 3", "\\boxed{2} and \\boxed{2 \\text{ or } 3}", "hedged"),
    ("unparseable_box", "1, 2", "\\boxed{1} and \\boxed{\\sqrt{}}", "does not parse"),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("gold,completion,why", [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_boxes_that_hedge_or_conflict_are_refused(mode, gold, completion, why):
    g = grade(mode, gold, completion)
    assert (g.passed, g.score) == (False, 0.0) and why in g.reason, g.reason


def test_auto_also_needs_the_answer_math_verify_reads():
    """The boxes equal the gold, but the final answer stated after them does not."""
    g = grade("auto", "1, 2", "So \\boxed{1} and \\boxed{2}. The final answer is 3")
    assert g.passed is False and "differs from" in g.reason, g.reason
    assert grade("boxed", "1, 2", "So \\boxed{1} and \\boxed{2}. The final answer is 3").passed is True


def test_last_number_still_refuses_several_boxes():
    g = grade("last_number", "3", "\\boxed{2} and \\boxed{3}")
    assert g.passed is False and "conflicting final answers" in g.reason


def test_box_helpers_read_boxes_and_the_words_between_them():
    text = "a \\boxed{ 1 } then \\fbox{x^{2}} or maybe \\boxed{1} \\boxed{unclosed"
    assert boxed_contents(text) == ["1", "x^{2}", "1"]
    assert hedge_between_boxes(text) == "or"
    assert hedge_between_boxes("\\boxed{1} and \\boxed{2}") == ""
    assert hedge_between_boxes("For each order: \\boxed{1}") == ""  # words outside the gaps do not count


COMPARISONS = [
    # id, mode, gold, completion, passed
    ("clock_time_equals_itself", "auto", "$12:00$", "They meet at $12:00$.", True),
    ("clock_time_boxed", "boxed", "12:00", "\\boxed{12:00}", True),
    ("clock_times_differ", "boxed", "12:00", "\\boxed{1:00}", False),
    ("division_by_zero_is_no_clock_time", "boxed", "12:00", "\\boxed{\\frac{1}{0}}", False),
    ("percent_gold_for_its_number", "boxed", "28\\%", "\\boxed{28}", True),
    ("percent_gold_for_another_number", "boxed", "28\\%", "\\boxed{29}", False),
    ("infinity_equals_itself", "boxed", "\\infty", "\\boxed{\\infty}", True),
    ("infinity_has_a_sign", "boxed", "\\infty", "\\boxed{-\\infty}", False),
    ("gold_with_boxes_is_its_last_box", "boxed", "\\boxed{1} no no no no no \\boxed{2}", "\\boxed{2}", True),
    ("gold_with_boxes_is_not_their_set", "boxed", "\\boxed{1} no no no no no \\boxed{2}", "\\boxed{1, 2}", False),
    ("later_answer_label_restating", "auto", "5", "So \\boxed{5}.\nFinal Answer: 5", True),
    ("later_answer_label_with_another_value", "auto", "5", "So \\boxed{5}.\nFinal Answer: 6", False),
    ("later_answer_label_with_no_value", "auto", "5", "So \\boxed{5}.\nFinal Answer: none", False),
]


@pytest.mark.parametrize("mode,gold,completion,passed", [c[1:] for c in COMPARISONS], ids=[c[0] for c in COMPARISONS])
def test_comparisons(mode, gold, completion, passed):
    g = grade(mode, gold, completion)
    assert (g.passed, g.score) == (passed, float(passed)), g.reason


@pytest.mark.parametrize("side", ["before", "after"])
def test_the_hedge_window_never_starts_or_ends_inside_a_word(side):
    """The sentence read for hedges is cut SENTENCE_REACH characters from the answer; a cut inside
    "for" or "order" left an "or" that refused a right answer."""
    if side == "before":  # the window starts at the "o" of "for", right before a formula
        head = "Now solve for $x$: "
        text = head + "y" * (SENTENCE_REACH + head.index("or") - len(head) - 4) + " so $x = 7$"
        assert text.index("$x = 7$") - SENTENCE_REACH == head.index("or")
    else:  # the window ends after the "or" of "order" (the answer read is "answer is $x = 7$ ")
        text = "The answer is $x = 7$ " + "y" * (SENTENCE_REACH - 3) + " order"
        assert text[: final_answer(text)[3] + SENTENCE_REACH].endswith(" or")
    g = grade("auto", "7", text)
    assert g.passed is True, g.reason


@pytest.mark.parametrize("mode", MODES)
def test_audit_finds_no_hole_with_set_tuple_and_scalar_golds(mode):
    golds = ["1, 2", "(2, 2), (6, 2)", "(6, 31, -1)", "k = 45, n = 2", "42", "\\frac{1}{2}"]
    examples = [Example(f"g{i}", "Find every answer.", {"answer": gold}) for i, gold in enumerate(golds)]
    result = audit({"type": "math", "extract": mode}, examples)
    assert result.tried["box_spray"] == 2 * len(golds) and result.tried["box_superset"] == len(golds)
    assert result.holes == [], [(h.attack, h.completion[:60], h.reason) for h in result.holes]
