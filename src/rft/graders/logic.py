"""The ``logic`` grader: propositional entailment (checked by a solver) and knights-and-knaves.

Spec (defaults shown)::

    {"type": "logic", "mode": "entailment" | "knights_knaves", "extract": "tag" | "all",
     "tag": "answer", "premises_field": "premises", "conclusion_field": "conclusion",
     "answer_field": "answer", "roles": ["knight", "knave"], "timeout_s": 5.0}

The answer is the text of exactly one ``<tag>..</tag>`` (``extract: tag``) or the whole completion;
answers over 2,000 characters score 0.

``entailment``: the row gives ``premises`` (a list of formulas) and a ``conclusion``; the truth is
computed, not trusted: C follows from P1..Pn iff P1 & .. & Pn & ~C is unsatisfiable (SymPy's DPLL
``satisfiable``, run in a bounded child process). If the row also has ``answer`` and it disagrees
with the solver, the row is skipped (a data bug). The answer must be exactly one verdict word --
yes / true / entailed / follows / valid, or no / false / not entailed / does not follow / invalid;
"yes or no" and anything else scores 0. Formula syntax: names, ``~ ! ¬ not``, ``& ∧ and``,
``| ∨ or``, ``-> => → implies`` (right-associative), ``<-> <=> ↔ iff``, ``true``, ``false``, parentheses.

``knights_knaves``: the row's ``answer`` maps each person to a role (``{"A": "knight", ...}``). The
answer text must assign every person exactly once ("A is a knight, B and C are knaves", "A: knave")
with no hedge ("or", "either", "maybe", ...), no negation ("not a knight") and no role word left
over ("A is a knight or a knave" fails twice over). score = 1 if all roles are right, else 0.

Not covered: first-order logic, puzzles with more than two roles unless listed in ``roles``,
alternative solutions of an ambiguous puzzle (the row's ``answer`` is the only truth).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from rft.config.graders import LogicSpec
from rft.data import Example
from rft.graders.base import Grade
from rft.isolation.bounded import BoundExceeded, RemoteError, call_bounded

_TOKEN = re.compile(r"\s*(<->|<=>|->|=>|[()~!&|¬∧∨→↔]|[A-Za-z_][A-Za-z0-9_]*)")
_WORD_OPS = {"not": "~", "and": "&", "or": "|", "implies": "->", "iff": "<->"}
_SYMBOL_OPS = {"!": "~", "¬": "~", "∧": "&", "∨": "|", "=>": "->", "→": "->", "<=>": "<->", "↔": "<->"}
YES = {"yes", "true", "entailed", "follows", "valid", "it follows"}
NO = {"no", "false", "not entailed", "does not follow", "doesn't follow", "invalid", "it does not follow"}
_HEDGE = re.compile(r"\bor\b|\beither\b|\bmaybe\b|\bpossibly\b|\bperhaps\b|\bmight\b|\bcould\b|\bunknown\b|\bunclear\b|/", re.I)
_NEGATION = re.compile(r"\bnot\b|n't\b|\bnever\b", re.I)
MAX_FORMULA_CHARS = 5000
MAX_ANSWER_CHARS = 2000


class FormulaError(ValueError):
    """A formula does not parse."""


def tokenize(text: str) -> list[str]:
    if len(text) > MAX_FORMULA_CHARS:
        raise FormulaError(f"formula longer than {MAX_FORMULA_CHARS} characters")
    out, pos, text = [], 0, text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise FormulaError(f"unexpected character {text[pos:].strip()[:10]!r}")
        tok = match.group(1)
        out.append(_WORD_OPS.get(tok.lower(), _SYMBOL_OPS.get(tok, tok)))
        pos = match.end()
    return out


def parse_formula(text: str) -> Any:
    """Parse a propositional formula into a SymPy boolean expression (recursive descent)."""
    from sympy import (  # the parent never imports SymPy for this grader
        Symbol,
        false,
        true,
    )
    from sympy.logic.boolalg import And, Equivalent, Implies, Not, Or

    tokens, pos = tokenize(text), 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take(expected: str | None = None) -> str:
        nonlocal pos
        tok = peek()
        if tok is None or (expected is not None and tok != expected):
            raise FormulaError(f"expected {expected or 'more input'} at token {pos + 1} of {text[:60]!r}")
        pos += 1
        return tok

    def binary(sub: Any, op: str, make: Any) -> Any:
        left = sub()
        while peek() == op:
            take()
            left = make(left, sub())
        return left

    def unary() -> Any:
        tok = take()
        if tok == "~":
            return Not(unary())
        if tok == "(":
            inner = equiv()
            take(")")
            return inner
        if tok.lower() in ("true", "false"):
            return true if tok.lower() == "true" else false
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", tok):
            raise FormulaError(f"unexpected {tok!r} in {text[:60]!r}")
        return Symbol(tok)

    def conj() -> Any:
        return binary(unary, "&", And)

    def disj() -> Any:
        return binary(conj, "|", Or)

    def implies() -> Any:
        left = disj()
        if peek() == "->":
            take()
            return Implies(left, implies())
        return left

    def equiv() -> Any:
        return binary(implies, "<->", Equivalent)

    result = equiv()
    if pos != len(tokens):
        raise FormulaError(f"unexpected {tokens[pos]!r} after a complete formula in {text[:60]!r}")
    return result


def entails(premises: list[str], conclusion: str) -> bool:
    """True iff the premises entail the conclusion (runs in the bounded child)."""
    from sympy.logic.boolalg import And, Not
    from sympy.logic.inference import satisfiable

    return satisfiable(And(*[parse_formula(p) for p in premises], Not(parse_formula(conclusion)))) is False


def answer_region(completion: str, extract: str, tag: str) -> tuple[str | None, str]:
    if extract == "all":
        return completion.strip(), ""
    found = re.findall(rf"<{tag}>(.*?)</{tag}>", completion, flags=re.DOTALL)
    if len(found) != 1:
        return None, f"expected exactly one <{tag}>..</{tag}>, found {len(found)}"
    return found[0].strip(), ""


def parse_assignments(text: str, people: list[str], roles: Sequence[str]) -> tuple[dict[str, str] | None, str]:
    """Map each person to one role from ``text``, or ``(None, why)`` -- see the module docstring."""
    hedge = _HEDGE.search(text) or _NEGATION.search(text)
    if hedge:
        return None, f"hedged or negated assignment ({hedge.group(0)!r})"
    name = "|".join(re.escape(p) for p in sorted(people, key=len, reverse=True))
    role = "|".join(re.escape(r) for r in roles)
    names = rf"(?:\b(?:{name})\b)"
    # Names are proper nouns: matched case-sensitively, so the article "a" is never person "A".
    pattern = re.compile(
        rf"(?P<names>{names}(?:\s*(?:,|\band\b|&)\s*{names})*)\s*(?:(?i:\bis\b|\bare\b)|:|=|-)\s*"
        rf"(?:(?i:\ban?)\s+)?(?P<role>(?i:{role}))(?i:s)?\b"
    )
    assigned: dict[str, str] = {}
    matches = list(pattern.finditer(text))
    for match in matches:
        for person in re.findall(names, match.group("names")):
            if person in assigned:
                return None, f"{person} assigned more than once"
            assigned[person] = match.group("role").lower()
    stray = len(re.findall(rf"\b(?:{role})s?\b", text, flags=re.IGNORECASE)) - len(matches)
    if stray:
        return None, f"{stray} role word(s) not attached to a person"
    missing = [p for p in people if p not in assigned]
    if missing:
        return None, f"no role given for {missing}"
    return assigned, ""


@dataclass
class LogicGrader:
    spec: LogicSpec
    _verdicts: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def timeout_s(self) -> float:
        """The solver child's wall clock; the pool reads it as this grader's own bound."""
        return self.spec.timeout_s

    def __call__(self, completion: str, example: Example) -> Grade:
        text, why = answer_region(completion, self.spec.extract, self.spec.tag)
        if text is not None and len(text) > MAX_ANSWER_CHARS:
            text, why = None, f"answer longer than {MAX_ANSWER_CHARS} characters"
        if self.spec.mode == "entailment":
            return self._entailment(text, why, example)
        return self._knights_knaves(text, why, example)

    def _verdict(self, premises: list[str], conclusion: str) -> bool | str:
        key = repr((premises, conclusion))
        if key not in self._verdicts:
            try:
                self._verdicts[key] = call_bounded(entails, (premises, conclusion), self.spec.timeout_s)
            except RemoteError as e:
                return f"row formulas do not parse: {e}"
            except BoundExceeded as e:
                return f"solver stopped: {e}"
        return self._verdicts[key]

    def _entailment(self, text: str | None, why: str, example: Example) -> Grade:
        spec = self.spec
        premises, conclusion = example.get(spec.premises_field), example.get(spec.conclusion_field)
        if not (isinstance(premises, list) and all(isinstance(p, str) for p in premises) and isinstance(conclusion, str)):
            return Grade(0.0, None, f"row needs '{spec.premises_field}' (list of formulas) and '{spec.conclusion_field}'", {"skipped": True})
        truth = self._verdict(premises, conclusion)
        if isinstance(truth, str):
            return Grade(0.0, None, truth + "; row skipped", {"skipped": True})
        stored = example.get(spec.answer_field)
        if stored is not None and _verdict_word(str(stored)) not in (None, truth):
            return Grade(0.0, None, f"row's '{spec.answer_field}' disagrees with the solver; row skipped", {"skipped": True})
        if text is None:
            return Grade(0.0, False, why, {"entailed": truth})
        said = _verdict_word(text)
        if said is None:
            return Grade(0.0, False, f"not a single yes/no verdict: {text[:40]!r}", {"entailed": truth})
        ok = said == truth
        return Grade(float(ok), ok, f"answered {'yes' if said else 'no'}, solver says {'yes' if truth else 'no'}", {"entailed": truth})

    def _knights_knaves(self, text: str | None, why: str, example: Example) -> Grade:
        gold, roles = example.get(self.spec.answer_field), self.spec.roles
        if not (isinstance(gold, dict) and gold and all(isinstance(v, str) and v.lower() in roles for v in gold.values())):
            return Grade(0.0, None, f"row's '{self.spec.answer_field}' must map each person to one of {roles}", {"skipped": True})
        if text is None:
            return Grade(0.0, False, why, {})
        assigned, why = parse_assignments(text, [str(p) for p in gold], roles)
        if assigned is None:
            return Grade(0.0, False, why, {})
        wrong = [p for p, r in gold.items() if assigned[str(p)] != r.lower()]
        ok = not wrong
        return Grade(float(ok), ok, "all roles right" if ok else f"wrong role for {wrong}", {"wrong": wrong})


def _verdict_word(text: str) -> bool | None:
    words = " ".join(re.sub(r"[^\w' ]", " ", text.lower()).split())
    if words in YES:
        return True
    if words in NO:
        return False
    return None
