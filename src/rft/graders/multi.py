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
OpenAI's; ``**`` too), numbers, parentheses and ``min max abs floor ceil exp sqrt log``. It is
parsed with ``ast`` and evaluated by walking the tree in floats -- never ``eval``. A math error
(division by zero, log of 0, overflow) gives score 0 with the reason.

passed = score >= ``pass_threshold`` when set; otherwise all sub-graders that have a notion of
pass passed (None if none has). ``details["components"]`` holds each sub-grader's score, which the
pool logs as ``grader/multi/<name>``. Sub-grader exceptions are contained per sub-grader
(``safe_grade``): one broken term scores 0, the others still count.

Not covered: conditional expressions, comparisons, variables other than sub-grader names.
"""

from __future__ import annotations

import ast
import math
import operator
from dataclasses import dataclass
from typing import Any, Callable

from rft.data import Example
from rft.graders.base import Grade, Grader, SpecError, safe_grade
from rft.graders.specs import OPENAI_PASSIVE_KEYS, SpecReader

_BINARY: dict[type, Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: math.pow,
}
_UNARY: dict[type, Callable[[float], float]] = {ast.USub: operator.neg, ast.UAdd: operator.pos}
FUNCTIONS: dict[str, Callable[..., float]] = {
    "min": min, "max": max, "abs": abs, "floor": math.floor, "ceil": math.ceil,
    "exp": math.exp, "sqrt": math.sqrt, "log": math.log,
}
_ARITY = {"min": (1, 99), "max": (1, 99), "log": (1, 2), "abs": (1, 1), "floor": (1, 1), "ceil": (1, 1), "exp": (1, 1), "sqrt": (1, 1)}


@dataclass(frozen=True)
class Formula:
    """A checked ``calculate_output`` expression; ``evaluate(values)`` returns a float."""

    source: str
    tree: ast.Expression

    @classmethod
    def parse(cls, source: str, names: set[str]) -> "Formula":
        def bad(problem: str) -> SpecError:
            return SpecError(
                f"multi grader: field 'calculate_output' = {source!r}: {problem}; use sub-grader names "
                f"{sorted(names)}, numbers, + - * / ^ and {sorted(FUNCTIONS)}"
            )

        try:
            # OpenAI writes powers as ^; as ** they get a power's precedence and right-associativity.
            tree = ast.parse(source.strip().replace("^", "**"), mode="eval")
        except SyntaxError as e:
            raise bad(f"syntax error ({e.msg})") from None

        def check(node: ast.AST) -> None:
            if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
                check(node.left)
                check(node.right)
            elif isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
                check(node.operand)
            elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
                return
            elif isinstance(node, ast.Name) and node.id in names:
                return
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS:
                lo, hi = _ARITY[node.func.id]
                if node.keywords or not lo <= len(node.args) <= hi:
                    raise bad(f"{node.func.id}() takes {lo}{'+' if hi > lo + 1 else ''} positional argument(s)")
                for arg in node.args:
                    check(arg)
            else:
                what = node.id if isinstance(node, ast.Name) else type(node).__name__
                raise bad(f"{what!r} is not allowed")

        check(tree.body)
        return cls(source, tree)

    def evaluate(self, values: dict[str, float]) -> float:
        def ev(node: ast.AST) -> float:
            if isinstance(node, ast.Expression):
                return ev(node.body)
            if isinstance(node, ast.Constant):
                return float(node.value)
            if isinstance(node, ast.Name):
                return float(values[node.id])
            if isinstance(node, ast.BinOp):
                return _BINARY[type(node.op)](ev(node.left), ev(node.right))
            if isinstance(node, ast.UnaryOp):
                return _UNARY[type(node.op)](ev(node.operand))
            if isinstance(node, ast.Call):
                return float(FUNCTIONS[node.func.id](*[ev(a) for a in node.args]))  # type: ignore[attr-defined]
            raise ValueError(f"unexpected {type(node).__name__}")  # excluded by parse()

        return ev(self.tree)


@dataclass(frozen=True)
class MultiGrader:
    graders: dict[str, Grader]
    weights: dict[str, float] | None
    formula: Formula | None
    pass_threshold: float | None = None

    @classmethod
    def from_spec(cls, spec: dict[str, Any], build: Callable[[dict[str, Any]], Grader]) -> "MultiGrader":
        r = SpecReader.open(spec, "multi", ["graders", "weights", "calculate_output", "pass_threshold", *OPENAI_PASSIVE_KEYS])
        subs = r.mapping("graders", required=True) or {}
        if not subs:
            raise r.error("graders", "empty", "name at least one sub-grader, e.g. {\"correct\": {\"type\": \"math\"}}")
        for name in subs:
            if not name.isidentifier() or name in FUNCTIONS:
                raise r.error("graders", f"name {name!r} is not usable in a formula", "use names like 'correct' or 'format_ok'")
        graders = {}
        for name, sub in subs.items():
            try:
                graders[name] = build(sub)
            except SpecError as e:
                raise SpecError(f"multi grader: sub-grader '{name}': {e}") from None
        has_weights, has_formula = r.has("weights"), r.has("calculate_output")
        if has_weights == has_formula:
            raise SpecError("multi grader: give exactly one of 'weights' (name -> number) or 'calculate_output' (a formula)")
        weights = formula = None
        if has_weights:
            raw = r.mapping("weights") or {}
            if set(raw) != set(subs) or not all(isinstance(w, (int, float)) and not isinstance(w, bool) and math.isfinite(w) for w in raw.values()):
                raise r.error("weights", "must give one finite number for each sub-grader", f"give weights for exactly {sorted(subs)}")
            weights = {k: float(v) for k, v in raw.items()}
        else:
            formula = Formula.parse(r.text("calculate_output"), set(subs))
        return cls(graders, weights, formula, r.number("pass_threshold", None))

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
        if any(g.errored for g in grades.values()):
            details["component_errors"] = sorted(n for n, g in grades.items() if g.errored)
        if self.weights is not None:
            score = sum(self.weights[n] * v for n, v in values.items())
        else:
            try:
                score = self.formula.evaluate(values)  # type: ignore[union-attr]
            except (ArithmeticError, ValueError) as e:
                return Grade(0.0, False, f"calculate_output failed: {type(e).__name__}: {e}", {**details, "error": "FormulaError"})
        if not math.isfinite(score):
            return Grade(0.0, False, f"calculate_output gave {score}", {**details, "error": "FormulaError"})
        if self.pass_threshold is not None:
            passed: bool | None = score >= self.pass_threshold
        else:
            verdicts = [g.passed for g in grades.values() if g.passed is not None]
            passed = all(verdicts) if verdicts else None
        summary = ", ".join(f"{n}={v:.3g}" for n, v in values.items())
        return Grade(score, passed, f"{score:.3f} from {summary}", details)
