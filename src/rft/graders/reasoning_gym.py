"""The ``reasoning_gym`` grader: one answer taken from the completion, scored by the reasoning-gym
dataset's own ``score_answer(answer, entry)`` (``pip install 'rft[reasoning-gym]'``).

Extraction (``details["extracted_from"]``): the text inside the ``<answer>...</answer>`` tag when
the completion has exactly one; with ``extract: tag_or_last_line`` (default) and no tag, the last
non-empty line; with ``extract: tag`` no tag scores 0. Several tags score 0 (one answer per
completion: a wrong and a right tag must not pay). Surrounding whitespace is stripped. An empty
answer, or one over ``max_answer_chars``, scores 0 without reaching the scorer.

Score: reasoning-gym's scorers pay for answers that are not the answer. The base class pays
``len(gold) / len(answer)`` when the gold is a substring (a chatty sentence, a spray of candidates),
countdown pays 0.01 for garbage and 0.05 for a wrong expression, others pay 0.1 for a near form
(docs/integrations/reasoning_gym.md lists what ``bench/reasoning_gym_survey.py`` measured). So by
default (``partial_credit: false``) the reward is 1 when the scorer gives full marks and 0
otherwise; ``partial_credit: true`` passes the scorer's score through (``passed`` is still full
marks). The scorer's own score is always ``details["rg_score"]``.

Safety: nine scorers of reasoning-gym 0.1.25 evaluate the answer as Python -- ``eval`` (binary_matrix,
n_queens, spiral_matrix, string_insertion) or SymPy's ``parse_expr``, which calls ``eval``
(countdown, puzzle24, polynomial_multiplication, simple_integration, intermediate_integration) --
so an answer ``open('/x', 'w')`` would run. For those datasets (:data:`EXECUTES_ANSWER`) an answer
reaches the scorer only when it is the gold answer itself or passes a screen: a Python literal for
the ``eval`` ones, an arithmetic expression of numbers, names and the math functions in
:data:`MATH_FUNCTIONS` for the SymPy ones; anything else scores 0. The scorer runs in the bounded
child (:mod:`rft.isolation.bounded`: a wall-clock bound and a memory limit), so a SymPy blow-up costs
one timeout. The dataset object is rebuilt there once per (name, config) to get its scorer.

Fields: ``rg_dataset`` (the dataset's name), ``rg_config`` (its config), ``rg_entry`` (the entry:
question, answer, metadata), as the ``reasoning_gym`` task writes them; a composite entry is screened
by its ``metadata.source_dataset``. Not covered: scorers of other reasoning-gym versions (the extra
pins 0.1.25: the screen's list was measured on it), scorers that need more than the entry.
"""

from __future__ import annotations

import ast
import functools
import json
import re
from dataclasses import dataclass
from typing import Any

from rft.config.graders import ReasoningGymSpec
from rft.data import Example
from rft.graders.base import Grade
from rft.isolation.bounded import BoundExceeded, RemoteError, call_bounded

_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
EXTRACT_MODES = ("tag_or_last_line", "tag")
FULL_SCORE = 1.0 - 1e-9
EXECUTES_ANSWER = {  # dataset -> the screen its answers pass before its scorer sees them
    **dict.fromkeys(("binary_matrix", "n_queens", "spiral_matrix", "string_insertion"), "literal"),
    **dict.fromkeys(("countdown", "puzzle24", "polynomial_multiplication", "simple_integration",
                     "intermediate_integration"), "math"),
}
MATH_FUNCTIONS = frozenset(("sin cos tan cot sec csc asin acos atan acot sinh cosh tanh asinh acosh atanh "
                            "exp log ln sqrt Abs abs").split())
_MATH_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Load, ast.Add, ast.Sub, ast.Mult, ast.Div,
               ast.FloorDiv, ast.Mod, ast.Pow, ast.USub, ast.UAdd)


def extract_answer(completion: str, mode: str = "tag_or_last_line") -> tuple[str | None, str, str]:
    """(answer or None, where it came from, why there is none)."""
    tags = _TAG.findall(completion)
    if len(tags) > 1:
        return None, "answer_tag", f"{len(tags)} <answer> tags; one answer per completion"
    if tags:
        answer = tags[0].strip()
        return (answer or None), "answer_tag", "" if answer else "empty <answer> tag"
    if mode == "tag":
        return None, "none", "no <answer> tag"
    lines = [line.strip() for line in completion.splitlines() if line.strip()]
    return (lines[-1] if lines else None), "last_line", "" if lines else "empty completion"


def _math_node_ok(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return type(node.value) in (int, float, complex)
    if isinstance(node, ast.Name):
        return not node.id.startswith("_")
    if isinstance(node, ast.Call):
        return (isinstance(node.func, ast.Name) and node.func.id in MATH_FUNCTIONS and not node.keywords
                and all(not isinstance(a, ast.Starred) for a in node.args))
    return isinstance(node, _MATH_NODES)


def screen(answer: str, kind: str) -> str | None:
    """Why ``answer`` must not reach a scorer that evaluates it (``kind``: literal or math), else None."""
    try:
        tree = ast.parse(answer, mode="eval")
        if kind == "literal":
            ast.literal_eval(tree)
            return None
    except Exception:  # noqa: BLE001 - SyntaxError, ValueError, RecursionError, MemoryError: not a literal
        return f"not a Python {'literal' if kind == 'literal' else 'expression'} (this dataset's scorer evaluates it)"
    bad = next((n for n in ast.walk(tree) if not _math_node_ok(n)), None)
    if bad is not None:
        return f"{type(bad).__name__} is not arithmetic (this dataset's scorer evaluates the answer)"
    return None


@functools.lru_cache(maxsize=32)
def _dataset(name: str, config_json: str) -> Any:
    import reasoning_gym  # lazy: importing it takes ~1 s, paid once per bounded child

    return reasoning_gym.create_dataset(name, **{**json.loads(config_json), "size": 1, "seed": 0})


def score_in_child(name: str, config_json: str, answer: str, entry: dict[str, Any]) -> float:
    """The dataset's own score of ``answer`` (runs in the bounded child)."""
    return float(_dataset(name, config_json).score_answer(answer, entry))


@dataclass(frozen=True)
class ReasoningGymGrader:
    partial_credit: bool = False
    extract: str = "tag_or_last_line"
    max_answer_chars: int = 10_000
    timeout_s: float = 10.0  # the pool reads it as this grader's own bound
    memory_mb: int = 2048

    @classmethod
    def from_spec(cls, spec: ReasoningGymSpec) -> "ReasoningGymGrader":
        return cls(spec.partial_credit, spec.extract, spec.max_answer_chars, spec.timeout_s, spec.memory_mb)

    def __call__(self, completion: str, example: Example) -> Grade:
        name, config, entry = example.get("rg_dataset"), example.get("rg_config") or {}, example.get("rg_entry")
        if not isinstance(name, str) or not isinstance(entry, dict) or not isinstance(config, dict):
            return Grade(0.0, None, "example lacks rg_dataset / rg_entry (rows of the reasoning_gym task have them)",
                         {"skipped": True})
        answer, where, problem = extract_answer(completion, self.extract)
        details: dict[str, Any] = {"extracted": None if answer is None else answer[:200], "extracted_from": where}
        if answer is None:
            return Grade(0.0, False, problem, details)
        if len(answer) > self.max_answer_chars:
            return Grade(0.0, False, f"answer of {len(answer)} characters > max_answer_chars", details)
        source = (entry.get("metadata") or {}).get("source_dataset", name)
        kind = EXECUTES_ANSWER.get(source)
        refused = screen(answer, kind) if kind and answer != str(entry.get("answer")) else None
        if refused:
            return Grade(0.0, False, f"answer refused: {refused}", details)
        try:
            raw = call_bounded(score_in_child, (name, json.dumps(config, sort_keys=True), answer, entry),
                               self.timeout_s, self.memory_mb)
        except BoundExceeded as e:
            return Grade(0.0, False, f"scorer stopped: {e}", {**details, "error": "Timeout" if e.timeout else
                                                                   "BoundExceeded", "timeout": e.timeout})
        except RemoteError as e:
            return Grade(0.0, False, f"scorer failed: {e}"[:300], {**details, "error": e.type_name})
        full = raw >= FULL_SCORE
        score = raw if self.partial_credit else float(full)
        reason = f"{name} scored {raw:.3g} for {answer[:60]!r} ({where.replace('_', ' ')})"
        return Grade(score, full, reason, {**details, "rg_score": raw})
