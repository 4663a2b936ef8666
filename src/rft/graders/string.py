"""String graders: OpenAI's ``string_check`` and our ``regex``.

``string_check`` (OpenAI RFT shape, accepted as-is)::

    {"type": "string_check", "input": "{{ sample.output_text }}",
     "reference": "{{ item.answer }}", "operation": "eq" | "ne" | "like" | "ilike"}

Formula: score = 1 if the operation holds else 0, with ``eq``: input == reference, ``ne``:
input != reference, ``like``: reference is a substring of input, ``ilike``: the same, ignoring
case. ``input`` defaults to the completion and ``reference`` to ``{{ item.answer }}``. Comparison
is exact, as OpenAI's (no trimming) unless ``strip: true``. Beware: ``like``/``ilike`` ("contains")
reward padding and hedging ("41 or 42 or 43" contains "42"), and ``ne`` rewards any junk; prefer
``eq``. Inputs longer than ``max_chars`` (default 10,000) score 0.

``regex`` (ours)::

    {"type": "regex", "pattern": "\\d+", "mode": "fullmatch" | "search",
     "flags": ["IGNORECASE", "MULTILINE", "DOTALL"], "input": "{{ sample.output_text }}"}

Formula: score = 1 if the pattern matches the input (the whole input for ``fullmatch``). The
pattern comes from the spec, or from the row with ``pattern_field``. Matching uses RE2
(google-re2): linear time in the input, so a "catastrophic" pattern such as ``(a+)+$`` cannot stall
a worker. Not covered: what RE2 does not support -- backreferences and lookaround are rejected
(a spec error for a spec pattern, a skipped row for a row pattern).
"""

from __future__ import annotations

from dataclasses import dataclass

from rft.config.grader_syntax import compile_re2
from rft.config.graders import RegexSpec, StringCheckSpec
from rft.data import Example
from rft.graders.base import Grade
from rft.graders.templates import MissingField, Template, render_pair


@dataclass(frozen=True)
class StringCheckGrader:
    spec: StringCheckSpec
    input: Template
    reference: Template

    @classmethod
    def from_spec(cls, spec: StringCheckSpec) -> "StringCheckGrader":
        return cls(spec, Template.parse(spec.input, spec.type, "input"),
                   Template.parse(spec.reference, spec.type, "reference"))

    def __call__(self, completion: str, example: Example) -> Grade:
        rendered = render_pair(self.input, self.reference, completion, example, self.spec.max_chars)
        if isinstance(rendered, Grade):
            return rendered
        text, ref = rendered
        if self.spec.strip:
            text, ref = text.strip(), ref.strip()
        op = self.spec.operation
        ok = {
            "eq": text == ref,
            "ne": text != ref,
            "like": ref in text,
            "ilike": ref.casefold() in text.casefold(),
        }[op]
        return Grade(float(ok), ok, f"{op}({text[:40]!r}, {ref[:40]!r}) is {ok}", {"operation": op})


@dataclass(frozen=True)
class RegexGrader:
    spec: RegexSpec
    input: Template

    @classmethod
    def from_spec(cls, spec: RegexSpec) -> "RegexGrader":
        return cls(spec, Template.parse(spec.input, spec.type, "input"))

    def __call__(self, completion: str, example: Example) -> Grade:
        pattern = self.spec.pattern
        if pattern is None:
            pattern = example.get(self.spec.pattern_field)  # type: ignore[arg-type]
            if not isinstance(pattern, str) or not pattern:
                return Grade(0.0, None, f"example has no string '{self.spec.pattern_field}' field", {"skipped": True})
        try:
            regex = compile_re2(pattern, self.spec.flag_letters)
            text = self.input.render(completion, example)
        except ValueError as e:
            return Grade(0.0, None, f"row pattern does not compile in RE2: {e}", {"skipped": True})
        except MissingField as e:
            return Grade(0.0, None, f"cannot fill template: {e}", {"skipped": True})
        if len(text) > self.spec.max_chars:
            return Grade(0.0, False, f"input longer than {self.spec.max_chars} characters", {"length": len(text)})
        mode = self.spec.mode
        ok = (regex.fullmatch(text) if mode == "fullmatch" else regex.search(text)) is not None
        return Grade(float(ok), ok, f"{mode} {'matched' if ok else 'did not match'} {text[:40]!r}", {"mode": mode})
