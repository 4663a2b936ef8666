"""Reading a final answer out of free text, for the ``math`` grader's ``extract: last_number`` and the
guards it shares with ``extract: auto``. Plain regular expressions only: no SymPy, nothing to bound.

Why: pretrained instruct models (SmolLM2, Qwen) answer in sentences ("The shop sold 74 + 27 = 101
books."), which the marker modes (``boxed``, ``tag``, ``hash``) score 0 for lack of a marker.

:func:`last_number` -- GSM8K style: the last number written in the text. A number is an optional
leading minus (``-`` or ``−``, only when not glued to a word or digit, so ``10-3`` is 10 and 3), an
optional ``$``, digits with optional thousands separators (``1,234,567``; ``12,34`` is two numbers)
and an optional decimal part (``3.50``). A trailing ``%`` or unit is ignored (``25%`` reads 25,
``101 books`` 101). The last one wins (``"The answer is 12. Wait, 13."`` -> 13), except that these
refuse the answer: a hedge word ("or", "either", "maybe", ...) between the last two numbers, inside
one sentence and with different values (``"72 or 73"``), or right before the last number
(``"none or 72"``, ``"maybe 72"``); and an ``Answer:`` label after the last number (the last stated
answer holds no number: ``"Answer: 72\\nAnswer: none"``).

Not covered by ``last_number``: fractions and expressions (``3/4`` reads 4 -- use ``auto``),
exponents and scientific notation (``1e5``), a bare ``.5`` without its leading zero, numbers glued
after letters (``x2``), number words ("five"), times and dates (``12:30`` reads 30), thousands
separated by spaces (``1 000`` reads 0) or dots (``1.000`` reads 1). Its inherent
weakness: any trailing number is taken as the answer, so a completion that ends with the right
number for a wrong reason (a list of every plausible answer ending in the right one, a restated
quantity from the question) is rewarded; a final answer marker (``boxed``/``tag``) is the cure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

# The hedge words of the math grader, read in an answer and in the sentence that states it.
HEDGE = re.compile(r"\bor\b|\\lor\b|\\vee\b|\beither\b|\bneither\b|\bmaybe\b|\bpossibly\b", re.IGNORECASE)

_NUMBER = re.compile(
    r"(?<![\w.])(?P<sign>[-\u2212])?\$?(?P<int>\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?P<frac>\.\d+)?"
)
_PLAIN_NUMBER = re.compile(r"\s*[-\u2212]?\$?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?\s*%?\s*")
_SENTENCE_END = re.compile(r"\n|[.!?](?:\$|\\\))?(?=\s|$)")  # "x = 3.$ Then" ends one too
_MATH_START = re.compile(r"[\d$\\]")
# A hedge word right before the answer ("none or 1,234", "maybe 72"): a hedge between a word and a value.
_HEDGE_BEFORE = re.compile(r"(?:\bor|\\lor|\\vee|\beither|\bneither|\bmaybe|\bpossibly)[\s(]*$", re.IGNORECASE)
# An "Answer:" label (also "**Answer:**", "Final answer:"): after the answer read, it states another one.
_ANSWER_LABEL = re.compile(r"\banswer\s*\**\s*:", re.IGNORECASE)
_WORD_TAIL = re.compile(r"(?:(?<=\w)\w*)?")  # the rest of a word a window starts inside of ("or" of "for")
SENTENCE_REACH = 200  # characters a hedge is looked for on each side of the answer, at most


@dataclass(frozen=True)
class Number:
    """One number found in text: its value, whether it had a decimal part, and where it was."""

    value: Decimal
    inexact: bool  # written with a decimal point: compared within rel_tol, not exactly
    start: int
    end: int

    @property
    def canonical(self) -> str:
        """The value without separators or trailing zeros ("1,234.50" -> "1234.5"): maj@n votes on it."""
        if self.value == 0:
            return "0"
        return format(self.value.normalize(), "f")


def _number(match: re.Match[str]) -> Number:
    sign = "-" if match.group("sign") else ""
    digits = match.group("int").replace(",", "")
    frac = match.group("frac") or ""
    return Number(Decimal(sign + digits + frac), bool(frac), match.start(), match.end())


def numbers(text: str) -> list[Number]:
    """Every number in ``text``, in order (see the module docstring for what counts as one)."""
    return [_number(m) for m in _NUMBER.finditer(text)]


def plain_number(text: str) -> Number | None:
    """``text`` as one number when it is nothing else ("1,234", "-3.5", "$18", "25%"), else None."""
    if not _PLAIN_NUMBER.fullmatch(text):
        return None
    found = numbers(text)
    return found[0] if len(found) == 1 else None


def last_number(text: str) -> tuple[Number | None, str]:
    """``(number, "")`` for the last number of ``text``, or ``(None, why_not)``."""
    found = numbers(text)
    if not found:
        return None, "no number found"
    last = found[-1]
    before = found[-2] if len(found) > 1 else None
    gap = text[before.end if before else 0 : last.start]
    hedge = _HEDGE_BEFORE.search(gap)
    if hedge is None and before is not None and before.value != last.value and not _SENTENCE_END.search(gap):
        hedge = HEDGE.search(gap)
    if hedge:
        shown = text[(before.start if before else hedge.start()) : last.end]
        return None, f"hedged answer ({hedge.group(0).strip()!r}): {shown[-60:]!r}"
    if later_answer_label(text, last.end):
        return None, "an 'Answer:' after the last number holds no number"
    return last, ""


def later_answer_label(text: str, end: int) -> bool:
    """An "Answer:" label after position ``end``: the answer read there is not the last one stated."""
    return _ANSWER_LABEL.search(text, end) is not None


def later_answer_texts(text: str, end: int) -> list[str]:
    """What each "Answer:" label after position ``end`` labels: the text from it to the next label."""
    labels = list(_ANSWER_LABEL.finditer(text, end))
    ends = [m.start() for m in labels[1:]] + [len(text)]
    return [text[m.end() : stop] for m, stop in zip(labels, ends)]


def numbers_equal(a: Number, b: Number, rel_tol: float) -> bool:
    """Exactly equal when neither was written with a decimal point; else
    ``|a - b| <= rel_tol * max(|a|, |b|)`` (so 0.333 is not 1/3 at the default 1e-4, 12.50 is 12.5)."""
    if not (a.inexact or b.inexact):
        return a.value == b.value
    return abs(a.value - b.value) <= Decimal(str(rel_tol)) * max(abs(a.value), abs(b.value))


def _word_start(text: str, lo: int, hi: int) -> int:
    """``hi``, or the start of the word that ``hi`` cuts (not before ``lo``): "... or" from "order" is no hedge."""
    while lo < hi < len(text) and text[hi].isalnum() and text[hi - 1].isalnum():
        hi -= 1
    return hi


def answer_sentence(text: str, start: int, end: int) -> str:
    """The sentence around ``text[start:end]`` (at most ``SENTENCE_REACH`` characters either side),
    from its first digit, ``$`` or ``\\`` on -- or from a hedge word right before that: where
    "2 or 3" and "none or 5" show, and "Either way, the answer is 5" does not."""
    lo = min(start, _WORD_TAIL.match(text, max(0, start - SENTENCE_REACH)).end())  # never inside a word
    begin = max((m.end() for m in _SENTENCE_END.finditer(text, lo, start)), default=lo)
    after = _SENTENCE_END.search(text, end, min(len(text), end + SENTENCE_REACH))
    finish = after.start() if after else _word_start(text, end, min(len(text), end + SENTENCE_REACH))
    sentence = text[begin:finish]
    first = _MATH_START.search(sentence)
    if first is None:
        return sentence
    hedge = _HEDGE_BEFORE.search(sentence, 0, first.start())
    return sentence[hedge.start() if hedge else first.start() :]

