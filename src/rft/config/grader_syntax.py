"""The small languages inside grader specs, parsed and checked in one place: ``calculate_output``
formulas, ``{{ }}`` template placeholders and RE2 patterns. The spec validators
(:mod:`rft.config.graders`) check a spec with them when it loads; the graders use the same code when
they grade, so what loads is what runs.

- ``calculate_output`` (the ``multi`` grader; OpenAI's formula): an expression over sub-grader names
  using ``+ - * /``, ``^`` (power, as in OpenAI's; ``**`` too), numbers, parentheses and ``min max
  abs floor ceil exp sqrt log``. Parsed with ``ast`` and checked once (:meth:`Formula.parse`), then
  evaluated by walking the tree in floats -- never ``eval``. A math error while evaluating
  (division by zero, log of 0, overflow) raises ``ArithmeticError`` or ``ValueError``; the grader
  turns it into score 0 with the reason.
- templates (:func:`template_paths`): ``{{ sample.output_text }}``, ``{{ sample.output_json[.key..] }}``
  and ``{{ item.<field>[.key..] }}``; ``rft.graders.templates`` fills them.
- RE2 (:func:`compile_re2`): linear-time regexes (google-re2), so a pattern cannot stall a worker.

Not covered: conditional expressions, comparisons or variables other than sub-grader names in a
formula; Jinja filters or expressions in a template; backreferences and lookaround (RE2 lacks them).
"""

from __future__ import annotations

import ast
import math
import operator
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

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
        """Parse and check ``source``; ``ValueError`` shaped "field 'calculate_output' = ...: problem; fix"."""
        def bad(problem: str) -> ValueError:
            return ValueError(
                f"field 'calculate_output' = {source!r}: {problem}; use sub-grader names "
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


PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*")


def template_paths(source: str) -> tuple[str, ...]:
    """The ``{{ path }}`` placeholders of an OpenAI template; ``ValueError`` for one rft cannot fill."""
    paths = []
    for match in PLACEHOLDER.finditer(source):
        path = match.group(1)
        if not (_PATH.fullmatch(path) and (path in ("sample.output_text", "sample.output_json")
                                           or path.startswith("sample.output_json.")
                                           or (path.split(".", 1)[0] == "item" and "." in path))):
            raise ValueError(f"unsupported placeholder {{{{ {path} }}}}; "
                             "use {{ sample.output_text }}, {{ sample.output_json.<key> }} or {{ item.<field> }}")
        paths.append(path)
    return tuple(paths)


@lru_cache(maxsize=1024)
def compile_re2(pattern: str, flags: str) -> Any:
    """Compile with RE2 (flags as letters, e.g. "im"); ``ValueError`` with RE2's message for syntax it lacks."""
    import re2

    options = re2.Options()
    options.log_errors = False  # a bad row pattern is reported in its Grade, not on stderr
    options.max_mem = 8 << 20  # bounds the compiled program of a huge pattern
    try:
        return re2.compile(f"(?{flags}){pattern}" if flags else pattern, options)
    except re2.error as e:
        message = e.args[0].decode() if e.args and isinstance(e.args[0], bytes) else str(e)
        raise ValueError(message) from None
