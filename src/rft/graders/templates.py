"""OpenAI RFT grader templates: ``{{ item.x }}`` and ``{{ sample.output_text }}``.

A template is a string with zero or more ``{{ path }}`` placeholders. Paths:

- ``sample.output_text``: the completion;
- ``sample.output_json`` or ``sample.output_json.a.b``: the completion parsed as JSON (strict: no
  NaN, no duplicate keys), then looked up by keys / list indices;
- ``item.id``, ``item.prompt``, ``item.<field>[.<key>...]``: the dataset row.

A template that is exactly one placeholder renders to that value's text; strings stay as they are,
anything else is written as compact JSON (``42``, ``true``, ``["a","b"]``). Paths are checked when
the spec loads (:func:`rft.config.grader_syntax.template_paths`), so a typo such as ``{{ items.x }}`` is a
:class:`SpecError`; a row missing the
field raises :class:`MissingField` at grade time (graders turn it into a skipped Grade).

Not covered: Jinja filters, expressions, loops -- only plain dotted lookups.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rft.config.base import SpecError
from rft.config.grader_syntax import PLACEHOLDER, template_paths
from rft.data import Example
from rft.graders.base import Grade


class MissingField(LookupError):
    """The example (or the parsed completion) has no value at a template path."""


def strict_json_loads(text: str) -> Any:
    """``json.loads`` that rejects duplicate keys and NaN / Infinity (including ``1e999``)."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise ValueError(f"duplicate key {key!r}")
            out[key] = value
        return out

    def bad_constant(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    def finite_float(text_value: str) -> float:
        value = float(text_value)
        if value in (float("inf"), float("-inf")):
            raise ValueError(f"number {text_value[:20]} overflows to infinity")
        return value

    return json.loads(text, object_pairs_hook=pairs, parse_constant=bad_constant, parse_float=finite_float)


def value_text(value: Any) -> str:
    """A template value as text: strings unchanged, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _lookup(value: Any, keys: list[str], path: str) -> Any:
    for key in keys:
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            raise MissingField(f"no value at '{path}'")
    return value


@dataclass(frozen=True)
class Template:
    """A parsed template; ``render(completion, example)`` fills its placeholders."""

    source: str
    paths: tuple[str, ...]

    @classmethod
    def parse(cls, source: str, kind: str, field: str) -> "Template":
        try:
            return cls(source, template_paths(source))
        except ValueError as e:
            raise SpecError(f"{kind} grader: field '{field}' = {source!r}: {e}") from None

    @property
    def reads_item(self) -> bool:
        return any(p.startswith("item.") for p in self.paths)

    def value(self, path: str, completion: str, example: Example) -> Any:
        keys = path.split(".")
        if path == "sample.output_text":
            return completion
        if keys[0] == "sample":
            try:
                parsed = strict_json_loads(completion)
            except (ValueError, RecursionError) as e:
                raise MissingField(f"the completion is not valid JSON ({e}) for '{path}'") from e
            return _lookup(parsed, keys[2:], path)
        row = {"id": example.id, "prompt": example.prompt, **example.fields}
        return _lookup(row, keys[1:], path)

    def render(self, completion: str, example: Example) -> str:
        whole = PLACEHOLDER.fullmatch(self.source.strip())
        if whole:
            return value_text(self.value(whole.group(1), completion, example))
        return PLACEHOLDER.sub(lambda m: value_text(self.value(m.group(1), completion, example)), self.source)


def render_pair(
    input: Template, reference: Template, completion: str, example: Example, max_chars: int
) -> tuple[str, str] | Grade:
    """(input text, reference text) rendered for one completion, or the Grade that ends grading:
    skipped (passed None) when the row lacks a field the templates name, 0 when the input is over
    ``max_chars``. Shared by the graders that compare an input template with a reference one."""
    try:
        text, ref = input.render(completion, example), reference.render(completion, example)
    except MissingField as e:
        return Grade(0.0, None, f"cannot fill template: {e}", {"skipped": True})
    if len(text) > max_chars:
        return Grade(0.0, False, f"input longer than {max_chars} characters", {"length": len(text)})
    return text, ref
