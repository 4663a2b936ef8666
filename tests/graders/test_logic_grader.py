"""logic grader: solver-checked entailment and knights-and-knaves assignments."""

from __future__ import annotations

import pytest

from rft.config.base import SpecError
from rft.data import Example
from rft.graders import build
from rft.graders.logic import FormulaError, parse_formula

ENTAIL = {"type": "logic", "mode": "entailment"}
KK = {"type": "logic", "mode": "knights_knaves"}


def premises(ps, c, **extra) -> Example:
    return Example("t", "Does the conclusion follow?", {"premises": ps, "conclusion": c, **extra})


def people(**roles) -> Example:
    return Example("t", "Who is a knight, who is a knave?", {"answer": roles})


ENTAILMENT = [
    # id, premises, conclusion, completion, expected score
    ("modus_ponens_yes", ["p", "p -> q"], "q", "<answer>yes</answer>", 1.0),
    ("affirming_consequent_no", ["q", "p -> q"], "p", "<answer>No</answer>", 1.0),
    ("word_operators", ["rain implies wet", "not wet"], "not rain", "<answer>entailed</answer>", 1.0),
    ("unicode_operators", ["a ∧ b"], "a ∨ c", "<answer>true</answer>", 1.0),
    ("equivalence", ["p <-> q", "q"], "p", "<answer>it follows</answer>", 1.0),
    ("contradictory_premises_entail_anything", ["p", "~p"], "z", "<answer>yes</answer>", 1.0),
    ("does_not_follow_phrase", ["p | q"], "p", "<answer>does not follow</answer>", 1.0),
    # adversarial negatives
    ("wrong_verdict", ["p", "p -> q"], "q", "<answer>no</answer>", 0.0),
    ("hedge_yes_or_no", ["p", "p -> q"], "q", "<answer>yes or no</answer>", 0.0),
    ("both_words", ["p", "p -> q"], "q", "<answer>yes no</answer>", 0.0),
    ("two_answer_tags", ["p", "p -> q"], "q", "<answer>yes</answer><answer>no</answer>", 0.0),
    ("no_answer_tag", ["p", "p -> q"], "q", "yes", 0.0),
    ("empty_tag_format_spam", ["p", "p -> q"], "q", "<answer></answer>", 0.0),
    ("echo_of_question", ["p", "p -> q"], "q", "<answer>Does the conclusion follow?</answer>", 0.0),
    ("verdict_plus_prose", ["p", "p -> q"], "q", "<answer>yes, because maybe q</answer>", 0.0),
]


@pytest.mark.parametrize("ps,c,completion,score", [c[1:] for c in ENTAILMENT], ids=[c[0] for c in ENTAILMENT])
def test_entailment(ps, c, completion, score):
    grade = build(ENTAIL)(completion, premises(ps, c))
    assert grade.score == score, grade.reason


def test_stored_answer_disagreeing_with_solver_skips_row():
    grade = build(ENTAIL)("<answer>no</answer>", premises(["p", "p -> q"], "q", answer="no"))
    assert grade.passed is None and "disagrees" in grade.reason


def test_unparseable_row_formula_skips_row():
    grade = build(ENTAIL)("<answer>yes</answer>", premises(["p ->"], "q"))
    assert grade.passed is None


KNIGHTS = [
    # id, gold, completion, expected score
    ("simple_sentences", {"A": "knight", "B": "knave"}, "<answer>A is a knight. B is a knave.</answer>", 1.0),
    ("colon_form", {"A": "knight", "B": "knave"}, "<answer>A: knight, B: knave</answer>", 1.0),
    ("plural_group", {"A": "knave", "B": "knave", "C": "knight"}, "<answer>A and B are knaves; C is a knight.</answer>", 1.0),
    ("names_and_case", {"Alice": "knight", "Bob": "knave"}, "<answer>Alice is a Knight and Bob is a Knave</answer>", 1.0),
    ("reasoning_outside_tag_ignored", {"A": "knight", "B": "knave"}, "If A were a knave, A is a knave... <answer>A is a knight, B is a knave</answer>", 1.0),
    # adversarial negatives
    ("wrong_role", {"A": "knight", "B": "knave"}, "<answer>A is a knave. B is a knave.</answer>", 0.0),
    ("hedge_knight_or_knave", {"A": "knight", "B": "knave"}, "<answer>A is a knight or a knave. B is a knave.</answer>", 0.0),
    ("either_hedge", {"A": "knight", "B": "knave"}, "<answer>A is either a knight, B is a knave</answer>", 0.0),
    ("person_assigned_twice", {"A": "knight", "B": "knave"}, "<answer>A is a knight. A is a knave. B is a knave.</answer>", 0.0),
    ("person_assigned_twice_consistently", {"A": "knight", "B": "knave"}, "<answer>A is a knight. A is a knight. B is a knave.</answer>", 0.0),
    ("missing_person", {"A": "knight", "B": "knave"}, "<answer>A is a knight.</answer>", 0.0),
    ("negated_assignment", {"A": "knight", "B": "knave"}, "<answer>A is not a knave. B is a knave.</answer>", 0.0),
    ("stray_role_word", {"A": "knight", "B": "knave"}, "<answer>A is a knight. B is a knave. knights knaves</answer>", 0.0),
    ("all_roles_listed_spam", {"A": "knight", "B": "knave"}, "<answer>A is a knight, A is a knave, B is a knight, B is a knave</answer>", 0.0),
    ("empty_answer", {"A": "knight"}, "<answer></answer>", 0.0),
]


@pytest.mark.parametrize("gold,completion,score", [c[1:] for c in KNIGHTS], ids=[c[0] for c in KNIGHTS])
def test_knights_and_knaves(gold, completion, score):
    grade = build(KK)(completion, people(**gold))
    assert grade.score == score, grade.reason


@pytest.mark.parametrize(
    "text,error",
    [("p &", "expected"), ("(p | q", "expected"), ("p q", "unexpected"), ("p $ q", "unexpected character")],
    ids=["dangling_and", "unclosed_paren", "missing_operator", "bad_character"],
)
def test_formula_parser_rejects_bad_input(text, error):
    with pytest.raises(FormulaError, match=error):
        parse_formula(text)


def test_implication_is_right_associative():
    from sympy import Symbol
    from sympy.logic.boolalg import Implies

    p, q, r = Symbol("p"), Symbol("q"), Symbol("r")
    assert parse_formula("p -> q -> r") == Implies(p, Implies(q, r))


@pytest.mark.parametrize(
    "spec,field",
    [({"type": "logic", "mode": "fol"}, "mode"), ({"type": "logic", "roles": ["knight"]}, "roles"), ({"type": "logic", "extract": "last"}, "extract")],
    ids=["unknown_mode", "one_role", "unknown_extract"],
)
def test_bad_spec_names_the_field(spec, field):
    with pytest.raises(SpecError, match=field):
        build(spec)
