"""format grader: strict <think>..</think><answer>..</answer> grammar."""

from __future__ import annotations

import pytest

from rft.config.base import SpecError
from rft.data import Example
from rft.graders import build

EX = Example("t", "What is 2+2?", {"answer": "4"})

CASES = [
    # id, spec overrides, completion, expected score
    ("well_formed", {}, "<think>2+2 is 4</think><answer>4</answer>", 1.0),
    ("whitespace_between_and_around", {}, "\n<think>\nadd\n</think>\n\n<answer> 4 </answer>\n", 1.0),
    ("min_think_met", {"min_think_chars": 5}, "<think>two plus two</think><answer>4</answer>", 1.0),
    ("think_opened_by_prompt", {"think_in_prompt": True}, "adding</think><answer>4</answer>", 1.0),
    ("custom_tags", {"think_tag": "reasoning", "answer_tag": "final"}, "<reasoning>r</reasoning><final>4</final>", 1.0),
    ("multiline_answer", {}, "<think>t</think><answer>line 1\nline 2</answer>", 1.0),
    ("min_think_zero_allows_empty_think", {"min_think_chars": 0}, "<think></think><answer>4</answer>", 1.0),
    # adversarial negatives
    ("empty_tags_format_spam", {}, "<think></think><answer></answer>", 0.0),
    ("empty_answer", {}, "<think>t</think><answer>  </answer>", 0.0),
    ("short_think", {"min_think_chars": 20}, "<think>hm</think><answer>4</answer>", 0.0),
    ("text_after_answer", {}, "<think>t</think><answer>4</answer> also 5", 0.0),
    ("text_before_think", {}, "Sure! <think>t</think><answer>4</answer>", 0.0),
    ("text_between_blocks", {}, "<think>t</think> so <answer>4</answer>", 0.0),
    ("wrong_order", {}, "<answer>4</answer><think>t</think>", 0.0),
    ("two_answers_hedge", {}, "<think>t</think><answer>4</answer><answer>5</answer>", 0.0),
    ("nested_think", {}, "<think><think>t</think></think><answer>4</answer>", 0.0),
    ("missing_think", {}, "<answer>4</answer>", 0.0),
    ("unclosed_answer", {}, "<think>t</think><answer>4", 0.0),
    ("tags_spammed_inside_answer", {}, "<think>t</think><answer><think></think>4</answer>", 0.0),
    ("opening_think_when_prompt_opened_it", {"think_in_prompt": True}, "<think>t</think><answer>4</answer>", 0.0),
]


@pytest.mark.parametrize("overrides,completion,score", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_format(overrides, completion, score):
    grade = build({"type": "format", **overrides})(completion, EX)
    assert grade.score == score, grade.reason
    assert grade.passed is (score == 1.0)


@pytest.mark.parametrize(
    "spec,field",
    [({"type": "format", "think_tag": "<think>"}, "think_tag"), ({"type": "format", "answer_tag": "think"}, "answer_tag"), ({"type": "format", "min_think_chars": -1}, "min_think_chars")],
    ids=["tag_with_brackets", "same_tags", "negative_min"],
)
def test_bad_spec_names_the_field(spec, field):
    with pytest.raises(SpecError, match=field):
        build(spec)
