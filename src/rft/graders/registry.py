"""Grader registry: an explicit dict from spec ``type`` to a builder. No implicit discovery."""

from __future__ import annotations

from typing import Any, Callable

from rft.graders.arithmetic import ArithmeticGrader
from rft.graders.base import Grader, SpecError

BUILDERS: dict[str, Callable[[dict[str, Any]], Grader]] = {
    "arithmetic": ArithmeticGrader.from_spec,
}


def build(spec: dict[str, Any]) -> Grader:
    """Build a grader from its spec dict, e.g. ``{"type": "arithmetic"}``."""
    if not isinstance(spec, dict) or "type" not in spec:
        raise SpecError(f"a grader spec must be an object with a 'type' field, got {spec!r}")
    kind = spec["type"]
    if kind not in BUILDERS:
        raise SpecError(f"unknown grader type {kind!r}; choose one of {sorted(BUILDERS)}")
    return BUILDERS[kind](spec)
