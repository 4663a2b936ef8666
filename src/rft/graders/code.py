"""The ``code`` grader: run the completion's program against the example's tests in a sandbox.

Program: the last fenced ```python (or ```py) block of the completion, else the whole completion.

``function`` mode: the example has ``entry_point`` (a function name) and ``tests``, a list of
``{"args": [...], "kwargs": {...}, "expected": <JSON value>}``. The sandbox calls the function per
test and sends back plain JSON; this (trusted) process compares it with ``expected`` using strict
types: an int is not a bool, an int is not a float, a list is not a tuple (a returned tuple is an
error unless ``tuple_as_list``), a value must be an exact built-in JSON type (an object whose
``__eq__`` is always True is an error, not a value). Floats compare exactly unless ``float_tol``
is set (then ``math.isclose`` with that rel/abs tolerance, and ints and floats compare by value).

``stdio`` mode: ``tests`` is a list of ``{"stdin": "...", "expected_stdout": "..."}``; a test passes
when the program exits normally (status 0) and its stdout equals the expected one after removing
trailing whitespace from every line and trailing blank lines. An exit status of 0 alone proves
nothing: the verdict is always the parent's comparison.

Expected values never enter the sandbox: the payload carries the program and test inputs only.
Time: ``timeout_s`` bounds the whole run (all tests, measured from the harness's start; the parent
kills the sandbox two seconds after it); ``test_timeout_s`` optionally bounds each test, so one slow
test does not use up the others' time. Tests the clock never reached count as ``timeout``.

Score = passed / total (or 0/1 when ``partial_credit`` is false). ``details["tests"]`` has one
entry per test with ``status`` in passed / failed / error / timeout / memory / output_limit and a
short ``message`` (a diff for failures). ``details["error"]`` is set only when the sandbox itself
failed (an infrastructure error, counted by the pool), never for a wrong program.

Not covered: languages other than Python; per-test isolation (all tests of one completion share a
sandboxed interpreter, so a test can see state left by an earlier one); see ``sandbox.py`` for
what the isolation does and does not cover.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import re
import signal
from dataclasses import dataclass
from typing import Any

from rft.config.base import SpecError
from rft.config.graders import CodeSpec
from rft.data import Example
from rft.graders.base import Grade
from rft.isolation.sandbox import (
    Limits,
    RunResult,
    Sandbox,
    SandboxUnavailable,
    get_sandbox,
)

_FENCE = re.compile(r"```[ \t]*(?:python3?|py)[ \t]*\r?\n(.*?)```", re.DOTALL | re.IGNORECASE)
STATUSES = ("passed", "failed", "error", "timeout", "memory", "output_limit")
# The only non-"ok" statuses taken from the sandbox; anything else it reports (e.g. a forged
# "passed") becomes "error". Pass/fail is decided here, never there.
_FAILURE_STATUSES = ("error", "timeout", "memory", "output_limit")


def extract_program(completion: str) -> str:
    """The last fenced python block, or the whole completion when there is none."""
    blocks = _FENCE.findall(completion)
    return blocks[-1] if blocks else completion


@dataclass(frozen=True)
class CodeGrader:
    spec: CodeSpec

    @classmethod
    def from_spec(cls, spec: CodeSpec) -> "CodeGrader":
        """Resolves the sandbox now (probed once per process): a machine that cannot isolate the
        program is refused when the grader is built, at load, not at the first grade."""
        grader = cls(spec)
        try:
            grader.sandbox()
        except SandboxUnavailable as e:
            raise SpecError(f"code grader: {e}") from e
        return grader

    @property
    def timeout_s(self) -> float:
        """Wall clock for the whole run (all tests); the pool reads it as this grader's own bound."""
        return self.spec.timeout_s

    def sandbox(self) -> Sandbox:
        return _cached_sandbox(self.spec.isolation, self.spec.require_isolation, self.spec.python)

    def limits(self, n_tests: int) -> Limits:
        spec, out = self.spec, self.spec.max_output_kb * 1024
        return Limits(timeout_s=spec.test_timeout_s or spec.timeout_s, total_timeout_s=spec.timeout_s,
                      memory_mb=spec.memory_mb, processes=spec.processes, output_bytes=out,
                      results_bytes=(n_tests + 1) * (8 * out + 4096) + 65536)

    def __call__(self, completion: str, example: Example) -> Grade:
        tests, problem = self._tests(example)
        if problem:
            return Grade(0.0, None, problem, {"skipped": True})
        program = extract_program(completion)
        if not program.strip():
            return Grade(0.0, False, "no program in the completion", {"tests": []})
        if self.spec.mode == "function":
            inputs = [{"args": t.get("args", []), "kwargs": t.get("kwargs", {})} for t in tests]
            payload = {"mode": "function", "program": program, "entry_point": example.get(self.spec.entry_point_field),
                       "tests": inputs, "tuple_as_list": self.spec.tuple_as_list}
        else:
            payload = {"mode": "stdio", "program": program, "tests": [{"stdin": t.get("stdin", "")} for t in tests]}
        run = self.sandbox().run(payload, self.limits(len(tests)))
        return self._grade(run, tests)

    def _tests(self, example: Example) -> tuple[list[dict[str, Any]], str | None]:
        """The example's tests, or a reason why the example cannot be graded (a data problem)."""
        tests = example.get(self.spec.tests_field)
        if not isinstance(tests, list) or not tests:
            return [], f"example has no non-empty '{self.spec.tests_field}' list"
        key = "expected" if self.spec.mode == "function" else "expected_stdout"
        for i, t in enumerate(tests):
            if not isinstance(t, dict) or key not in t:
                return [], f"{self.spec.tests_field}[{i}] must be an object with '{key}'"
            if self.spec.mode == "function" and not (isinstance(t.get("args", []), list) and isinstance(t.get("kwargs", {}), dict)):
                return [], f"{self.spec.tests_field}[{i}]: 'args' must be a list and 'kwargs' an object"
            if self.spec.mode == "stdio" and not (isinstance(t.get("stdin", ""), str) and isinstance(t[key], str)):
                return [], f"{self.spec.tests_field}[{i}]: 'stdin' and '{key}' must be strings"
        if self.spec.mode == "function" and not isinstance(example.get(self.spec.entry_point_field), str):
            return [], f"example has no '{self.spec.entry_point_field}' (the function name to call)"
        return tests, None

    def _grade(self, run: RunResult, tests: list[dict[str, Any]]) -> Grade:
        events, by_index = parse_results(run.results, len(tests))
        base: dict[str, Any] = {"mode": self.spec.mode, "isolation": run.isolation, "wall_s": round(run.wall_s, 4)}
        if run.warning:
            base["isolation_warning"] = run.warning
        if "started" not in events:
            reason = "sandbox did not start: " + (run.stderr.decode("utf-8", "replace").strip()[-200:] or f"exit {run.returncode}")
            return Grade(0.0, False, reason, {**base, "error": "SandboxError"})
        first_missing = min((i for i in range(len(tests)) if i not in by_index), default=-1)
        outcomes = [self._outcome(i, t, by_index.get(i), events, run, i == first_missing) for i, t in enumerate(tests)]
        n_passed = sum(o["status"] == "passed" for o in outcomes)
        score = n_passed / len(tests) if self.spec.partial_credit else float(n_passed == len(tests))
        counts = {s: sum(o["status"] == s for o in outcomes) for s in STATUSES[1:]}
        summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        first_bad = next((f"test {i}: {o['message']}" for i, o in enumerate(outcomes) if o["status"] != "passed"), "")
        reason = f"{n_passed}/{len(tests)} tests passed" + (f" ({summary}); {first_bad}" if summary else "")
        details = {**base, "passed": n_passed, "total": len(tests), "tests": outcomes}
        if counts["timeout"]:
            details["timeout"] = True
        return Grade(score, n_passed == len(tests), reason[:300], details)

    def _outcome(self, i: int, test: dict[str, Any], result: dict[str, Any] | None,
                 events: dict[str, dict[str, Any]], run: RunResult, first_missing: bool) -> dict[str, str]:
        if result is None:
            return _missing(i, events, run, first_missing)
        status = result.get("status")
        if status != "ok":
            status = status if status in _FAILURE_STATUSES else "error"
            return {"status": status, "message": str(result.get("error", "reported no result"))[:200]}
        if self.spec.mode == "function":
            if "value" not in result:
                return {"status": "error", "message": "no value reported"}
            if strict_equal(result["value"], test["expected"], self.spec.float_tol):
                return {"status": "passed", "message": ""}
            return {"status": "failed", "message": f"expected {_short(test['expected'])}, got {_short(result['value'])}"}
        got = result.get("stdout")
        if not isinstance(got, str):
            return {"status": "error", "message": "no stdout reported"}
        if normalize_stdout(got) == normalize_stdout(test["expected_stdout"]):
            return {"status": "passed", "message": ""}
        return {"status": "failed", "message": stdout_diff(test["expected_stdout"], got)}


@functools.lru_cache(maxsize=None)
def _cached_sandbox(isolation: str, require_isolation: bool, python: str | None) -> Sandbox:
    return get_sandbox(isolation, require_isolation, python)


def parse_results(raw: bytes, n_tests: int) -> tuple[dict[str, dict[str, Any]], dict[int, dict[str, Any]]]:
    """Split the harness's JSON lines into events and per-test results (first line per test wins).

    The lines come from inside the sandbox and may be forged or malformed: anything that is not a
    JSON object with a valid ``event`` or ``i`` is ignored; only data is taken, never a verdict.
    """
    events: dict[str, dict[str, Any]] = {}
    by_index: dict[int, dict[str, Any]] = {}
    for line in raw.decode("utf-8", "replace").splitlines():
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if not isinstance(obj, dict):
            continue
        event, i = obj.get("event"), obj.get("i")
        if isinstance(event, str):
            events.setdefault(event, obj)
        elif type(i) is int and 0 <= i < n_tests:
            by_index.setdefault(i, obj)
    return events, by_index


def _missing(i: int, events: dict[str, dict[str, Any]], run: RunResult, first: bool) -> dict[str, str]:
    """Why test ``i`` has no result: the program failed to load, or the run ended early (at the
    first missing test; later tests get the same status with a "not run" message)."""
    load = events.get("load_error")
    if load is not None:
        status = load.get("status") if load.get("status") in _FAILURE_STATUSES else "error"
        return {"status": status, "message": "program failed to load: " + str(load.get("error", ""))[:180]}
    if run.output_limited:
        status, cause = "output_limit", "output limit reached; the sandbox was killed"
    elif run.timed_out:
        status, cause = "timeout", "wall-clock limit reached; the sandbox was killed"
    elif b"MemoryError" in run.stderr:
        status, cause = "memory", "the program ran out of memory"
    else:
        status, cause = "error", f"the sandbox ended ({_exit_text(run.returncode)})"
    return {"status": status, "message": cause if first else f"not run: {cause} during an earlier test"}


def _exit_text(returncode: int | None) -> str:
    """bwrap/unshare report a signal as 128+N, a direct child as -N."""
    sig = -returncode if returncode is not None and returncode < 0 else (returncode or 0) - 128
    if 0 < sig < 65:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(sig).name}"
        return f"killed by signal {sig}"
    return f"exit status {returncode}"


def strict_equal(got: Any, expected: Any, float_tol: float | None = None) -> bool:
    """JSON equality with exact types: bool != int != float, list vs dict by structure."""
    numeric = (int, float)
    if type(got) is not type(expected):
        if float_tol is not None and type(got) in numeric and type(expected) in numeric:
            return math.isclose(got, expected, rel_tol=float_tol, abs_tol=float_tol)
        return False
    if type(got) is list:
        return len(got) == len(expected) and all(strict_equal(g, e, float_tol) for g, e in zip(got, expected))
    if type(got) is dict:
        return got.keys() == expected.keys() and all(strict_equal(got[k], expected[k], float_tol) for k in expected)
    if type(got) is float and float_tol is not None:
        return math.isclose(got, expected, rel_tol=float_tol, abs_tol=float_tol)
    return got == expected


def normalize_stdout(text: str) -> str:
    """Strip trailing whitespace from every line and drop trailing blank lines; nothing else."""
    lines = [line.rstrip() for line in text.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def stdout_diff(expected: str, got: str) -> str:
    """A one-line diff: the first line that differs, or which output is longer."""
    exp, act = normalize_stdout(expected).split("\n"), normalize_stdout(got).split("\n")
    for n, (e, a) in enumerate(zip(exp, act), start=1):
        if e != a:
            return f"line {n}: expected {e[:60]!r}, got {a[:60]!r}"
    if len(act) < len(exp):
        return f"output ends after line {len(act)}; expected {len(exp)} lines"
    return f"extra output from line {len(exp) + 1}: {act[len(exp)][:60]!r}"


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."
