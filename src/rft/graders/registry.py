"""Grader registry: an explicit dict from spec ``type`` to a builder. No implicit discovery.

Each module imports only light dependencies at import time (SymPy and math-verify load inside the
bounded child that uses them), so importing the registry stays cheap.
"""

from __future__ import annotations

from typing import Any, Callable

from rft.graders.arithmetic import ArithmeticGrader
from rft.graders.base import Grader, SpecError
from rft.graders.code import CodeGrader
from rft.graders.format import FormatGrader
from rft.graders.json_schema import JsonSchemaGrader
from rft.graders.logic import LogicGrader
from rft.graders.math import MathGrader
from rft.graders.multi import MultiGrader
from rft.graders.python_grader import PythonGrader
from rft.graders.reasoning_gym import ReasoningGymGrader
from rft.graders.shaping import OverlongGrader, RepetitionGrader
from rft.graders.sql import SqlGrader
from rft.graders.string import RegexGrader, StringCheckGrader
from rft.graders.text_similarity import TextSimilarityGrader

BUILDERS: dict[str, Callable[[dict[str, Any]], Grader]] = {
    "arithmetic": ArithmeticGrader.from_spec,
    "math": MathGrader.from_spec,
    "code": CodeGrader.from_spec,
    "string_check": StringCheckGrader.from_spec,
    "regex": RegexGrader.from_spec,
    "text_similarity": TextSimilarityGrader.from_spec,
    "json_schema": JsonSchemaGrader.from_spec,
    "sql": SqlGrader.from_spec,
    "logic": LogicGrader.from_spec,
    "format": FormatGrader.from_spec,
    "overlong": OverlongGrader.from_spec,
    "repetition": RepetitionGrader.from_spec,
    "multi": lambda spec: MultiGrader.from_spec(spec, build),  # sub-specs are built by this registry
    "python": PythonGrader.from_spec,
    "reasoning_gym": ReasoningGymGrader.from_spec,  # imports reasoning_gym only where it scores
}


def build(spec: dict[str, Any]) -> Grader:
    """Build a grader from its spec dict, e.g. ``{"type": "math"}``."""
    if not isinstance(spec, dict) or "type" not in spec:
        raise SpecError(f"a grader spec must be an object with a 'type' field, got {spec!r}")
    kind = spec["type"]
    if kind not in BUILDERS:
        raise SpecError(f"unknown grader type {kind!r}; choose one of {sorted(BUILDERS)}")
    return BUILDERS[kind](spec)
