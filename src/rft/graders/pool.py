"""Run graders over a batch of completions and keep per-grader statistics.

``GraderPool.grade(completions, examples)`` returns one Grade per completion, in order, and never
raises for a grader's fault. Each example is graded by its own ``grader`` spec when it has one,
else by the pool's default spec. ``pop_stats()`` returns flat metrics since the last call:
``grader/<type>/{mean,pass_rate,errors,timeouts,latency_ms,count}``.

This version grades in the calling process (``workers=0``). Worker processes with per-grade
timeouts plug in behind the same two methods.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from typing import Any

from rft.data import Example
from rft.graders.base import Grade, Grader, safe_grade
from rft.graders.registry import build


class GraderPool:
    def __init__(self, default_spec: dict[str, Any] | None, workers: int = 0, timeout_s: float = 10.0) -> None:
        self.default_spec = default_spec
        self.workers = workers
        self.timeout_s = timeout_s
        self._graders: dict[str, Grader] = {}
        self._stats: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))

    def _spec_for(self, example: Example) -> dict[str, Any]:
        spec = example.grader or self.default_spec
        if spec is None:
            raise ValueError(f"example {example.id!r} names no grader and no default grader is configured")
        return spec

    def _grader(self, spec: dict[str, Any]) -> Grader:
        key = json.dumps(spec, sort_keys=True, default=str)
        if key not in self._graders:
            self._graders[key] = build(spec)
        return self._graders[key]

    def grade(self, completions: list[str], examples: list[Example]) -> list[Grade]:
        if len(completions) != len(examples):
            raise ValueError(f"{len(completions)} completions but {len(examples)} examples")
        grades = []
        for completion, example in zip(completions, examples):
            spec = self._spec_for(example)
            t0 = time.perf_counter()
            grade = safe_grade(self._grader(spec), completion, example)
            self._record(str(spec["type"]), grade, time.perf_counter() - t0)
            grades.append(grade)
        return grades

    def _record(self, kind: str, grade: Grade, seconds: float) -> None:
        s = self._stats[kind]
        s["count"] += 1
        s["score_sum"] += grade.score
        s["passed"] += bool(grade.passed)
        s["errors"] += grade.errored
        s["timeouts"] += bool(grade.details.get("timeout"))
        s["seconds"] += seconds

    def pop_stats(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for kind, s in self._stats.items():
            n = max(s["count"], 1)
            out[f"grader/{kind}/count"] = s["count"]
            out[f"grader/{kind}/mean"] = s["score_sum"] / n
            out[f"grader/{kind}/pass_rate"] = s["passed"] / n
            out[f"grader/{kind}/errors"] = s["errors"]
            out[f"grader/{kind}/timeouts"] = s["timeouts"]
            out[f"grader/{kind}/latency_ms"] = 1000 * s["seconds"] / n
        self._stats.clear()
        return out

    def close(self) -> None:
        self._graders.clear()

    def __enter__(self) -> "GraderPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
