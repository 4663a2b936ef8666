"""Acceptance: ``math`` with ``extract: auto`` agrees with math-verify on its own test vectors, given
as free text.

Each vector (gold, prediction, expected) is taken from math-verify 0.9.0's tests (the sdist on PyPI,
``math_verify-0.9.0.tar.gz``: ``tests/test_all.py``, ``tests/test_numina_cases.py``,
``tests/test_string_extraction.py``); the function named in the case id's comment is where it
is. The prediction is wrapped in a sentence the way an instruct model writes it (a vector that is
already free text is used as-is). Three verdicts must agree:

1. the vector's published ``expected`` (math-verify's tests run with ``boxed_match_priority=0``;
   the wrapping and the default configs must not change the answer -- else the row is wrong here),
2. ``math_verify.verify(parse(gold), parse(free_text))`` with ``parse``'s defaults (the reference),
3. our grader's ``passed`` with ``extract: auto``.

``DIFFERENCES`` holds the cases where our guards refuse what math-verify accepts, each with why.

``ALL_VECTORS`` (``math_verify_0_9_vectors.json``) is every (gold, prediction, expected) those
tests compare, 276 of them, fed as they are (the prediction is the completion): the grader must
agree with the published ``expected`` on at least 95 % of them; ``KNOWN_MISSES`` says why each
of the others is left. math-verify 0.9.0 itself agrees with 274 of them (its two stale rows are
``test_latex_notation[5]`` and ``[6]``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from math_verify import parse, verify

from rft.data import Example
from rft.graders import build
from rft.graders.math import final_answer

AUTO = {"type": "math", "extract": "auto", "timeout_s": 5.0}

VECTORS = [
    # id, gold, free text, published expected
    # test_all.py::test_number_extraction
    ("negative", "-5", "Let me compute. The answer is -5.", 1),
    ("thousands_commas", "7425000", "So the total is 7,425,000", 1),
    ("thousands_space", "1000", "The result is 1 000", 1),
    ("trailing_zero_decimal", "1000", "The result is 1000.0", 1),
    ("decimal_comma", "1000.99", "The answer is 1000,99", 1),
    ("decimal_comma_with_currency", "2.74", "Soucis : 2,74 $ a..", 1),
    ("no_leading_zero", "0.4", "So the result is .4", 1),
    ("dollar_prefix", "1000.99", "She paid $1,000.99", 1),
    ("euro_suffix_after_a_distractor", "1000.99", "the number is not 10 which is 1,000.99€", 1),
    ("square_metres_suffix", "1000.99", "so the number is 10 which is 1,000.99m²", 1),
    ("digit_inside_a_word_is_no_answer", "2", "AZYUK2A", 0),
    # test_all.py::test_simple_fraction_notation
    ("latex_fraction", "10/9", "The answer is $\\frac{10}{9}$.", 1),
    ("negative_latex_fraction", "-10/9", "So x equals $-\\frac{10}{9}$.", 1),
    # test_all.py::test_sets_handling
    ("half_open_interval", "$[0,1)$", "The solution set is $[0,1)$.", 1),
    ("interval_other_bound", "$[0,9)$", "The solution set is $[0,1)$.", 0),
    ("interval_other_bracket", "$(0,9)$", "The solution set is $[0,9)$.", 0),
    # test_all.py::test_latex_notation
    ("answer_display_bracket", "$9$", "Answer \\[ 9 \\]", 1),
    ("answer_inline_parenthesis_sum", "$10$", "Answer \\( (9+1) \\)", 1),
    ("malformed_frac", "$1/3$", "Simplifying gives $\\frac13 $.", 1),
    ("malformed_sqrt", "$\\sqrt{3}$", "The length is $\\sqrt3 $.", 1),
    ("dfrac", "$1/3$", "The probability is $\\dfrac{1}{3} $.", 1),
    ("last_equals_side", "$1/3$", "Hence $k = \\frac{1}{3}$.", 1),
    ("text_unit_dropped", "$1/3$", "Each piece is $\\frac{1}{3} \\text{meters}$.", 1),
    # test_all.py::test_percent_notation
    ("percent_word", "$28\\%$", "The loss is 28 percent.", 1),
    ("decimal_is_not_the_percent", "$0.28$", "The answer is 28.", 0),
    ("fraction_is_not_the_integer", "$28$", "The answer is 28/100.", 0),
    # test_all.py::test_latex_notation_math
    ("boxed_after_reasoning", "$2-2p$",
     "Since $x<2$, it follows that $|x-2|=2-x$. If $2-x=p$, then $x=2-p$. Thus $x-p=\\boxed{2-2p}$.", 1),
    ("boxed_fraction_chain", "$\\frac{14}{3}$",
     "$f(-2)+f(-1)+f(0)=\\frac{3(-2)-2}{-2-2}+\\frac{3(-1)-2}{-1-2}+\\frac{3(0)-2}{0-2}=\\frac{-8}{-4}+"
     "\\frac{-5}{-3}+\\frac{-2}{-2}=2+\\frac{5}{3}+1=\\boxed{\\frac{14}{3}}$", 1),
    ("boxed_simplified_radical", "$3\\sqrt{13}$",
     "We use the distance formula: \\begin{align*} \\sqrt{(2 - (-4))^2 + ((-6) - 3)^2} &= \\sqrt{6^2 + (-9)^2}\\\\ "
     "& = \\sqrt{36 + 81}\\\\ & = \\sqrt{117} = \\boxed{3\\sqrt{13}}. \\end{align*}", 1),
    ("boxed_count_in_a_sentence", "$2$",
     "Of the two-digit perfect squares, only $4^2=16$ and $6^2=36$ end in $6$. Thus, there are $\\boxed{2}$ "
     "distinct possible values for $B$.", 1),
    ("boxed_pair_of_roots", "$-2,1$",
     "By the Integer Root Theorem, the possible integer roots are all the divisors of 14 (including negative "
     "divisors), which are $-14,$ $-7,$ $-2,$ $-1,$ $1,$ $2,$ $7,$ and $14.$  Checking, we find that the only "
     "integer roots are $\\boxed{-2,1}.$", 1),
    ("boxed_triple", "$(6,31,-1)$",
     "Then solving the system of equations, we find $(p,q,r) = \\boxed{(6,31,-1)}.$", 1),
    ("boxed_plus_minus_after_an_or_sentence", "$1 \\pm \\sqrt{19}$",
     "This simplifies to $64y + 1920 = 0,$ so $y = -30.$ Then $x^2 - 2x - 48 = -30,$ or $x^2 - 2x - 18 = 0.$ "
     "By the quadratic formula, $x = \\boxed{1 \\pm \\sqrt{19}}.$", 1),
    ("boxed_chain_of_inequalities", "$f(2) < f(1) < f(4)$",
     "Thus, $f(x)$ is an increasing function of $|x - 2|.$  In other words, the farther $x$ is from 2, the "
     "greater $f(x)$ is. Hence, $\\boxed{f(2) < f(1) < f(4)}.$", 1),
    ("boxed_trig_identity", "$2 \\sin b \\cos a$",
     "By sum-to-product,\n\\[\\sin (a + b) - \\sin (a - b) = \\boxed{2 \\sin b \\cos a}.\\]", 1),
    ("boxed_with_unit_text", "$125$ miles", "The distance is $\\boxed{125\\textnormal{ miles}}.$", 1),
    ("boxed_sqrt_without_braces", "$\\sqrt{2}+\\sqrt{5}$", "The answer is $\\boxed{\\sqrt 2+\\sqrt 5}$", 1),
    ("boxed_short_frac_times_pi", "$\\frac{9}{4}\\pi$", "Therefore $\\boxed{\\frac94\\pi}$.", 1),
    # test_all.py::test_relations_math
    ("geq_relation", "$x >= 5$", "Therefore $x \\geq 5$ is the solution.", 1),
    ("flipped_relation_differs", "$x > 5$", "Therefore $x < 5$ is the solution.", 0),
    ("last_side_of_a_chain", "$x = 11$", "Adding up, $x = 5+5+1 = 7 =11$", 1),
    ("approx_value", "$11$", "So $x\\approx11$", 1),
    ("negated_inequality", "$x < 1$", "Multiplying by -1 gives $-x > -1$", 1),
    ("same_line_other_form", "$2x+4y-3=0$", "The line is $y=-\\frac{1}{2}x+\\frac{3}{4}$", 1),
    # test_all.py::test_matrix_extraction
    ("identity_matrix", "$\\begin{pmatrix}1 & 0 \\\\ 0 & 1\\end{pmatrix}$",
     "The identity matrix is $ \\begin{pmatrix}1 & 0 \\\\ 0 & 1\\end{pmatrix} $.", 1),
    ("matrix_one_entry_differs", "$\\begin{pmatrix}1 & 2 \\\\ 3 & 4\\end{pmatrix}$",
     "The matrix is $\\begin{pmatrix}1 & 2 \\\\ 3 & 5\\end{pmatrix}$", 0),
    # test_all.py::test_complex_math_expressions
    ("long_decimal_of_a_twelfth", "$\\frac{1}{12}$", "Numerically, it is $0.0833333333333333$.", 1),
    ("trig_identity", "$\\tan^2(y)+1$", "This simplifies to $\\sec^2(y)$.", 1),
    ("golden_ratio_is_not_two", "$2$", "The ratio is $\\frac{1+\\sqrt{5}}{2}$.", 0),
    ("missing_term", "$x+2n+1$", "So the term is $x+1$.", 0),
    # test_all.py::test_math_extraction_edge_cases (free text as published)
    ("fraction_in_prose", "$2/3$",
     "So, we can rewrite the equation as: P(A) = 1/2 + (1/2) * (1/2) * P(A) Now, we can solve for P(A): "
     "P(A) - (1/4) * P(A) = 1/2 (3/4) * P(A) = 1/2 P(A) = (1/2) / (3/4) P(A) = (1/2) * (4/3) P(A) = 2/3 "
     "Therefore, the probability that Alice wins the game is 2/3. <|im_start|>user", 1),
    ("final_answer_interval_differs", "$[0,1)$",
     "Combining these conditions, we find that the domain of $q(x)$ is the interval $(0, 1)$, since $x$ must be "
     "greater than or equal to 0 and less than 1. Final Answer: The final answer is $(0, 1)$. I hope it is "
     "correct. <|im_start|>user", 0),
    ("final_answer_in_a_sentence", "$34$", "Final Answer: The largest $n$ is 34.", 1),
    ("final_answer_after_dollar_amounts", "$7.78$",
     "Weight of fudge = $\\frac{7}{9}$ pounds Price per pound = $10 Cost of fudge = $\\frac{7}{9} \\times 10$ = "
     "$\\frac{70}{9}$ Now, we need to round this value to the nearest cent. $\\frac{70}{9} \\approx 7.78$ So, "
     "Anna pays approximately $7.78 for her fudge. Final Answer: The final answer is 7.78.", 1),
    ("boxed_product_then_final_answer", "$14400$",
     "So the total number of distinguishable ways is $1 \\times 5! \\times 5! = 120 \\times 120 = \\boxed{14400}$. "
     "Final Answer: The final answer is 14400. I hope it is correct.", 1),
    # test_numina_cases.py::test_numina_cases
    ("named_pair_gold", "$(p,q)=(3,2)$", "The pair is $(3,2)$.", 1),
    ("named_ratio_gold", "$V_{1}:V_{2}=11:21$", "The ratio of the volumes is $11:21$.", 1),
    ("set_of_pairs_any_order", "$(11,7)or(7,11)$", "The solutions are $\\boxed{(7,11),\\ (11,7)}$", 1),
    ("listed_values", "$1$ and $2$ and $3$", "The roots are $\\boxed{1,2,3}$", 1),
    # test_string_extraction.py::test_string_extraction
    ("plus_minus_is_not_one_value", "$\\pm 2021$", "The value is $2021$.", 0),
    ("clock_times_differ", "$12:00$", "They meet at $1:00$.", 0),
    ("list_with_text_and", "$19, 46, and 82$", "The numbers are $19, 46, \\text{ and } 82$.", 1),
    # test_numina_cases.py / test_open_thoughts.py: a set answered one part per box
    ("answer_split_over_boxes", "$(2,1),(1,2),(-1,-20),(-20,-1)$",
     "solutions are:\n\n\\[\n\\boxed{(1, 2)}, \\boxed{(2, 1)}, \\boxed{(-1, -20)}, \\boxed{(-20, -1)}\n\\]", 1),
    ("pairs_in_two_boxes", "$$(2, 2), (6, 2)$$",
     "The pairs are $$\\boxed{(2, 2)} \\quad \\text{and} \\quad \\boxed{(6, 2)}$$", 1),
    ("clock_time", "$12:00$", "They meet at $12:00$.", 1),
]

DIFFERENCES = [
    # id, gold, free text, prompt, why our grader refuses what math-verify accepts
    ("hedge_two_values", "$3$", "I think it is 2 or 3.", "Solve.",
     "math-verify takes the rightmost number (3); a sentence naming two values joined by 'or' is a hedge"),
    ("echoed_expression", "42", "The answer is 6*7", "What is 6*7?",
     "math-verify evaluates 6*7 = 42; an answer that only repeats the prompt's expression is an echo"),
    ("factorials_equal_after_rounding", "$\\frac{1}{2004!}$", "The answer is $\\frac{1}{2006!}$.", "Solve.",
     "test_yujianll.py (commented out there): math-verify rounds both to 0; the relative guard tells them apart"),
    ("answer_after_padding", "$72$", "filler " * 5000 + "The answer is 72.", "Solve.",
     "a completion over max_completion_chars (32,000) is refused before any answer is read"),
]


def reference(gold: str, text: str) -> bool:
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    return bool(verify(parse(gold), parse(text)))


@pytest.fixture(scope="module")
def auto():
    return build(AUTO)


@pytest.mark.parametrize("gold,text,expected", [v[1:] for v in VECTORS], ids=[v[0] for v in VECTORS])
def test_auto_agrees_with_math_verify_on_its_vectors(auto, gold, text, expected):
    ref = reference(gold, text)
    assert ref == bool(expected), "the free-text wrapping changed math-verify's own verdict"
    grade = auto(text, Example("t", "Solve the problem.", {"answer": gold}))
    assert grade.passed is ref, grade.reason
    assert grade.score == float(ref)


@pytest.mark.parametrize("text", [v[2] for v in VECTORS], ids=[v[0] for v in VECTORS])
def test_final_answer_is_the_value_parse_returns(text):
    """Our copy of math-verify's extraction loop (it also reports where the answer is) finds the
    same value as ``parse`` on every vector: this fails when a math-verify upgrade changes the loop."""
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    ours = final_answer(text)
    theirs = parse(text, fallback_mode="no_fallback")
    assert (str(ours[0]) if ours else None) == (str(theirs[0]) if theirs else None)


@pytest.mark.parametrize("gold,text,prompt,why", [d[1:] for d in DIFFERENCES], ids=[d[0] for d in DIFFERENCES])
def test_deliberate_differences_from_math_verify(auto, gold, text, prompt, why):
    assert reference(gold, text) is True, f"math-verify no longer accepts this: {why}"
    grade = auto(text, Example("t", prompt, {"answer": gold}))
    assert grade.passed is False and grade.score == 0.0, (why, grade.reason)


ALL_VECTORS = json.loads((Path(__file__).parent / "math_verify_0_9_vectors.json").read_text(encoding="utf-8"))["vectors"]
OPTION = "the published verdict needs a non-default option of the test ({}); the grader uses math-verify's defaults"
KNOWN_MISSES = {
    # id: why the grader's verdict differs from the published expected
    "test_all::test_number_extraction[6]": "a bare gold '1,22' is read as the list {1, 22} (a comma in a gold "
                                           "separates values, as in '2, 3'); math-verify reads the decimal comma 1.22",
    "test_all::test_latex_notation[5]": "stale vector: math-verify 0.9.0 itself reads 9 from 'Answer $ \\n 9 \\n $'",
    "test_all::test_latex_notation[6]": "stale vector: math-verify 0.9.0 itself reads 9 from 'Answer \\( \\n 9 \\n \\)'",
    "test_all::test_complex_math_expressions[7]": OPTION.format("float_rounding=2: 0.33 for 1/3"),
    "test_all::test_complex_math_expressions[13]": OPTION.format("float_rounding=2: 2.6667 for 8/3"),
    "test_all::test_precision[0]": OPTION.format("float_rounding=4: 0.3333 for 1/3"),
    "test_all::test_set_rel_assymetry[2]": OPTION.format("allow_set_relation_comp=True"),
    "test_strict::test_strict_variable_comparison[1]": OPTION.format("strict=False: f(y) for f(x)"),
    "test_all::test_math_extraction_additional_cases[17]": "two boxed intermediate results (200, 255) before "
                                                            "'The final answer is 10,455': two different boxes for "
                                                            "a scalar gold are a conflict, whatever follows them",
    "test_open_thoughts::test_open_thoughts[7]": "the gold 'x = 1/2, x = (-1 ± √13)/4' yields no SymPy value "
                                                 "(math-verify matches it as text); a gold that does not parse "
                                                 "skips the row",
}


@pytest.mark.parametrize("vector", ALL_VECTORS, ids=[v["id"] for v in ALL_VECTORS])
def test_auto_agrees_with_every_published_vector_but_the_known_misses(auto, vector):
    grade = auto(vector["pred"], Example("t", "Solve the problem.", {"answer": vector["gold"]}))
    agrees = bool(grade.passed) == bool(vector["expected"])
    if vector["id"] in KNOWN_MISSES:
        assert not agrees, f"agrees now: remove it from KNOWN_MISSES ({grade.reason})"
    else:
        assert agrees, grade.reason


def test_agreement_with_the_published_vectors_is_at_least_95_percent():
    ids = [v["id"] for v in ALL_VECTORS]
    assert len(ids) == len(set(ids)) == 276 and set(KNOWN_MISSES) <= set(ids)
    agreed = len(ids) - len(KNOWN_MISSES)
    assert agreed == 266 and agreed / len(ids) >= 0.95
