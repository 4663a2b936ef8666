"""The ``math`` grader: one final answer, checked for equivalence with math-verify + SymPy.

Formula: score = 1 if the single extracted final answer is mathematically equivalent to the gold
``example[answer_field]``, else 0. Steps:

1. Extract ONE final answer (``extract``):
   ``boxed`` (default) -- the last ``\\boxed{..}`` / ``\\fbox{..}``; every earlier box must hold the
   same text, otherwise the answers conflict and the score is 0 (hedging by boxing two values);
   ``tag`` -- the text of exactly one ``<answer>..</answer>`` (``tag`` names it);
   ``hash`` -- the rest of exactly one line starting with ``####`` (GSM8K style).
2. Reject hedges in the answer ("2 or 3", ``2 \\lor 3``, "either"), answers over
   ``max_answer_chars``, and (``reject_echo``, default on) an answer of 3+ characters that differs
   from the gold's text but appears verbatim in the prompt ("\\boxed{6*7}" for "What is 6*7?").
3. Parse gold and answer with math-verify (LaTeX, then plain expressions). The gold is parsed
   strictly: if it yields no SymPy value the row is skipped (``passed=None``, counted) rather than
   rewarded or punished. Then ``math_verify.verify(gold, answer)``.
4. Guard against math-verify's absolute rounding (6 decimals), which calls ``1/2004!`` and
   ``1/2006!`` equal: when both sides are plain numbers, they must also agree relatively --
   exactly (to 1e-12 at 50 digits) when neither side has a decimal point, within ``rel_tol``
   when one does (so 0.333333 still equals 1/3).

Bounds: steps 3-4 run in a child process (``bounded.call_bounded``) killed after ``timeout_s`` and
limited to ``memory_mb``: ``9^{9^{9^9}}`` or ``10000000!`` cost one timeout, never a hung worker.

Not covered: units ("5 cm"), word answers ("five"), multiple-choice letters beyond plain symbols,
relative guarding of numbers inside sets/tuples/intervals (those use math-verify's comparison).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from rft.data import Example
from rft.graders.base import Grade
from rft.graders.bounded import BoundExceeded, RemoteError, call_bounded
from rft.graders.specs import SpecReader

_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")
_HEDGE = re.compile(r"\bor\b|\\lor\b|\\vee\b|\beither\b|\bneither\b|\bmaybe\b|\bpossibly\b", re.IGNORECASE)


def boxed_contents(text: str) -> list[str]:
    """The contents of every ``\\boxed{..}`` in ``text`` (balanced braces; an unclosed box is dropped)."""
    out = []
    for match in _BOX.finditer(text):
        depth, start = 1, match.end()
        for i in range(start, len(text)):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    out.append(text[start:i])
                    break
    return out


def extract_answer(completion: str, mode: str, tag: str) -> tuple[str | None, str]:
    """Return ``(answer, "")`` or ``(None, why_not)`` for one final answer under ``mode``."""
    if mode == "boxed":
        boxes = [" ".join(b.split()) for b in boxed_contents(completion)]
        if not boxes:
            return None, "no \\boxed{} answer"
        if len(set(boxes)) > 1:
            return None, f"conflicting final answers {sorted(set(boxes))[:4]}"
        return boxes[-1], ""
    if mode == "tag":
        found = re.findall(rf"<{tag}>(.*?)</{tag}>", completion, flags=re.DOTALL)
        if len(found) != 1:
            return None, f"expected exactly one <{tag}>..</{tag}>, found {len(found)}"
        return found[0].strip(), ""
    lines = [ln[4:].strip() for ln in completion.splitlines() if ln.lstrip().startswith("####")]
    if len(lines) != 1:
        return None, f"expected exactly one '#### answer' line, found {len(lines)}"
    return lines[0], ""


def _squash(text: str) -> str:
    return "".join(text.split()).replace("$", "")


def _echoes_prompt(answer: str, gold: str, example: Example) -> bool:
    """The answer, differing from the gold's text, is a verbatim piece of the prompt ("6*7")."""
    prompt = example.prompt if isinstance(example.prompt, str) else " ".join(m["content"] for m in example.prompt)
    squashed = _squash(answer)
    return squashed != _squash(gold) and len(squashed) >= 3 and squashed in _squash(prompt)


def _as_math(text: str) -> str:
    return text if "$" in text or "\\(" in text or "\\[" in text else f"${text}$"


def parse_and_verify(gold: str, answer: str, rel_tol: float) -> dict[str, Any]:
    """Runs in the bounded child: parse both sides, verify, apply the relative guard."""
    import sympy  # imported in the child only: the parent never pays for SymPy
    from math_verify import parse, verify

    logging.getLogger("math_verify").setLevel(logging.ERROR)  # we bound time ourselves; no warnings
    gold_parsed = [g for g in parse(_as_math(gold), fallback_mode="no_fallback", parsing_timeout=None)]
    gold_values = [g for g in gold_parsed if not isinstance(g, str)]
    if not gold_values:
        return {"status": "gold_unparseable"}
    answer_parsed = parse(_as_math(answer), fallback_mode="no_fallback", parsing_timeout=None)
    answer_values = [a for a in answer_parsed if not isinstance(a, str)]
    out = {"gold_parsed": str(gold_values[0])[:200]}
    if not answer_values:
        return {**out, "status": "answer_unparseable"}
    out["answer_parsed"] = str(answer_values[0])[:200]
    if not verify(gold_values, answer_values, timeout_seconds=None):
        return {**out, "status": "different"}
    g, a = gold_values[0], answer_values[0]
    if isinstance(g, sympy.Expr) and isinstance(a, sympy.Expr) and g.is_number and a.is_number:
        diff = abs(sympy.N(g - a, 50))
        scale = max(abs(sympy.N(g, 50)), abs(sympy.N(a, 50)))
        inexact = g.has(sympy.Float) or a.has(sympy.Float)
        tol = rel_tol if inexact else 1e-12
        if diff > tol * scale:
            return {**out, "status": "different", "guard": f"relative difference {float(diff / scale):.3g} > {tol:g}"}
    return {**out, "status": "equal"}


@dataclass(frozen=True)
class MathGrader:
    answer_field: str = "answer"
    extract: str = "boxed"
    tag: str = "answer"
    max_answer_chars: int = 300
    rel_tol: float = 1e-4
    timeout_s: float = 3.0
    memory_mb: int = 2048
    reject_echo: bool = True

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> "MathGrader":
        r = SpecReader.open(
            spec, "math", ["answer_field", "extract", "tag", "max_answer_chars", "rel_tol", "timeout_s", "memory_mb", "reject_echo"]
        )
        tag = r.text("tag", "answer")
        if not re.fullmatch(r"[A-Za-z][\w-]*", tag):
            raise r.error("tag", "not a tag name", "use letters, digits, '_' or '-', e.g. 'answer'")
        return cls(
            answer_field=r.text("answer_field", "answer"),
            extract=r.choice("extract", "boxed", ["boxed", "tag", "hash"]),
            tag=tag,
            max_answer_chars=r.integer("max_answer_chars", 300, lo=1, hi=100_000),
            rel_tol=float(r.number("rel_tol", 1e-4, lo=0.0, hi=0.5) or 0.0),
            timeout_s=float(r.number("timeout_s", 3.0, lo=0.01, hi=600) or 3.0),
            memory_mb=r.integer("memory_mb", 2048, lo=256),
            reject_echo=r.flag("reject_echo", True),
        )

    def __call__(self, completion: str, example: Example) -> Grade:
        gold = example.get(self.answer_field)
        if gold is None or isinstance(gold, (dict, list, bool)) or str(gold).strip() == "":
            return Grade(0.0, None, f"example has no usable '{self.answer_field}' field", {"skipped": True})
        answer, why = extract_answer(completion, self.extract, self.tag)
        if answer is None:
            return Grade(0.0, False, why, {"extracted": None})
        details: dict[str, Any] = {"extracted": answer[:200], "gold": str(gold)[:200]}
        if len(answer) > self.max_answer_chars:
            return Grade(0.0, False, f"answer longer than {self.max_answer_chars} characters", details)
        if not answer.strip():
            return Grade(0.0, False, "empty final answer", details)
        hedge = _HEDGE.search(answer)
        if hedge:
            return Grade(0.0, False, f"hedged answer ({hedge.group(0)!r}): {answer[:60]!r}", details)
        if self.reject_echo and _echoes_prompt(answer, str(gold), example):
            return Grade(0.0, False, f"answer {answer[:60]!r} only echoes the prompt", details)
        try:
            result = call_bounded(parse_and_verify, (str(gold), answer, self.rel_tol), self.timeout_s, self.memory_mb)
        except BoundExceeded as e:
            kind = "Timeout" if e.timeout else "BoundExceeded"
            return Grade(0.0, False, f"math check stopped: {e}", {**details, "error": kind, "timeout": e.timeout})
        except RemoteError as e:
            return Grade(0.0, False, f"math check failed: {e}"[:300], {**details, "error": e.type_name})
        details.update({k: v for k, v in result.items() if k != "status"})
        status = result["status"]
        if status == "gold_unparseable":
            return Grade(0.0, None, f"gold {str(gold)[:60]!r} does not parse; row skipped", {**details, "skipped": True})
        if status == "answer_unparseable":
            return Grade(0.0, False, f"answer {answer[:60]!r} does not parse", details)
        ok = status == "equal"
        verdict = "equals" if ok else "differs from"
        return Grade(float(ok), ok, f"{answer[:60]} {verdict} gold {str(gold)[:60]}", details)
