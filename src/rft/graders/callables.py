"""Python callables as graders, for the Python API (``rft.train(cfg, grader=reward)``).

Two shapes, told apart by the signature:

- ``reward(completion, example) -> float | Grade``: ``completion`` is the answer text, ``example``
  the row as a dict (``id``, ``prompt`` and its fields, e.g. ``example["answer"]``). A float is the
  score (passed = score >= ``pass_threshold`` when given, else no verdict); a :class:`Grade` is
  used as it is.
- TRL's batch reward function ``f(prompts, completions, **kwargs) -> list[float]`` (a parameter
  named ``prompts`` or ``completions``): called as the ``python`` grader calls one named by
  ``function:`` -- a batch of one, the row's fields as keyword lists.

:func:`register` wraps the callable and files it in :data:`~rft.graders.python_grader.IN_PROCESS`
under the reference ``module:qualname``; the spec it returns, ``{"type": "python", "function":
REF}``, is what the config (and ``config.yaml``) records, and ``graders.build`` of that spec returns
the wrapped callable in this process. Grades go through :func:`~rft.graders.base.safe_grade` like
every grader's: an exception or ``SystemExit`` scores 0 with the reason; a non-number, NaN/inf or
a Grade with a non-finite score scores 0 with ``details["error"] = "BadReturn"``.

Not covered: grading a callable in worker processes or in the user-code host (rft.isolation.user_code) -- it
exists in this process only, so the API grades it here (``grading.workers: 0``, no per-grade
timeout, no network guard; a hang is the caller's). For timeouts
give a ``function: module:name`` spec instead, which workers import. Resuming from ``config.yaml``
re-imports the recorded reference, which works only for a function defined at the top level of an
importable module.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Any, Callable

from rft.config.graders import PythonSpec
from rft.data import Example
from rft.graders.base import Grade, Grader
from rft.graders.python_grader import IN_PROCESS, score_with

ExampleReward = Callable[[str, dict[str, Any]], Any]


def is_batch_reward(fn: Callable[..., Any]) -> bool:
    """TRL's shape: the function takes ``prompts`` or ``completions`` by name."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # a builtin without a signature: the per-example shape
        return False
    return "prompts" in params or "completions" in params


def reference(fn: Callable[..., Any]) -> str:
    """``module:qualname`` of ``fn``; a second, different callable of the same name gets ``#2``, ``#3``."""
    base = f"{getattr(fn, '__module__', None) or 'builtins'}:{getattr(fn, '__qualname__', type(fn).__qualname__)}"
    ref, n = base, 1
    while ref in IN_PROCESS and getattr(IN_PROCESS[ref], "fn", None) is not fn:
        n += 1
        ref = f"{base}#{n}"
    return ref


@dataclass(frozen=True)
class ExampleGrader:
    """``fn(completion, example_dict) -> float | Grade`` as a :class:`Grader`."""

    spec: PythonSpec
    fn: ExampleReward

    def __call__(self, completion: str, example: Example) -> Grade:
        out = self.fn(completion, {"id": example.id, "prompt": example.prompt, **example.fields})
        if isinstance(out, Grade):
            if isinstance(out.score, bool) or not isinstance(out.score, (int, float)) or not math.isfinite(out.score):
                return Grade(0.0, False, f"reward function returned a Grade with score {out.score!r}", {"error": "BadReturn"})
            return out
        if isinstance(out, bool) or not isinstance(out, (int, float)):
            return Grade(0.0, False, f"reward function returned {type(out).__name__}, not a number or Grade",
                         {"error": "BadReturn"})
        if not math.isfinite(out):
            return Grade(0.0, False, f"reward function returned {out}", {"error": "BadReturn"})
        threshold = self.spec.pass_threshold
        return Grade(float(out), None if threshold is None else out >= threshold, f"reward function returned {out:.4g}", {})


@dataclass(frozen=True)
class BatchGrader:
    """TRL's ``f(prompts, completions, **columns) -> list[float]`` as a :class:`Grader`, scored as the
    ``python`` grader scores a ``function:`` (a batch of one), in this process."""

    spec: PythonSpec
    fn: Callable[..., Any]

    def __call__(self, completion: str, example: Example) -> Grade:
        return score_with(self.fn, self.spec, completion, example)


def register(fn: Callable[..., Any], pass_threshold: float | None = None) -> dict[str, Any]:
    """Wrap ``fn`` as a grader in this process; returns the spec that names it."""
    if not callable(fn):
        raise TypeError(f"grader: expected a spec dict or a callable, got {type(fn).__name__}")
    spec = {"type": "python", "function": reference(fn)}
    if pass_threshold is not None:
        spec["pass_threshold"] = pass_threshold
    typed = PythonSpec.model_validate(spec)
    grader: Grader = BatchGrader(typed, fn) if is_batch_reward(fn) else ExampleGrader(typed, fn)
    IN_PROCESS[typed.function] = grader  # type: ignore[index]
    return spec
