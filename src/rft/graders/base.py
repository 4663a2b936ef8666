"""The grading contract: :class:`Grade`, the :class:`Grader` protocol and :func:`safe_grade`.

A grader is built from a spec dict by ``rft.graders.build(spec)`` (validated into its model in
``rft.config.graders``; a bad spec is a :class:`SpecError`) and called as
``grader(completion, example) -> Grade``: one fixed signature, no ``**kwargs``.

Model output is untrusted. A grader must never raise into the training loop: :func:`safe_grade`
turns an exception into score 0 with the reason recorded (``details["error"]``), and the trainer
counts those in its metrics.

Every score is checked before it can become a reward, in one place, :func:`checked`: the grades of
every grader (:func:`safe_grade`: the pool, in-process or in its workers, ``rft grade``, each term of
a ``multi`` grader and the ``multi`` total) and an episode's own grade (``rft.envs.episodes``: a TRL
``get_reward()``, a self-grading environment). A score that is not a real number (a bool, a str such
as ``"nan"``, None, a complex), is NaN or +-inf, or lies beyond +-:data:`MAX_ABS_SCORE` becomes
score 0, passed False, with ``details["error"]`` naming the problem (``NotANumber``,
``NonFiniteScore``, ``ScoreOutOfRange``), so that it is counted in the grader's error metrics and
no NaN reaches the advantages. Not covered: a grader whose real scale is beyond 1e6 (rescale it).

What counts as a pass is decided in one place, :func:`passed_of`, which every pass count reads
(pass@1, pass@k, maj@n, the grader pool's ``pass_rate``, ``rft grade``, ``rft doctor``): the
grader's own verdict when it gives one, else whether the score reaches :data:`PASS_SCORE`.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

from rft.data import Example


@dataclass(frozen=True)
class Grade:
    """The result of grading one completion.

    score:   the reward; correctness graders return a value in [0, 1].
    passed:  True/False when the grader has a notion of pass (e.g. a ``pass_threshold``), None
             when it does not say (a python grader without ``pass_threshold``; a shaping penalty)
             or cannot say (an unparseable gold answer: ``details["skipped"]``, not rewarded,
             counted). Read it through :func:`passed_of`, never directly.
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

    @property
    def skipped(self) -> bool:
        """The grader could not judge this row (a data problem: no gold, a gold that does not parse)."""
        return bool(self.details.get("skipped"))


@runtime_checkable
class Grader(Protocol):
    """Anything callable as ``grader(completion, example) -> Grade``."""

    def __call__(self, completion: str, example: Example) -> Grade: ...


# The full score of a correctness grader (scores in [0, 1]): a grade that gives no verdict of its own
# passes when its score reaches it. A grader whose scores mean something else declares its pass
# line itself (``pass_threshold`` on python, multi and text_similarity specs) and so returns a verdict.
PASS_SCORE = 1.0
# Scores a weighted sum or a formula computes may fall short of 1.0 by rounding (3 x 1/3).
_PASS_ROUNDING = 1e-9


def passed_of(grade: Grade) -> bool:
    """Whether ``grade`` counts as a pass, wherever passes are counted:

    - an errored grade (``details["error"]``: exception, timeout, crash, bad return) never passes;
    - a skipped grade (``details["skipped"]``: score 0, passed None) never passes;
    - ``passed`` True/False: the grader's own verdict;
    - ``passed`` None: ``score >= PASS_SCORE`` (1.0, less 1e-9 of rounding): full marks pass,
      partial credit does not.

    Not covered: a grader without a verdict whose full score is not 1 (a python grader returning
    0..10): give its spec a ``pass_threshold``, or every score >= 1 counts as a pass.
    """
    if grade.errored or grade.skipped:
        return False
    if grade.passed is not None:
        return bool(grade.passed)
    return grade.score >= PASS_SCORE - _PASS_ROUNDING


# The largest |score| a reward may have: far above any grader's own scale (0..1, a python grader's
# 0..10, a weighted sum of shaping terms) and far below float32's 3.4e38, so that the float32 reward
# tensor, a group's sum, mean and std, and the advantages stay finite.
MAX_ABS_SCORE = 1e6


def score_problem(score: Any) -> tuple[str, str] | None:
    """None when ``score`` can be a reward; else (error kind, what is wrong)."""
    if isinstance(score, bool) or not isinstance(score, numbers.Real):  # numpy's floats and ints are Real
        return "NotANumber", f"{shown(score)} is a {type(score).__name__}, not a number"
    try:
        value = float(score)
    except (OverflowError, ValueError, TypeError):  # an int past float's range
        return "ScoreOutOfRange", f"a {type(score).__name__} past float's range"
    if not math.isfinite(value):
        return "NonFiniteScore", f"{value} is not a finite number"
    if abs(value) > MAX_ABS_SCORE:
        return "ScoreOutOfRange", f"{value:.7g} is beyond +-{MAX_ABS_SCORE:g}"
    return None


def checked(grade: Any) -> Grade:
    """The score gate every grade passes before it can become a reward (the module docstring says
    where): ``grade`` itself when it is a :class:`Grade` whose score is a finite number within
    +-MAX_ABS_SCORE (as a float); else score 0, passed False, ``details["error"]`` naming the problem
    (the grade's other details kept, its score as ``details["bad_score"]``)."""
    if not isinstance(grade, Grade):
        return Grade(0.0, False, f"grader returned {type(grade).__name__}, not Grade", {"error": "BadReturn"})
    problem = score_problem(grade.score)
    if problem is None:
        return grade if type(grade.score) is float else replace(grade, score=float(grade.score))
    kind, what = problem
    return Grade(0.0, False, f"score rejected: {what}; a reward must be a finite number within +-{MAX_ABS_SCORE:g}",
                 {**grade.details, "error": kind, "bad_score": shown(grade.score)})


def shown(value: Any) -> str:
    """``repr(value)``, cut to 40 characters (an int past Python's digit limit has none)."""
    try:
        return repr(value)[:40]
    except ValueError:
        return f"<{type(value).__name__}>"


def safe_grade(grader: Grader, completion: str, example: Example) -> Grade:
    """Call ``grader`` and never raise: any exception, and ``SystemExit`` (``sys.exit()`` in reward code run
    in-process), becomes score 0 with the error recorded; the grade passes the score gate
    (:func:`checked`). ``KeyboardInterrupt`` still stops the run."""
    try:
        grade = grader(completion, example)
    except (Exception, SystemExit) as e:  # noqa: BLE001 - a grader bug must not kill training; it is recorded
        return Grade(0.0, False, f"grader error: {type(e).__name__}: {e}"[:300], {"error": type(e).__name__})
    return checked(grade)
