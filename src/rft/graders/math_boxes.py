"""Several ``\\boxed{}`` in one completion: a hedge, or the parts of one set- or tuple-valued answer.

Boxing two different values for one quantity hedges ("\\boxed{2} ... \\boxed{3}" for 3) and scores
0. But the answer to "find all pairs" is often written one part per box ("\\boxed{(2, 2)} and
\\boxed{(6, 2)}", "x_1 = \\boxed{..} and x_2 = \\boxed{..}"), and math-verify joins such boxes into
one set. The ``math`` grader's rule (``extract: boxed`` and ``auto``), in the order it is applied:

1. a hedge word inside a box or between two boxes refuses ("\\boxed{2} or \\boxed{3}"), whatever
   the gold (:func:`hedge_between_boxes`; the word list is :data:`rft.graders.math_text.HEDGE`);
2. a gold that is not set- or tuple-valued -- a number, an expression, an equation, an interval --
   with several different boxes is a conflict: listing candidates (``\\boxed{1} ... \\boxed{100}``)
   or one right and one wrong box never pays (:func:`several_valued` is False);
3. a set-valued gold (a SymPy ``FiniteSet``: "1, 2", "(2, 2), (6, 2)", "k = 45, n = 2") is compared
   with the set of every box's value, order-free and repeats ignored, a box holding a list adding
   its elements (as math-verify joins "1, 2 and 3"): a superset or a subset of the gold fails;
4. a tuple-valued gold (a SymPy ``Tuple``: "(6, 31, -1)") is compared with the tuple of the boxes'
   values in the order written, every box counted: a tuple's order is its meaning ((p, q, r) =
   (6, 31, -1) is not (31, 6, -1)) and its components are boxed in that order, so accepting any
   order would pay a wrong answer;
5. with ``auto``, the answer math-verify itself reads must equal the gold as well: boxes followed
   by "The final answer is 3" are refused.

Not covered: a tuple with a repeated component boxed part by part ((2, 2) as ``\\boxed{2}`` twice
reads as the single answer 2); a tuple whose parts are restated in a last box (``\\boxed{6}``,
``\\boxed{31}``, ``\\boxed{-1}``, ``\\boxed{(6, 31, -1)}`` fails); a pair such as "(3, 5)", which
math-verify reads as an open interval, so never as a tuple of boxes; ``extract: last_number``,
which refuses several different boxes. Plain regular expressions and SymPy containers only; the
parsing happens in the ``math`` grader's bounded child.
"""

from __future__ import annotations

import re
from typing import Any

from rft.graders.math_text import HEDGE

_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")


def boxed_spans(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, content)`` of every ``\\boxed{..}`` / ``\\fbox{..}`` in ``text`` (balanced
    braces; an unclosed box is dropped), in order."""
    out = []
    for match in _BOX.finditer(text):
        depth, start = 1, match.end()
        for i in range(start, len(text)):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    out.append((match.start(), i + 1, text[start:i]))
                    break
    return out


def boxed_contents(text: str) -> list[str]:
    """The contents of every ``\\boxed{..}`` in ``text``, in order, whitespace runs made one space."""
    return [" ".join(content.split()) for _, _, content in boxed_spans(text)]


def hedge_between_boxes(text: str) -> str:
    """The first hedge word ("or", "either", ``\\lor``, ...) in the text between two consecutive
    boxes, or "" when there is none."""
    spans = boxed_spans(text)
    for (_, end, _), (start, _, _) in zip(spans, spans[1:]):
        hedge = HEDGE.search(text, end, max(end, start))
        if hedge:
            return hedge.group(0)
    return ""


def several_valued(gold: Any) -> bool:
    """Whether several boxes can make the answer to ``gold``: a set (``FiniteSet``) or a ``Tuple``."""
    from sympy import FiniteSet, Tuple

    return isinstance(gold, (FiniteSet, Tuple))


def join_boxes(gold: Any, box_values: list[Any]) -> Any:
    """The one answer the boxes' parsed values make together, shaped as the :func:`several_valued`
    ``gold``: a ``FiniteSet`` for a set gold (a box holding a set adds its elements), else a
    ``Tuple`` in the order written. Runs where SymPy is imported (the bounded child)."""
    from sympy import FiniteSet, Tuple

    if isinstance(gold, FiniteSet):
        elements: list[Any] = []
        for value in box_values:
            elements.extend(value.args if isinstance(value, FiniteSet) else [value])
        return FiniteSet(*elements)
    return Tuple(*box_values)
