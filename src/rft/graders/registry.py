"""Grader registry: an explicit dict from spec ``type`` to a builder. No implicit discovery.

``build(spec_dict)`` validates the dict into its typed spec (``rft.grader_specs.parse_spec``: a bad
field is a :class:`SpecError` naming field, value and fix), then calls the type's builder, which
makes the checks that need IO (a python grader's file, an sql database, the code sandbox).

Each module imports only light dependencies at import time (SymPy and math-verify load inside the
bounded child that uses them), so importing the registry stays cheap.
"""

from __future__ import annotations

from typing import Any, Callable

from rft.grader_specs import GraderSpec, parse_spec
from rft.graders.arithmetic import ArithmeticGrader
from rft.graders.base import Grader
from rft.graders.code import CodeGrader
from rft.graders.format import FormatGrader
from rft.graders.json_schema import JsonSchemaGrader
from rft.graders.logic import LogicGrader
from rft.graders.math import MathGrader
from rft.graders.multi import MultiGrader
from rft.graders.python_grader import PythonGrader
from rft.graders.shaping import OverlongGrader, RepetitionGrader
from rft.graders.sql import SqlGrader
from rft.graders.string import RegexGrader, StringCheckGrader
from rft.graders.text_similarity import TextSimilarityGrader

BUILDERS: dict[str, Callable[[Any], Grader]] = {
    "arithmetic": ArithmeticGrader,
    "math": MathGrader,
    "code": CodeGrader.from_spec,
    "string_check": StringCheckGrader.from_spec,
    "regex": RegexGrader.from_spec,
    "text_similarity": TextSimilarityGrader.from_spec,
    "json_schema": JsonSchemaGrader,
    "sql": SqlGrader.from_spec,
    "logic": LogicGrader,
    "format": FormatGrader,
    "overlong": OverlongGrader,
    "repetition": RepetitionGrader,
    "multi": lambda spec: MultiGrader.from_spec(spec, build_spec),  # sub-specs are built by this registry
    "python": PythonGrader.from_spec,
}


def build(spec: dict[str, Any]) -> Grader:
    """Build a grader from its spec dict, e.g. ``{"type": "math"}``."""
    return build_spec(parse_spec(spec))


def build_spec(spec: GraderSpec) -> Grader:
    """Build a grader from its typed spec."""
    return BUILDERS[spec.type](spec)

