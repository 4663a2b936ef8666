"""Grader registry: an explicit dict from spec ``type`` to a builder. No implicit discovery.

``build(spec_dict)`` validates the dict into its typed spec (``rft.config.graders.parse_spec``: a bad
field is a :class:`SpecError` naming field, value and fix), then calls the type's builder, which
makes the checks that need IO (a python grader's file, an sql database, the code sandbox).
:func:`check_specs` builds a default spec and every distinct spec the rows carry, once each, so a
bad one is named (with its row) before any work starts.

Each module imports only light dependencies at import time (SymPy and math-verify load inside the
bounded child that uses them), so importing the registry stays cheap.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Iterable

from rft.config.base import SpecError
from rft.config.graders import GraderSpec, parse_spec
from rft.data import Example
from rft.graders.arithmetic import ArithmeticGrader
from rft.graders.base import Grader
from rft.graders.code import CodeGrader
from rft.graders.format import FormatGrader
from rft.graders.json_schema import JsonSchemaGrader
from rft.graders.judge import JudgeGrader
from rft.graders.logic import LogicGrader
from rft.graders.math import MathGrader
from rft.graders.multi import MultiGrader
from rft.graders.python_grader import PythonGrader
from rft.graders.reasoning_gym import ReasoningGymGrader
from rft.graders.shaping import OverlongGrader, RepetitionGrader
from rft.graders.sql import SqlGrader
from rft.graders.string import RegexGrader, StringCheckGrader
from rft.graders.text_similarity import TextSimilarityGrader
from rft.graders.verifiers_grader import VerifiersGrader

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
    "verifiers": VerifiersGrader.from_spec,  # imports verifiers only when such a spec is built
    "reasoning_gym": ReasoningGymGrader.from_spec,  # imports reasoning_gym only where it scores
    "score_model": JudgeGrader.from_spec,  # a judge over HTTP; the pool starts a local judge's server
    "label_model": JudgeGrader.from_spec,
}


def build(spec: dict[str, Any]) -> Grader:
    """Build a grader from its spec dict, e.g. ``{"type": "math"}``."""
    return build_spec(parse_spec(spec))


def build_spec(spec: GraderSpec) -> Grader:
    """Build a grader from its typed spec."""
    return BUILDERS[spec.type](spec)


def check_specs(default: dict[str, Any] | None, examples: Iterable[Example], flag: str = "--grader") -> None:
    """Build ``default`` (when given) and each distinct spec of ``examples`` once. A bad one raises
    :class:`SpecError` naming where it is: ``"<flag>: ..."`` for the default, ``"<file>:<line>: field
    'grader': ..."`` for a row's own."""
    if default is not None:
        try:
            build(default)
        except SpecError as e:
            raise SpecError(f"{flag}: {e}") from None
    seen: set[str] = set()
    for example in examples:
        key = json.dumps(example.grader, sort_keys=True, default=str)
        if example.grader is None or key in seen:
            continue
        seen.add(key)
        try:
            build(example.grader)
        except SpecError as e:
            raise SpecError(f"{example.where or example.id}: field 'grader': {e}") from None
