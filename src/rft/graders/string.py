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
from functools import lru_cache
from typing import Any

import re2

from rft.data import Example
from rft.graders.base import Grade, SpecError
from rft.graders.specs import OPENAI_PASSIVE_KEYS, SpecReader
from rft.graders.templates import MissingField, Template, render_pair

_FLAGS = {"IGNORECASE": "i", "MULTILINE": "m", "DOTALL": "s"}
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a bad row pattern is reported in its Grade, not on stderr
_RE2_OPTIONS.max_mem = 8 << 20  # bounds the compiled program of a huge pattern


@lru_cache(maxsize=1024)
def compile_re2(pattern: str, flags: str) -> Any:
    """Compile with RE2; raises ``ValueError`` with RE2's message for unsupported syntax."""
    try:
        return re2.compile(f"(?{flags}){pattern}" if flags else pattern, _RE2_OPTIONS)
    except re2.error as e:
        message = e.args[0].decode() if e.args and isinstance(e.args[0], bytes) else str(e)
        raise ValueError(message) from None


@dataclass(frozen=True)
class StringCheckGrader:
    input: Template
    reference: Template
    operation: str = "eq"
    strip: bool = False
    max_chars: int = 10_000

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> "StringCheckGrader":
        r = SpecReader.open(spec, "string_check", ["input", "reference", "operation", "strip", "max_chars", *OPENAI_PASSIVE_KEYS])
        return cls(
            input=Template.parse(r.text("input", "{{ sample.output_text }}"), "string_check", "input"),
            reference=Template.parse(r.text("reference", "{{ item.answer }}"), "string_check", "reference"),
            operation=r.choice("operation", "eq", ["eq", "ne", "like", "ilike"]),
            strip=r.flag("strip", False),
            max_chars=r.integer("max_chars", 10_000, lo=1),
        )

    def __call__(self, completion: str, example: Example) -> Grade:
        rendered = render_pair(self.input, self.reference, completion, example, self.max_chars)
        if isinstance(rendered, Grade):
            return rendered
        text, ref = rendered
        if self.strip:
            text, ref = text.strip(), ref.strip()
        op = self.operation
        ok = {
            "eq": text == ref,
            "ne": text != ref,
            "like": ref in text,
            "ilike": ref.casefold() in text.casefold(),
        }[op]
        return Grade(float(ok), ok, f"{op}({text[:40]!r}, {ref[:40]!r}) is {ok}", {"operation": op})


@dataclass(frozen=True)
class RegexGrader:
    pattern: str | None
    pattern_field: str | None
    input: Template
    mode: str = "fullmatch"
    flags: str = ""
    max_chars: int = 10_000

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> "RegexGrader":
        r = SpecReader.open(spec, "regex", ["pattern", "pattern_field", "mode", "flags", "input", "max_chars", *OPENAI_PASSIVE_KEYS])
        pattern, pattern_field = r.optional_text("pattern"), r.optional_text("pattern_field")
        if (pattern is None) == (pattern_field is None):
            raise SpecError("regex grader: give exactly one of 'pattern' (a regex) or 'pattern_field' (a row field holding one)")
        flags = r.texts("flags", [])
        bad = [f for f in flags if f not in _FLAGS]
        if bad:
            raise r.error("flags", f"unknown flag(s) {bad}", f"use any of {sorted(_FLAGS)}")
        letters = "".join(sorted({_FLAGS[f] for f in flags}))
        if pattern is not None:
            try:
                compile_re2(pattern, letters)
            except ValueError as e:
                raise r.error("pattern", f"RE2 cannot compile it ({e})", "drop backreferences/lookaround; RE2 syntax is linear-time") from None
        return cls(
            pattern=pattern,
            pattern_field=pattern_field,
            input=Template.parse(r.text("input", "{{ sample.output_text }}"), "regex", "input"),
            mode=r.choice("mode", "fullmatch", ["fullmatch", "search"]),
            flags=letters,
            max_chars=r.integer("max_chars", 10_000, lo=1),
        )

    def __call__(self, completion: str, example: Example) -> Grade:
        pattern = self.pattern
        if pattern is None:
            pattern = example.get(self.pattern_field)  # type: ignore[arg-type]
            if not isinstance(pattern, str) or not pattern:
                return Grade(0.0, None, f"example has no string '{self.pattern_field}' field", {"skipped": True})
        try:
            regex = compile_re2(pattern, self.flags)
            text = self.input.render(completion, example)
        except ValueError as e:
            return Grade(0.0, None, f"row pattern does not compile in RE2: {e}", {"skipped": True})
        except MissingField as e:
            return Grade(0.0, None, f"cannot fill template: {e}", {"skipped": True})
        if len(text) > self.max_chars:
            return Grade(0.0, False, f"input longer than {self.max_chars} characters", {"length": len(text)})
        match = regex.fullmatch(text) if self.mode == "fullmatch" else regex.search(text)
        ok = match is not None
        return Grade(float(ok), ok, f"{self.mode} {'matched' if ok else 'did not match'} {text[:40]!r}", {"mode": self.mode})
