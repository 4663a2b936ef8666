"""The grading contract: :class:`Grade`, the :class:`Grader` protocol and :func:`safe_grade`.

A grader is built from a spec dict by ``rft.graders.build(spec)`` and called as
``grader(completion, example) -> Grade``: one fixed signature, no ``**kwargs``.

Model output is untrusted. A grader must never raise into the training loop: :func:`safe_grade`
turns an exception into score 0 with the reason recorded (``details["error"]``), and the trainer
counts those in its metrics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from rft.data import Example


@dataclass(frozen=True)
class Grade:
    """The result of grading one completion.

    score:   the reward; correctness graders return a value in [0, 1].
    passed:  True/False when the grader has a notion of pass, None when it cannot say
             (e.g. an unparseable gold answer: skipped, not rewarded, counted).
    reason:  short and human readable ("extracted 42, expected 41").
    details: structured data for logs and reports.
    """

    score: float
    passed: bool | None = None
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def errored(self) -> bool:
        return "error" in self.details


class SpecError(ValueError):
    """A grader spec is invalid; the message names the field and the fix."""


@runtime_checkable
class Grader(Protocol):
    """Anything callable as ``grader(completion, example) -> Grade``."""

    def __call__(self, completion: str, example: Example) -> Grade: ...


def safe_grade(grader: Grader, completion: str, example: Example) -> Grade:
    """Call ``grader`` and never raise: any exception becomes score 0 with the error recorded."""
    try:
        grade = grader(completion, example)
    except Exception as e:  # noqa: BLE001 - a grader bug must not kill training; it is recorded
        return Grade(0.0, False, f"grader error: {type(e).__name__}: {e}"[:300], {"error": type(e).__name__})
    if not isinstance(grade, Grade):
        return Grade(0.0, False, f"grader returned {type(grade).__name__}, not Grade", {"error": "BadReturn"})
    return grade
