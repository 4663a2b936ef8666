"""json_schema grader: strict single JSON value, Draft 2020-12 gate, typed leaf F1."""

from __future__ import annotations

import json

import pytest

from rft.config.base import SpecError
from rft.data import Example
from rft.graders import build
from rft.graders.json_schema import max_assignment

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer"},
        "active": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["name", "age"],
    "additionalProperties": False,
}
REF = {"name": "Ada", "age": 36, "active": True, "tags": ["math", "code"]}


def ex(reference=REF) -> Example:
    return Example("t", "Extract the record.", {"schema": SCHEMA, "reference": reference})


def js(value) -> str:
    return json.dumps(value)


CASES = [
    # id, spec overrides, completion, expected score (approx), expected passed
    ("exact_match", {}, js(REF), 1.0, True),
    ("fenced_block", {}, "```json\n" + js(REF) + "\n```", 1.0, True),
    ("key_order_irrelevant", {}, js(dict(reversed(list(REF.items())))), 1.0, True),
    ("one_wrong_leaf_partial_f1", {}, js({**REF, "age": 37}), 0.8, False),
    ("missing_optional_field_partial", {}, js({"name": "Ada", "age": 36, "tags": ["math", "code"]}), 2 * (4 / 4) * (4 / 5) / (1 + 4 / 5), False),
    ("unordered_arrays_when_configured", {"unordered_arrays": True}, js({**REF, "tags": ["code", "math"]}), 1.0, True),
    ("prose_allowed_when_configured", {"allow_prose": True}, "Here it is:\n```json\n" + js(REF) + "\n```\nDone.", 1.0, True),
    ("exact_mode_all_right", {"score": "exact"}, js(REF), 1.0, True),
    # adversarial negatives
    ("array_order_matters_by_default", {}, js({**REF, "tags": ["code", "math"]}), 0.6, False),
    ("duplicate_keys_rejected", {}, '{"name": "Bob", "name": "Ada", "age": 36, "active": true, "tags": ["math", "code"]}', 0.0, False),
    ("nan_rejected", {}, '{"name": "Ada", "age": NaN}', 0.0, False),
    ("infinity_rejected", {}, '{"name": "Ada", "age": Infinity}', 0.0, False),
    ("overflowing_number_rejected", {}, '{"name": "Ada", "age": 1e999}', 0.0, False),
    ("true_is_not_one", {"schema_field": "loose"}, js({**REF, "active": 1}), 0.8, False),
    ("schema_violation_extra_key", {}, js({**REF, "extra": 1}), 0.0, False),
    ("schema_violation_wrong_type", {}, js({**REF, "age": "36"}), 0.0, False),
    ("trailing_prose_rejected", {}, js(REF) + "\nHope this helps!", 0.0, False),
    ("prose_around_fence_rejected_by_default", {}, "Sure:\n```json\n" + js(REF) + "\n```", 0.0, False),
    ("two_json_blocks_rejected", {}, "```json\n" + js(REF) + "\n```\n```json\n" + js(REF) + "\n```", 0.0, False),
    ("deep_nesting_rejected", {}, "[" * 100 + "]" * 100, 0.0, False),
    ("exact_mode_one_wrong_leaf", {"score": "exact"}, js({**REF, "age": 37}), 0.0, False),
    ("padding_array_lowers_precision", {"unordered_arrays": True}, js({**REF, "tags": ["math", "code"] + ["x"] * 10}), 2 * (5 / 15) * 1 / (5 / 15 + 1), False),
]


@pytest.mark.parametrize("overrides,completion,score,passed", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_json_schema(overrides, completion, score, passed):
    spec = {"type": "json_schema", **overrides}
    example = ex()
    if overrides.get("schema_field") == "loose":  # a schema that lets booleans through as integers
        example = Example("t", "p", {"loose": {"type": "object"}, "reference": REF})
    grade = build(spec)(completion, example)
    assert grade.score == pytest.approx(score), grade.reason
    assert grade.passed is passed


def test_no_reference_means_schema_gate_only():
    grade = build({"type": "json_schema", "schema": SCHEMA})(js({"name": "A", "age": 1}), Example("t", "p", {}))
    assert grade.score == 1.0


def test_invalid_row_schema_skips_the_row():
    grade = build({"type": "json_schema"})(js(REF), Example("t", "p", {"schema": {"type": "nope"}, "reference": REF}))
    assert grade.passed is None


def test_unordered_matching_is_optimal_not_greedy():
    # greedy would pair row 0 with column 0 (weight 3) and be left with 0; optimal is 2 + 2.
    assert max_assignment([[3, 2], [2, 0]]) == 4
    assert max_assignment([[1, 0, 0], [0, 0, 1]]) == 2


@pytest.mark.parametrize(
    "spec,field",
    [
        ({"type": "json_schema", "schema": {"type": "bogus"}}, "schema"),
        ({"type": "json_schema", "score": "f2"}, "score"),
        ({"type": "json_schema", "unordered_arrays": "yes"}, "unordered_arrays"),
    ],
    ids=["invalid_inline_schema", "unknown_score", "non_boolean_flag"],
)
def test_bad_spec_names_the_field(spec, field):
    with pytest.raises(SpecError, match=field):
        build(spec)
