"""OpenAI-style {{ item.x }} / {{ sample.output_text }} templates and strict JSON."""

from __future__ import annotations

import pytest

from rft.config.base import SpecError
from rft.data import Example
from rft.graders.templates import MissingField, Template, strict_json_loads

EX = Example("row-1", "the prompt", {"answer": "Paris", "n": 42, "meta": {"tags": ["a", "b"]}})

CASES = [
    ("completion", "{{ sample.output_text }}", "hi", "hi"),
    ("no_spaces", "{{item.answer}}", "", "Paris"),
    ("number_as_text", "{{ item.n }}", "", "42"),
    ("nested_list_index", "{{ item.meta.tags.1 }}", "", "b"),
    ("object_as_json", "{{ item.meta }}", "", '{"tags":["a","b"]}'),
    ("mixed_text", "A={{ item.answer }}, B={{ sample.output_text }}", "x", "A=Paris, B=x"),
    ("json_output_field", "{{ sample.output_json.k }}", '{"k": [1, 2]}', "[1,2]"),
    ("row_id_and_prompt", "{{ item.id }}|{{ item.prompt }}", "", "row-1|the prompt"),
    ("literal", "plain", "", "plain"),
]


@pytest.mark.parametrize("source,completion,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_render(source, completion, expected):
    assert Template.parse(source, "t", "input").render(completion, EX) == expected


@pytest.mark.parametrize(
    "source,completion",
    [("{{ item.missing }}", ""), ("{{ item.meta.tags.9 }}", ""), ("{{ sample.output_json.k }}", "not json"), ("{{ sample.output_json.k }}", '{"k": NaN}')],
    ids=["missing_field", "index_out_of_range", "completion_not_json", "nan_json"],
)
def test_missing_values_raise_missing_field(source, completion):
    with pytest.raises(MissingField):
        Template.parse(source, "t", "input").render(completion, EX)


@pytest.mark.parametrize(
    "source", ["{{ items.answer }}", "{{ sample.output }}", "{{ item }}", "{{ item.a + 1 }}", "{{ item.a | upper }}"],
    ids=["bad_root", "unknown_sample_key", "bare_item", "expression", "filter"],
)
def test_unsupported_placeholders_are_spec_errors(source):
    with pytest.raises(SpecError, match="input"):
        Template.parse(source, "t", "input")


@pytest.mark.parametrize(
    "text", ['{"a": 1, "a": 2}', '{"a": NaN}', '[Infinity]', '[-Infinity]', '[1e999]'],
    ids=["duplicate_key", "nan", "infinity", "minus_infinity", "overflow"],
)
def test_strict_json_rejects(text):
    with pytest.raises(ValueError):
        strict_json_loads(text)
