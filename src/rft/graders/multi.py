"""The ``multi`` grader: named sub-graders combined by weights or by an OpenAI-style formula.

Spec (ours, weights)::

    {"type": "multi", "graders": {"correct": {"type": "math"}, "format": {"type": "format"},
                                  "long": {"type": "overlong", "max_length": 2000, "cache_length": 500}},
     "weights": {"correct": 1.0, "format": 0.1, "long": 1.0}, "pass_threshold": null}

Spec (OpenAI, accepted as-is): the same ``graders`` with ``"calculate_output": "0.9 * correct +
0.1 * format"``.

Formula: with weights, score = sum_i w_i * s_i (a plain weighted sum: not normalised, so shaping
penalties stay penalties; choose weights that sum to 1 for a [0, 1] score). With
``calculate_output``, the expression over sub-grader names using ``+ - * /``, ``^`` (power, as in
OpenAI's; ``**`` too), numbers, parentheses and ``min max abs floor ceil exp sqrt log``
(:mod:`rft.config.grader_syntax`: parsed with ``ast``, evaluated in floats -- never ``eval``). A math error
(division by zero, log of 0, overflow) gives score 0 with the reason.

passed = score >= ``pass_threshold`` when set; otherwise all sub-graders that have a notion of
pass passed (None if none has). ``details["components"]`` holds each sub-grader's score, which the
pool logs as ``grader/multi/<name>``. Sub-grader exceptions are contained per sub-grader
(``safe_grade``): one broken term scores 0, the others still count.

Not covered: conditional expressions, comparisons, variables other than sub-grader names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from rft.config.base import SpecError
from rft.config.grader_syntax import Formula
from rft.config.graders import MultiSpec
from rft.data import Example
from rft.graders.base import Grade, Grader, safe_grade


@dataclass(frozen=True)
class MultiGrader:
    spec: MultiSpec
    graders: dict[str, Grader]
    formula: Formula | None

    @classmethod
    def from_spec(cls, spec: MultiSpec, build: Callable[[Any], Grader]) -> "MultiGrader":
        graders = {}
        for name, sub in spec.graders.items():
            try:
                graders[name] = build(sub)
            except SpecError as e:  # a check that needs IO, e.g. a python sub-grader's file
                raise SpecError(f"multi grader: sub-grader '{name}': {e}") from None
        formula = None if spec.calculate_output is None else Formula.parse(spec.calculate_output, set(graders))
        return cls(spec, graders, formula)

    @property
    def timeout_s(self) -> float | None:
        """Sum of the sub-graders' own bounds (None when none declares one)."""
        bounds = [g.timeout_s for g in self.graders.values() if getattr(g, "timeout_s", None)]  # type: ignore[attr-defined]
        return float(sum(bounds)) if bounds else None

    def __call__(self, completion: str, example: Example) -> Grade:
        grades = {name: safe_grade(g, completion, example) for name, g in self.graders.items()}
        values = {name: g.score for name, g in grades.items()}
        details: dict[str, Any] = {
            "components": values,
            "reasons": {name: g.reason for name, g in grades.items()},
        }
        judged = [g.details["judge"] for g in grades.values() if isinstance(g.details.get("judge"), dict)]
        if judged:  # a model grader's cost, summed, so the pool's statistics count it (rft.graders.judge)
            details["judge"] = {k: sum(float(j.get(k, 0.0)) for j in judged) for k in judged[0]}
        if any(g.errored for g in grades.values()):
            details["component_errors"] = sorted(n for n, g in grades.items() if g.errored)
        weights = self.spec.weights
        if weights is not None:
            score = sum(weights[n] * v for n, v in values.items())
        else:
            try:
                score = self.formula.evaluate(values)  # type: ignore[union-attr]
            except (ArithmeticError, ValueError) as e:
                return Grade(0.0, False, f"calculate_output failed: {type(e).__name__}: {e}", {**details, "error": "FormulaError"})
        if not math.isfinite(score):
            return Grade(0.0, False, f"calculate_output gave {score}", {**details, "error": "FormulaError"})
        if self.spec.pass_threshold is not None:
            passed: bool | None = score >= self.spec.pass_threshold
        else:
            verdicts = [g.passed for g in grades.values() if g.passed is not None]
            passed = all(verdicts) if verdicts else None
        summary = ", ".join(f"{n}={v:.3g}" for n, v in values.items())
        return Grade(score, passed, f"{score:.3f} from {summary}", details)
