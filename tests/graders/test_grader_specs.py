"""Spec checking shared by every grader type (rft.config.graders): unknown keys, wrong types, messages
that name field, value and fix, and OpenAI's JSON as-is."""

from __future__ import annotations

from typing import get_args

import pytest

from rft.config.base import SpecError
from rft.config.graders import SPECS, CodeSpec, TextSimilaritySpec, parse_spec
from rft.data import Example
from rft.graders import build
from rft.graders.registry import BUILDERS
from rft.graders.text_similarity import METRICS
from rft.isolation.sandbox import MODES

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


# -- one declaration per field (rft.config.graders) ----------------------------------------------


def test_the_registry_builds_exactly_the_types_the_spec_union_declares():
    assert set(BUILDERS) == set(SPECS)


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_every_spec_field_says_what_it_does(kind):
    model = SPECS[kind]
    assert model.__doc__ and [n for n, info in model.model_fields.items() if n != "type" and not info.description] == []


@pytest.mark.parametrize("kind", OWN_TYPES)
def test_a_built_grader_holds_its_validated_spec_with_the_declared_defaults(kind):
    spec = {"type": kind, **MINIMAL[kind]}
    grader = build(spec)
    assert grader.spec == parse_spec(spec)
    assert grader.spec.model_dump(by_alias=True, exclude_unset=True) == spec  # nothing added but defaults


def test_literals_agree_with_what_the_graders_implement():
    assert get_args(CodeSpec.model_fields["isolation"].annotation) == ("auto", *MODES)
    assert set(get_args(TextSimilaritySpec.model_fields["evaluation_metric"].annotation)) == set(METRICS)


@pytest.mark.parametrize(
    "spec,message",
    [
        ({"type": "mathh"}, "unknown grader type 'mathh'; choose one of ['arithmetic', "),
        ({"type": "overlong", "max_length": 10}, "overlong grader: missing field 'cache_length'; add it: L_cache"),
        ({"type": "arithmetic", "max_chars": "3"}, "arithmetic grader: field 'max_chars' = '3': expected an integer"),
        ({"type": "code", "memory_mb": 8}, "code grader: field 'memory_mb' = 8: out of range (>= 32); pick a value >= 32"),
        ({"type": "code", "tiemout_s": 1, "mode": "repl"}, "code grader: unknown field(s) ['tiemout_s']; allowed fields"),
        ({"type": "json_schema", "schema": {"type": "bogus"}}, "json_schema grader: field 'schema' = {'type': 'bogus'}: "
         "not a valid Draft 2020-12 schema"),
        ({"type": "multi", "graders": {"a": {"type": "multi", "graders": {"b": {"type": "math", "extract": "x"}},
                                             "weights": {"b": 1}}}, "weights": {"a": 1}},
         "multi grader: sub-grader 'a': multi grader: sub-grader 'b': math grader: field 'extract' = 'x'"),
        ({"type": "multi", "graders": {"a": {"type": "format"}}, "weights": {"a": "high"}},
         "multi grader: field 'weights.a' = 'high': expected a finite number"),
    ],
    ids=["unknown_type_lists_choices", "missing_required", "string_for_int", "out_of_range_names_range",
         "typo_reported_before_other_problems", "schema_checked_at_load", "nested_sub_grader", "bad_weight"],
)
def test_each_kind_of_problem_reads_as_field_value_and_fix(spec, message):
    with pytest.raises(SpecError) as e:
        parse_spec(spec)
    assert str(e.value).startswith(message)
    assert "validation error" not in str(e.value) and "pydantic" not in str(e.value)  # no raw pydantic dump


def test_checks_that_need_io_wait_until_the_grader_is_built(tmp_path):
    spec = {"type": "python", "file": str(tmp_path / "later.py")}  # the file is read when built, not when parsed
    assert parse_spec(spec).file == spec["file"]
    with pytest.raises(SpecError, match="field 'file'.*no such file"):
        build(spec)


def test_check_specs_builds_each_distinct_spec_once_and_names_the_bad_row(monkeypatch):
    import rft.graders.registry as registry

    bad = {"type": "regex", "flags": ["X"], "pattern": "a"}
    rows = [Example("a", "p", {}, {"type": "format"}, where="d.jsonl:1"), Example("b", "p", {}, bad, where="d.jsonl:2"),
            Example("c", "p", {}, {"type": "format"}, where="d.jsonl:3")]
    built = []
    monkeypatch.setattr(registry, "build_spec", lambda spec: built.append(spec.type))
    registry.check_specs({"type": "math"}, rows[:1] + rows[2:])
    assert built == ["math", "format"]
    with pytest.raises(SpecError, match=r"^d\.jsonl:2: field 'grader': regex grader: field 'flags\.0' = 'X'"):
        registry.check_specs(None, rows)
    with pytest.raises(SpecError, match=r"^--grader: unknown grader type 'nope'"):
        registry.check_specs({"type": "nope"}, rows)


def test_importing_the_config_loads_no_grader_or_model_dependency():
    import subprocess
    import sys

    heavy = ["sympy", "math_verify", "torch", "re2", "jsonschema", "rapidfuzz", "rft.graders"]
    code = f"import sys, rft.config; print([m for m in {heavy!r} if m in sys.modules])"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"
