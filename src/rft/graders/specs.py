"""Reading grader spec dicts: every bad value raises :class:`SpecError` naming field, value and fix.

Graders call these helpers from their ``from_spec``; none of them knows about a particular grader.
``SpecReader`` checks unknown keys once (a typo must fail loudly, not be ignored) and reads each
field with its type. Not covered: cross-field rules (a grader checks those itself, with the same
message shape ``"<type> grader: field 'x' = <value>: <problem>; <fix>"``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from rft.graders.base import SpecError

# Keys OpenAI's RFT grader JSON carries that change nothing here; accepted so such JSON loads as-is.
OPENAI_PASSIVE_KEYS = frozenset({"name", "image_tag"})


@dataclass(frozen=True)
class SpecReader:
    """Typed access to one grader spec; ``kind`` is the grader type used in error messages."""

    spec: dict[str, Any]
    kind: str

    @classmethod
    def open(cls, spec: Any, kind: str, allowed: Sequence[str]) -> "SpecReader":
        """Check that ``spec`` is a dict whose keys are all in ``allowed`` (plus ``type``)."""
        if not isinstance(spec, dict):
            raise SpecError(f"{kind} grader: the spec must be an object, got {type(spec).__name__}")
        known = set(allowed) | {"type"}
        unknown = sorted(set(spec) - known)
        if unknown:
            raise SpecError(
                f"{kind} grader: unknown field(s) {unknown}; allowed fields are {sorted(known)} "
                "(check the spelling)"
            )
        return cls(spec, kind)

    def error(self, key: str, problem: str, fix: str) -> SpecError:
        return SpecError(f"{self.kind} grader: field '{key}' = {self.spec.get(key)!r}: {problem}; {fix}")

    def has(self, key: str) -> bool:
        return key in self.spec

    def text(self, key: str, default: str | None = None, *, required: bool = False) -> str:
        if key not in self.spec:
            if required:
                raise SpecError(f"{self.kind} grader: missing field '{key}'; add '{key}' (a string)")
            return default  # type: ignore[return-value]
        value = self.spec[key]
        if not isinstance(value, str) or not value:
            raise self.error(key, "expected a non-empty string", f"write '{key}' as a string")
        return value

    def optional_text(self, key: str) -> str | None:
        return self.text(key) if key in self.spec and self.spec[key] is not None else None

    def choice(self, key: str, default: str, choices: Sequence[str]) -> str:
        value = self.spec.get(key, default)
        if value not in choices:
            raise self.error(key, "not a supported value", f"choose one of {list(choices)}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.spec.get(key, default)
        if not isinstance(value, bool):
            raise self.error(key, "expected true or false", f"write '{key}: true' or '{key}: false'")
        return value

    def number(
        self, key: str, default: float | None, *, lo: float | None = None, hi: float | None = None
    ) -> float | None:
        """A finite real number in [lo, hi] (bounds inclusive); ``None`` only when the default is."""
        if key not in self.spec or self.spec[key] is None:
            return default
        value = self.spec[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.error(key, "expected a finite number", f"write '{key}' as a number")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise self.error(key, f"out of range [{lo}, {hi}]", f"pick a value in [{lo}, {hi}]")
        return float(value)

    def integer(self, key: str, default: int, *, lo: int = 1, hi: int | None = None) -> int:
        value = self.spec.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, "expected an integer", f"write '{key}' as a whole number")
        if value < lo or (hi is not None and value > hi):
            raise self.error(key, f"out of range [{lo}, {hi}]", f"pick a whole number in [{lo}, {hi}]")
        return value

    def texts(self, key: str, default: Sequence[str]) -> tuple[str, ...]:
        value = self.spec.get(key, list(default))
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.error(key, "expected a list of non-empty strings", f"write '{key}' as e.g. [\"a\", \"b\"]")
        return tuple(value)

    def mapping(self, key: str, *, required: bool = False) -> dict[str, Any] | None:
        if key not in self.spec:
            if required:
                raise SpecError(f"{self.kind} grader: missing field '{key}'; add '{key}' (an object)")
            return None
        value = self.spec[key]
        if not isinstance(value, dict):
            raise self.error(key, "expected an object", f"write '{key}' as a mapping")
        return value
