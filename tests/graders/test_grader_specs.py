"""Spec checking shared by every grader type: unknown keys, wrong types, and OpenAI's JSON as-is."""

from __future__ import annotations

import pytest

from rft.graders import SpecError, build
from rft.graders.registry import BUILDERS

MINIMAL = {
    "arithmetic": {},
    "math": {},
    "string_check": {},
    "regex": {"pattern": "a"},
    "text_similarity": {},
    "json_schema": {},
    "sql": {},
    "logic": {},
    "format": {},
    "overlong": {"max_length": 10, "cache_length": 5},
    "repetition": {},
    "multi": {"graders": {"f": {"type": "format"}}, "weights": {"f": 1.0}},
    "python": {"source": "def grade(sample, item):\n    return 1.0\n"},
}
OWN_TYPES = sorted(MINIMAL)


def test_every_registered_type_of_this_library_has_a_minimal_spec():
    assert set(MINIMAL) <= set(BUILDERS)


@pytest.mark.parametrize("kind", OWN_TYPES)
def test_minimal_spec_builds(kind):
    assert callable(build({"type": kind, **MINIMAL[kind]}))


@pytest.mark.parametrize("kind", OWN_TYPES)
def test_unknown_key_is_named(kind):
    with pytest.raises(SpecError, match="'tiemout_s'"):
        build({"type": kind, **MINIMAL[kind], "tiemout_s": 1})


@pytest.mark.parametrize(
    "spec",
    [
        {"type": "string_check", "name": "exact", "input": "{{ sample.output_text }}", "reference": "{{ item.reference_answer }}", "operation": "eq"},
        {"type": "text_similarity", "name": "sim", "input": "{{ sample.output_text }}", "reference": "{{ item.reference_answer }}", "evaluation_metric": "bleu", "pass_threshold": 0.5},
        {"type": "python", "name": "py", "image_tag": "2025-05-08", "source": "def grade(sample, item) -> float:\n    return 1.0\n"},
        {
            "type": "multi",
            "name": "combo",
            "graders": {"a": {"type": "string_check", "name": "a", "input": "{{ sample.output_text }}", "reference": "x", "operation": "eq"}},
            "calculate_output": "0.5 * a + 0.5",
        },
    ],
    ids=["string_check", "text_similarity", "python", "multi"],
)
def test_openai_grader_json_is_accepted_as_is(spec):
    assert callable(build(spec))


@pytest.mark.parametrize(
    "spec,fragment",
    [
        ({"type": "math", "max_answer_chars": "10"}, "field 'max_answer_chars' = '10'"),
        ({"type": "sql", "ignore_column_order": "yes"}, "field 'ignore_column_order' = 'yes'"),
        ({"type": "logic", "timeout_s": True}, "field 'timeout_s' = True"),
        ({"type": "json_schema", "reference_field": ""}, "field 'reference_field' = ''"),
        ({"type": "text_similarity", "evaluation_metric": "gleu"}, "choose one of"),
        ("math", "must be an object"),
        ({"kind": "math"}, "'type'"),
    ],
    ids=["string_for_int", "string_for_bool", "bool_for_number", "empty_field_name", "fix_offered", "not_a_dict", "no_type"],
)
def test_bad_values_name_field_value_and_fix(spec, fragment):
    with pytest.raises(SpecError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        build(spec)  # type: ignore[arg-type]
