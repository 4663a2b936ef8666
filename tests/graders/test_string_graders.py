"""string_check (OpenAI shape) and regex (RE2) graders."""

from __future__ import annotations

import time

import pytest

from rft.config.base import SpecError
from rft.data import Example
from rft.graders import build


def ex(**fields) -> Example:
    return Example("t", "Name the capital of France.", fields)


STRING_CHECK = [
    # id, spec, completion, fields, expected score
    ("eq_exact", {"operation": "eq"}, "Paris", {"answer": "Paris"}, 1.0),
    ("openai_shape_as_is", {"name": "cap", "input": "{{ sample.output_text }}", "reference": "{{ item.reference_answer }}", "operation": "eq"}, "Paris", {"reference_answer": "Paris"}, 1.0),
    ("like_contains", {"operation": "like"}, "It is Paris.", {"answer": "Paris"}, 1.0),
    ("ilike_ignores_case", {"operation": "ilike"}, "it is PARIS", {"answer": "Paris"}, 1.0),
    ("ne_different", {"operation": "ne"}, "Lyon", {"answer": "Paris"}, 1.0),
    ("strip_option", {"operation": "eq", "strip": True}, "  Paris\n", {"answer": "Paris"}, 1.0),
    ("reference_from_json_output", {"input": "{{ sample.output_json.city }}", "operation": "eq"}, '{"city": "Paris"}', {"answer": "Paris"}, 1.0),
    ("numeric_reference_as_text", {"operation": "eq"}, "42", {"answer": 42}, 1.0),
    # adversarial negatives
    ("eq_rejects_padding", {"operation": "eq"}, "Paris Paris Paris", {"answer": "Paris"}, 0.0),
    ("eq_rejects_hedge", {"operation": "eq"}, "Paris or Lyon", {"answer": "Paris"}, 0.0),
    ("eq_is_case_sensitive", {"operation": "eq"}, "paris", {"answer": "Paris"}, 0.0),
    ("eq_no_strip_by_default", {"operation": "eq"}, "Paris ", {"answer": "Paris"}, 0.0),
    ("like_is_case_sensitive", {"operation": "like"}, "PARIS", {"answer": "Paris"}, 0.0),
    ("input_cap_stops_giant_padding", {"operation": "like", "max_chars": 100}, "x" * 200 + "Paris", {"answer": "Paris"}, 0.0),
    ("ne_same_fails", {"operation": "ne"}, "Paris", {"answer": "Paris"}, 0.0),
    ("echo_of_question_fails", {"operation": "eq"}, "Name the capital of France.", {"answer": "Paris"}, 0.0),
    ("json_output_with_duplicate_keys_is_missing", {"input": "{{ sample.output_json.city }}", "operation": "eq"}, '{"city": "Paris", "city": "Lyon"}', {"answer": "Paris"}, 0.0),
]


@pytest.mark.parametrize("spec,completion,fields,score", [c[1:] for c in STRING_CHECK], ids=[c[0] for c in STRING_CHECK])
def test_string_check(spec, completion, fields, score):
    grade = build({"type": "string_check", **spec})(completion, ex(**fields))
    assert grade.score == score, grade.reason


def test_string_check_missing_row_field_is_skipped():
    grade = build({"type": "string_check"})("Paris", ex())
    assert grade.passed is None and grade.details["skipped"]


REGEX = [
    # id, spec, completion, fields, expected score
    ("fullmatch_digits", {"pattern": r"\d+"}, "12345", {}, 1.0),
    ("search_mode", {"pattern": r"answer: \d+", "mode": "search"}, "so the answer: 12 ok", {}, 1.0),
    ("ignorecase_flag", {"pattern": "paris", "flags": ["IGNORECASE"]}, "PARIS", {}, 1.0),
    ("dotall_flag", {"pattern": "a.b", "flags": ["DOTALL"]}, "a\nb", {}, 1.0),
    ("multiline_flag", {"pattern": "^b$", "mode": "search", "flags": ["MULTILINE"]}, "a\nb\nc", {}, 1.0),
    ("pattern_from_row", {"pattern_field": "pattern"}, "2024-01-05", {"pattern": r"\d{4}-\d{2}-\d{2}"}, 1.0),
    ("input_template", {"pattern": "ok", "input": "{{ sample.output_json.status }}"}, '{"status": "ok"}', {}, 1.0),
    # adversarial negatives
    ("fullmatch_rejects_padding", {"pattern": r"\d+"}, "12345 and more", {}, 0.0),
    ("fullmatch_rejects_prefix_junk", {"pattern": r"\d+"}, "junk 12345", {}, 0.0),
    ("case_sensitive_without_flag", {"pattern": "paris"}, "PARIS", {}, 0.0),
    ("dot_stops_at_newline_without_dotall", {"pattern": "a.b"}, "a\nb", {}, 0.0),
    ("redos_nested_quantifier_is_fast", {"pattern": r"(a+)+$"}, "a" * 5000 + "!", {}, 0.0),
    ("redos_alternation_is_fast", {"pattern": r"(a|aa)+$"}, "a" * 5000 + "b", {}, 0.0),
    ("redos_email_like_is_fast", {"pattern": r"^([a-zA-Z0-9])(([\-.]|[_]+)?([a-zA-Z0-9]+))*(@){1}[a-z0-9]+[.]{1}(([a-z]{2,3})|([a-z]{2,3}[.]{1}[a-z]{2,3}))$"}, "a" * 3000 + "!", {}, 0.0),
    ("input_over_cap", {"pattern": r"a*", "max_chars": 100}, "a" * 101, {}, 0.0),
    ("empty_completion", {"pattern": r"\d+"}, "", {}, 0.0),
]


@pytest.mark.parametrize("spec,completion,fields,score", [c[1:] for c in REGEX], ids=[c[0] for c in REGEX])
def test_regex(spec, completion, fields, score):
    t0 = time.monotonic()
    grade = build({"type": "regex", **spec})(completion, ex(**fields))
    assert grade.score == score, grade.reason
    assert time.monotonic() - t0 < 0.5  # linear time: no catastrophic backtracking


def test_row_pattern_with_backreference_is_skipped_not_crashing():
    grade = build({"type": "regex", "pattern_field": "pattern"})("aa", ex(pattern=r"(a)\1"))
    assert grade.passed is None and "RE2" in grade.reason


@pytest.mark.parametrize(
    "spec,field",
    [
        ({"type": "regex", "pattern": r"(a)\1"}, "pattern"),
        ({"type": "regex", "pattern": "a", "flags": ["VERBOSE"]}, "flags"),
        ({"type": "regex", "pattern": "a", "mode": "match"}, "mode"),
        ({"type": "regex"}, "pattern"),
        ({"type": "string_check", "operation": "contains"}, "operation"),
        ({"type": "string_check", "reference": "{{ items.answer }}"}, "reference"),
    ],
    ids=["backreference", "unknown_flag", "unknown_mode", "no_pattern", "unknown_operation", "bad_template_root"],
)
def test_bad_spec_names_the_field(spec, field):
    with pytest.raises(SpecError, match=field):
        build(spec)
