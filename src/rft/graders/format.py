"""The ``format`` grader: a strict ``<think>…</think><answer>…</answer>`` grammar.

Formula: score = 1 if the completion is, in order,
``ws* <think> T </think> ws* <answer> A </answer> ws*`` with exactly one of each of the four tags
anywhere in the text, ``T`` holding at least ``min_think_chars`` non-space characters (default 1)
and ``A`` at least one; else 0. Empty tags ("format spam"), repeated or nested tags, text before
``<think>``, between the blocks or after ``</answer>`` all fail. With ``think_in_prompt: true``
the chat template already opened ``<think>``, so the completion starts inside it and must not
contain an opening ``<think>``.

Spec: ``{"type": "format", "think_tag": "think", "answer_tag": "answer", "min_think_chars": 1,
"think_in_prompt": false}``. Not covered: what the answer says (combine with a correctness grader
in ``multi``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rft.config.graders import FormatSpec
from rft.data import Example
from rft.graders.base import Grade


@dataclass(frozen=True)
class FormatGrader:
    spec: FormatSpec

    def __call__(self, completion: str, example: Example) -> Grade:
        t, a = self.spec.think_tag, self.spec.answer_tag
        expected_counts = {f"<{t}>": 0 if self.spec.think_in_prompt else 1, f"</{t}>": 1, f"<{a}>": 1, f"</{a}>": 1}
        for tag, expected in expected_counts.items():
            found = completion.count(tag)
            if found != expected:
                return Grade(0.0, False, f"{tag} appears {found} times, expected {expected}", {"format_ok": False})
        opening = "" if self.spec.think_in_prompt else rf"\s*<{t}>"
        shape = re.fullmatch(rf"{opening}(?P<think>.*)</{t}>\s*<{a}>(?P<answer>.*)</{a}>\s*", completion, re.DOTALL)
        if shape is None:
            return Grade(0.0, False, "tags out of order or text outside the blocks", {"format_ok": False})
        think, answer = shape.group("think").strip(), shape.group("answer").strip()
        if len(think) < self.spec.min_think_chars:
            return Grade(0.0, False, f"think block has {len(think)} characters, need {self.spec.min_think_chars}", {"format_ok": False})
        if not answer:
            return Grade(0.0, False, "empty answer block", {"format_ok": False})
        return Grade(1.0, True, "well-formed think/answer", {"format_ok": True})
