"""The ``math`` grader: one final answer, checked for equivalence with math-verify + SymPy.

Formula: score = 1 if the single extracted final answer is mathematically equivalent to the gold
``example[answer_field]``, else 0. Steps:

1. Extract ONE final answer (``extract``):
   ``boxed`` (default) -- the last ``\\boxed{..}`` / ``\\fbox{..}``; every earlier box must hold the
   same text, otherwise the answers conflict and the score is 0 (hedging by boxing two values) --
   unless the gold is set- or tuple-valued and the boxes together equal it ("\\boxed{(2, 2)} and
   \\boxed{(6, 2)}" for "(2, 2), (6, 2)"; :mod:`rft.graders.math_boxes` has the rule);
   ``tag`` -- the text of exactly one ``<answer>..</answer>`` (``tag`` names it);
   ``hash`` -- the rest of exactly one line starting with ``####`` (GSM8K style);
   ``auto`` -- the answer math-verify itself finds in free text (its ``parse`` with
   ``LatexExtractionConfig()`` + ``ExprExtractionConfig()``): the strongest anchor wins -- "final
   answer is X" and ``\\boxed{X}``, then "answer: X", then "answer ... X", then any LaTeX, number or
   expression -- and among equals the rightmost, so "The answer is 5. ... The answer is 7." is 7: a
   self-correction counts, and writing several answers earns what the last one earns, never more;
   ``last_number`` -- the last number in the text, compared as a number (:mod:`rft.graders.math_text`
   says what counts as a number and what does not).
   When to use which: a marker mode when the prompt asks for a marker (only a marker tells the
   answer from the working); ``auto`` for models that answer in sentences ("The shop sold
   74 + 27 = 101 books.") -- ``boxed`` scores every such answer 0; ``last_number`` for integer or
   decimal golds (GSM8K) when cost matters: it needs no child process for a plain-number gold.
2. Reject hedges in the answer ("2 or 3", ``2 \\lor 3``, "either"), answers over
   ``max_answer_chars``, and (``reject_echo``, default on) an answer of 3+ characters that differs
   from the gold's text but appears verbatim in the prompt ("\\boxed{6*7}" for "What is 6*7?").
   The free-text modes (``auto``, ``last_number``) also reject: a completion over
   ``max_completion_chars`` (default 32,000, ~8k tokens: the last number after 100,000 characters of
   filler is no answer), a completion that only repeats the prompt (``reject_echo``), two different
   ``\\boxed{}`` contents (as ``boxed`` does: ``auto`` joins them for a set- or tuple-valued gold,
   and the answer math-verify reads must equal the gold too; ``last_number`` always refuses), a
   hedge word in the answer's sentence from its first digit, ``$`` or ``\\`` on or right before it
   ("it is 2 or 3" and "none or 5" fail, "Either way, it is 5" passes; ``last_number`` looks between
   the last two numbers and right before the last), and an ``Answer:`` label after the answer read
   that states no answer or another one ("Answer: 5\\nAnswer: none"; "\\boxed{5} Final Answer: 5"
   passes).
3. Parse gold and answer with math-verify (LaTeX, then plain expressions). The gold is parsed
   strictly: if it yields no SymPy value the row is skipped (``passed=None``, counted) rather than
   rewarded or punished. A gold without ``$``, ``\\(``, ``\\[`` or a box is read as ``$gold$``, so
   "2, 3" is the set {2, 3}. Then ``math_verify.verify(gold, answer)``, except that a gold SymPy
   reads as undefined (a clock time "12:00" is 12/0, which equals nothing) needs the same text.
4. Guard against math-verify's absolute rounding (6 decimals), which calls ``1/2004!`` and
   ``1/2006!`` equal: when both sides are plain numbers, they must also agree relatively --
   exactly (to 1e-12 at 50 digits) when neither side has a decimal point, within ``rel_tol``
   when one does (so 0.333333 still equals 1/3); a side that does not evaluate to a plain number
   (a percent: math-verify lets "28%" equal 28 and 0.28) keeps math-verify's verdict.
   ``last_number`` applies the same rule itself when the gold is a plain number ("72", "1,234",
   "-3.5"), and sends any other gold ("\\frac{1}{2}") through steps 3-4 with the number as the answer.

Bounds: steps 3-4 run in a child process (``bounded.call_bounded``) killed after ``timeout_s`` and
limited to ``memory_mb``: ``9^{9^{9^9}}`` or ``10000000!`` cost one timeout, never a hung worker.
With ``auto`` the extraction itself (SymPy parsing candidates of untrusted text) runs there too.

Not covered: units ("5 cm"), word answers ("five"), multiple-choice letters beyond plain symbols,
relative guarding of numbers inside sets/tuples/intervals (those use math-verify's comparison).
``auto`` inherits math-verify's anchors: in "To answer this we need 3 apples. ... 12" the "answer"
anchor wins and 3 is the answer; values joined by "and" or commas become one set; an answer split
over several boxes counts only for a set- or tuple-valued gold (see :mod:`rft.graders.math_boxes`
for the cases it leaves out). Agreement with math-verify's own test vectors (0.9.0, 276 of them,
``tests/graders/test_math_verify_vectors.py``): 266, the 10 others listed there with why.

``details["extracted"]`` (maj@n votes on it) is the answer's text: with ``auto`` as math-verify
writes it ("1234" for "1,234", "25" for "25%", normalised LaTeX), with ``last_number`` the number
without separators or trailing zeros ("1234.5" for "1,234.50"); None when nothing was found.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from rft.config.graders import FREE_TEXT_MODES, MathSpec
from rft.data import Example
from rft.graders.base import Grade
from rft.graders.math_boxes import (
    boxed_contents,
    hedge_between_boxes,
    join_boxes,
    several_valued,
)
from rft.graders.math_text import (
    HEDGE,
    answer_sentence,
    last_number,
    later_answer_texts,
    numbers_equal,
    plain_number,
)
from rft.isolation.bounded import BoundExceeded, RemoteError, call_bounded


def extract_answer(completion: str, mode: str, tag: str) -> tuple[str | None, str]:
    """Return ``(answer, "")`` or ``(None, why_not)`` for one final answer under ``mode``."""
    if mode == "boxed":
        boxes = boxed_contents(completion)
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
    """``text`` in ``$..$`` unless it already has LaTeX delimiters or a box (math-verify finds both)."""
    marked = any(m in text for m in ("$", "\\(", "\\[", "\\boxed", "\\fbox"))
    return text if marked else f"${text}$"


def _parsed(text: str) -> tuple[list[Any], str]:
    """math-verify's values of ``text`` (SymPy only: a text that yields none does not parse) and the
    text it read, as it normalises it (its ``first_match`` fallback string, "" when none)."""
    from math_verify import parse

    logging.getLogger("math_verify").setLevel(logging.ERROR)  # we bound time ourselves; no warnings
    parsed = parse(_as_math(text), fallback_mode="first_match", parsing_timeout=None)
    return [v for v in parsed if not isinstance(v, str)], next((v for v in parsed if isinstance(v, str)), "")


def _compare(gold: tuple[list[Any], str], answer: tuple[list[Any], str], rel_tol: float) -> dict[str, Any]:
    """``math_verify.verify``, then the relative guard of step 4 on the first value of each side
    where both evaluate to plain numbers (a percent stays math-verify's). A gold SymPy reads as
    undefined (a clock time "12:00" is 12/0, which equals nothing) is equal only to the same text."""
    import sympy  # imported in the child only: the parent never pays for SymPy
    from math_verify import verify

    (gold_values, gold_text), (answer_values, answer_text) = gold, answer
    g, a = gold_values[0], answer_values[0]
    if isinstance(g, sympy.Basic) and g.has(sympy.zoo, sympy.nan):
        same = bool(gold_text) and "".join(gold_text.split()) == "".join(answer_text.split())
        return {"status": "equal" if same else "different"}
    if not verify(gold_values, answer_values, timeout_seconds=None):
        return {"status": "different"}
    if isinstance(g, sympy.Expr) and isinstance(a, sympy.Expr) and g.is_number and a.is_number:
        diff, sizes = abs(sympy.N(g - a, 50)), (abs(sympy.N(g, 50)), abs(sympy.N(a, 50)))
        inexact = g.has(sympy.Float) or a.has(sympy.Float)
        tol = rel_tol if inexact else 1e-12
        scale = max(sizes) if all(x.is_comparable for x in sizes) else None
        if scale is not None and diff.is_comparable and diff > tol * scale:
            return {"status": "different", "guard": f"relative difference {float(diff / scale):.3g} > {tol:g}"}
    return {"status": "equal"}


def _boxes_answer(gold_value: Any, boxes: list[str]) -> tuple[list[Any], str] | dict[str, Any]:
    """The answer several different boxes make together (:mod:`rft.graders.math_boxes`), or the
    status that ends the grading: a conflict (the gold is not set- or tuple-valued) or a box that
    does not parse."""
    if not several_valued(gold_value):
        return {"status": "conflict", "boxes": sorted(set(boxes))[:4]}
    values = []
    for box in boxes:
        parsed, _ = _parsed(box)
        if not parsed:
            return {"status": "answer_unparseable", "unparseable_box": box[:200]}
        values.append(parsed[0])
    joined = join_boxes(gold_value, values)
    return [joined], " and ".join(boxes)


def parse_and_verify(gold: str, answer: str, rel_tol: float, boxes: list[str] | None = None) -> dict[str, Any]:
    """Runs in the bounded child: parse both sides, verify, apply the relative guard. With
    ``boxes`` (several different boxes), the answer is what they make together."""
    gold_parsed = _parsed(gold)
    if not gold_parsed[0]:
        return {"status": "gold_unparseable"}
    out = {"gold_parsed": str(gold_parsed[0][0])[:200]}
    answer_parsed = _boxes_answer(gold_parsed[0][0], boxes) if boxes else _parsed(answer)
    if isinstance(answer_parsed, dict):
        return {**out, **answer_parsed}
    if not answer_parsed[0]:
        return {**out, "status": "answer_unparseable"}
    out["answer_parsed"] = str(answer_parsed[0][0])[:200]
    return {**out, **_compare(gold_parsed, answer_parsed, rel_tol)}


def final_answer(text: str) -> tuple[Any, str, int, int] | None:
    """math-verify's own final answer of free ``text``: ``(value, as_text, start, end)`` or None.

    The loop of ``math_verify.parser.extract_target_from_pred`` (math-verify 0.9) with the default
    configs of ``parse``, kept here because ``parse`` returns the value but not where it was found
    (the hedge check reads that sentence): patterns by priority, at each priority the rightmost
    match first, the first one that parses wins. ``tests/graders/test_math_free_text.py`` checks
    that the value is ``parse``'s own on every vector."""
    from itertools import groupby

    from math_verify.parser import (
        ExprExtractionConfig,
        LatexExtractionConfig,
        extract_match,
        get_extraction_regexes,
    )

    targets = get_extraction_regexes([LatexExtractionConfig(), ExprExtractionConfig()])
    patterns = sorted(((p, t, prio) for pats, t in targets for p, prio in pats), key=lambda x: x[2])
    for _, group in groupby(patterns, key=lambda x: x[2]):
        matches = sorted(((m, t) for p, t, _ in group for m in p.finditer(text)),
                         key=lambda mt: (mt[0].end(), -mt[0].start()), reverse=True)
        for match, target in matches:
            value, as_text = extract_match(match, target)
            if value is not None:
                return value, as_text, match.start(), match.end()
    return None


def extract_and_verify(gold: str, completion: str, rel_tol: float, boxes: list[str] | None = None) -> dict[str, Any]:
    """Runs in the bounded child: the final answer of ``completion`` (``extract: auto``), verified.
    With ``boxes`` (several different boxes), what they make together must equal the gold too."""
    gold_parsed = _parsed(gold)
    if not gold_parsed[0]:
        return {"status": "gold_unparseable"}
    out: dict[str, Any] = {"gold_parsed": str(gold_parsed[0][0])[:200]}
    boxes_parsed = _boxes_answer(gold_parsed[0][0], boxes) if boxes else None
    if isinstance(boxes_parsed, dict):
        return {**out, **boxes_parsed}
    found = final_answer(completion)
    if found is None:
        return {**out, "status": "no_answer"}
    value, as_text, start, end = found
    out.update(extracted=as_text, span=(start, end), answer_parsed=str(value)[:200])
    if not _labels_restate(completion, end, ([value], as_text), rel_tol):
        out["later_label"] = True
    verdict = _compare(gold_parsed, ([value], as_text), rel_tol)
    if boxes_parsed is not None and verdict["status"] == "equal":
        verdict = _compare(gold_parsed, boxes_parsed, rel_tol)
        verdict.update(boxes_parsed=str(boxes_parsed[0][0])[:200])
    return {**out, **verdict}


def _labels_restate(completion: str, end: int, answer: tuple[list[Any], str], rel_tol: float) -> bool:
    """Whether every "Answer:" label after the answer read at ``end`` states that same answer (as
    math-verify reads it): "\\boxed{5} ... Answer: 5" does, "Answer: 5\\nAnswer: none" does not."""
    for later in later_answer_texts(completion, end):
        found = final_answer(later)
        if found is None or _compare(([found[0]], found[1]), answer, rel_tol)["status"] != "equal":
            return False
    return True


@dataclass(frozen=True)
class MathGrader:
    spec: MathSpec

    @property
    def timeout_s(self) -> float:
        """The bounded child's wall clock; the pool reads it as this grader's own bound."""
        return self.spec.timeout_s

    def __call__(self, completion: str, example: Example) -> Grade:
        raw_gold = example.get(self.spec.answer_field)
        if raw_gold is None or isinstance(raw_gold, (dict, list, bool)) or str(raw_gold).strip() == "":
            return Grade(0.0, None, f"example has no usable '{self.spec.answer_field}' field", {"skipped": True})
        gold = str(raw_gold)
        boxes = boxed_contents(completion)
        boxes = boxes if len(set(boxes)) > 1 else []  # several different boxes: math_boxes' rule
        if self.spec.extract in FREE_TEXT_MODES:
            refused = self._refuse_free_text(completion, gold, example, boxes)
            if refused:
                return Grade(0.0, False, refused, {"extracted": None})
            if self.spec.extract == "auto":
                return self._grade_auto(completion, gold, example, boxes)
            return self._grade_last_number(completion, gold)
        if self.spec.extract == "boxed" and boxes:
            return self._grade_boxes(completion, gold, example, boxes)
        answer, why = extract_answer(completion, self.spec.extract, self.spec.tag)
        if answer is None:
            return Grade(0.0, False, why, {"extracted": None})
        details: dict[str, Any] = {"extracted": answer[:200], "gold": gold[:200]}
        refused = self._refuse_answer(answer, gold, example)
        if refused:
            return Grade(0.0, False, refused, details)
        result = self._bounded(parse_and_verify, (gold, answer, self.spec.rel_tol), details)
        return result if isinstance(result, Grade) else self._verdict(result, answer, gold, details)

    def _refuse_answer(self, answer: str, gold: str, example: Example, sentence: str = "") -> str:
        """Why the extracted answer is refused (step 2), or "" when it is not."""
        if len(answer) > self.spec.max_answer_chars:
            return f"answer longer than {self.spec.max_answer_chars} characters"
        if not answer.strip():
            return "empty final answer"
        hedge = HEDGE.search(answer) or HEDGE.search(sentence)
        if hedge:
            shown = answer if HEDGE.search(answer) else sentence
            return f"hedged answer ({hedge.group(0)!r}): {shown[:60]!r}"
        if self.spec.reject_echo and _echoes_prompt(answer, gold, example):
            return f"answer {answer[:60]!r} only echoes the prompt"
        return ""

    def _refuse_boxes(self, completion: str, gold: str, example: Example, boxes: list[str]) -> str:
        """Why several different boxes are refused before they are parsed (step 2 on each box, a
        hedge word between two boxes), or ""; whether they make one answer is the child's question."""
        for box in dict.fromkeys(boxes):
            refused = self._refuse_answer(box, gold, example)
            if refused:
                return refused
        hedge = hedge_between_boxes(completion)
        return f"hedged answer ({hedge!r} between two boxes)" if hedge else ""

    def _refuse_free_text(self, completion: str, gold: str, example: Example, boxes: list[str]) -> str:
        """Why a free-text completion is refused before any answer is read from it, or ""."""
        if len(completion) > self.spec.max_completion_chars:
            return f"completion longer than max_completion_chars={self.spec.max_completion_chars}"
        if self.spec.reject_echo and _echoes_prompt(completion, gold, example):  # its last number is the prompt's
            return "the completion only echoes the prompt"
        if boxes and self.spec.extract == "last_number":  # a number is never set-valued
            return f"conflicting final answers {sorted(set(boxes))[:4]}"
        return self._refuse_boxes(completion, gold, example, boxes) if boxes else ""

    def _grade_boxes(self, completion: str, gold: str, example: Example, boxes: list[str]) -> Grade:
        """``extract: boxed`` with several different boxes: one answer only if together they equal a
        set- or tuple-valued gold (:mod:`rft.graders.math_boxes`)."""
        answer = " and ".join(dict.fromkeys(boxes))
        details: dict[str, Any] = {"extracted": answer[:200], "gold": gold[:200]}
        refused = self._refuse_boxes(completion, gold, example, boxes)
        if refused:
            return Grade(0.0, False, refused, details)
        result = self._bounded(parse_and_verify, (gold, answer, self.spec.rel_tol, boxes), details)
        return result if isinstance(result, Grade) else self._verdict(result, answer, gold, details)

    def _grade_auto(self, completion: str, gold: str, example: Example, boxes: list[str]) -> Grade:
        details: dict[str, Any] = {"extracted": None, "gold": gold[:200]}
        result = self._bounded(extract_and_verify, (gold, completion, self.spec.rel_tol, boxes), details)
        if isinstance(result, Grade):
            return result
        answer = result.pop("extracted", None)
        span = result.pop("span", None)
        if answer is not None:
            details["extracted"] = answer[:200]
            refused = self._refuse_answer(answer, gold, example, answer_sentence(completion, *span))
            if not refused and result.pop("later_label", False):
                refused = "an 'Answer:' after the extracted answer states no answer or another one"
            if refused:
                return Grade(0.0, False, refused, details)
        if result["status"] == "no_answer":
            return Grade(0.0, False, "no final answer found", details)
        return self._verdict(result, answer or "", gold, details)

    def _grade_last_number(self, completion: str, gold: str) -> Grade:
        found, why = last_number(completion)
        if found is None:
            return Grade(0.0, False, why, {"extracted": None})
        answer = found.canonical
        details: dict[str, Any] = {"extracted": answer, "gold": gold[:200]}
        if found.end - found.start > self.spec.max_answer_chars:
            return Grade(0.0, False, f"answer longer than {self.spec.max_answer_chars} characters", details)
        gold_number = plain_number(gold)
        if gold_number is None:  # "\frac{1}{2}", "3/4": math-verify compares, in the bounded child
            result = self._bounded(parse_and_verify, (gold, answer, self.spec.rel_tol), details)
            return result if isinstance(result, Grade) else self._verdict(result, answer, gold, details)
        ok = numbers_equal(found, gold_number, self.spec.rel_tol)
        return Grade(float(ok), ok, f"{answer} {'equals' if ok else 'differs from'} gold {gold[:60]}", details)

    def _bounded(self, fn: Any, args: tuple[Any, ...], details: dict[str, Any]) -> dict[str, Any] | Grade:
        """``fn(*args)`` in the bounded child, or the Grade that says why it stopped."""
        try:
            return call_bounded(fn, args, self.spec.timeout_s, self.spec.memory_mb)
        except BoundExceeded as e:
            kind = "Timeout" if e.timeout else "BoundExceeded"
            return Grade(0.0, False, f"math check stopped: {e}", {**details, "error": kind, "timeout": e.timeout})
        except RemoteError as e:
            return Grade(0.0, False, f"math check failed: {e}"[:300], {**details, "error": e.type_name})

    def _verdict(self, result: dict[str, Any], answer: str, gold: str, details: dict[str, Any]) -> Grade:
        details.update({k: v for k, v in result.items() if k != "status"})
        status = result["status"]
        if status == "gold_unparseable":
            return Grade(0.0, None, f"gold {gold[:60]!r} does not parse; row skipped", {**details, "skipped": True})
        if status == "conflict":
            return Grade(0.0, False, f"conflicting final answers {result['boxes']}", details)
        if status == "answer_unparseable":
            return Grade(0.0, False, f"answer {result.get('unparseable_box', answer)[:60]!r} does not parse", details)
        ok = status == "equal"
        verdict = "equals" if ok else "differs from"
        return Grade(float(ok), ok, f"{answer[:60]} {verdict} gold {gold[:60]}", details)
