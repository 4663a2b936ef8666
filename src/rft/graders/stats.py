"""Grader statistics of a batch, per grader type: what :meth:`GraderPool.pop_stats` returns.

Kept as sums (grades, score, passes, skips, errors, timeouts, seconds, and each component's sum and
count), so that the statistics of two batches -- two ranks' shares of a step under torchrun -- merge
exactly by adding them (:meth:`GraderStats.merge`). The flat metrics of ``metrics.jsonl`` are made
in one place, :meth:`GraderStats.metrics`:

    grader/<type>/count, skipped, errors, timeouts   totals (errors include timeouts)
    grader/<type>/mean, pass_rate                    score sum / count, passes / count
    grader/<type>/latency_ms                         mean wall time of one grade in its worker
    grader/<type>/<component>                        mean of ``details["components"][component]``
    grader/<type>/judge_calls, judge_cached          requests sent to a model grader's judge, and answered
                                                     from its cache (``details["judge"]``, rft.graders.judge)
    grader/<type>/judge_failure_rate                 judgments that gave no valid score or label / judgments
    grader/<type>/judge_latency_ms                   mean wall time of one request to the judge
    grader/<type>/judge_prompt_tokens, judge_completion_tokens   mean tokens per request (the server's usage)

Passes are counted as :func:`passed_of` counts them; scores refused by the score gate
(:func:`rft.graders.base.checked`) count as errors. A component that is not a finite number (a
verifiers reward's NaN) is left out of its mean. Components are what ``multi`` graders report,
so shaping terms are logged apart from correctness.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from rft.graders.base import Grade, passed_of


@dataclass
class KindStats:
    """The sums of one grader type's grades (floats, as metrics.jsonl has always logged them)."""

    count: float = 0.0
    score_sum: float = 0.0
    passed: float = 0.0
    skipped: float = 0.0
    errors: float = 0.0
    timeouts: float = 0.0
    seconds: float = 0.0
    components: dict[str, tuple[float, int]] = field(default_factory=dict)  # name -> (sum, count)
    judge: dict[str, float] = field(default_factory=dict)  # sums of details["judge"] (calls, seconds, tokens...)

    def add(self, grade: Grade, seconds: float) -> None:
        self.count += 1
        self.score_sum += grade.score
        self.passed += passed_of(grade)
        self.skipped += grade.skipped
        self.errors += grade.errored
        self.timeouts += bool(grade.details.get("timeout"))
        self.seconds += seconds
        judge = grade.details.get("judge")
        if isinstance(judge, dict):
            for name, value in judge.items():
                if _finite(value):
                    self.judge[str(name)] = self.judge.get(str(name), 0.0) + float(value)
        components = grade.details.get("components")
        if isinstance(components, dict):
            for name, value in components.items():
                if _finite(value):  # a NaN term must not make its mean null
                    total, n = self.components.get(str(name), (0.0, 0))
                    self.components[str(name)] = (total + float(value), n + 1)

    def merge(self, other: KindStats) -> KindStats:
        components = dict(self.components)
        for name, (total, n) in other.components.items():
            total0, n0 = components.get(name, (0.0, 0))
            components[name] = (total0 + total, n0 + n)
        judge = {k: self.judge.get(k, 0.0) + other.judge.get(k, 0.0) for k in {**self.judge, **other.judge}}
        return KindStats(self.count + other.count, self.score_sum + other.score_sum, self.passed + other.passed,
                         self.skipped + other.skipped, self.errors + other.errors, self.timeouts + other.timeouts,
                         self.seconds + other.seconds, components, judge)


def _finite(value: object) -> bool:
    try:
        return isinstance(value, (int, float)) and math.isfinite(value)
    except OverflowError:  # an int past float's range
        return False


@dataclass
class GraderStats:
    """Per grader type (``spec["type"]``), the sums of its grades since the pool last handed them out."""

    kinds: dict[str, KindStats] = field(default_factory=dict)

    def add(self, kind: str, grade: Grade, seconds: float) -> None:
        self.kinds.setdefault(kind, KindStats()).add(grade, seconds)

    def merge(self, other: GraderStats) -> GraderStats:
        """The statistics of both batches together: every sum added."""
        kinds = dict.fromkeys([*self.kinds, *other.kinds])
        return GraderStats({k: self.kinds.get(k, KindStats()).merge(other.kinds.get(k, KindStats())) for k in kinds})

    @staticmethod
    def merged(parts: list[GraderStats]) -> GraderStats:
        out = GraderStats()
        for part in parts:
            out = out.merge(part)
        return out

    def metrics(self) -> dict[str, float]:
        """The flat ``grader/<type>/...`` metrics (the module docstring lists them)."""
        out: dict[str, float] = {}
        for kind, s in self.kinds.items():
            n = max(s.count, 1)
            out[f"grader/{kind}/count"] = s.count
            out[f"grader/{kind}/mean"] = s.score_sum / n
            out[f"grader/{kind}/pass_rate"] = s.passed / n
            out[f"grader/{kind}/skipped"] = s.skipped
            out[f"grader/{kind}/errors"] = s.errors
            out[f"grader/{kind}/timeouts"] = s.timeouts
            out[f"grader/{kind}/latency_ms"] = 1000 * s.seconds / n
        for kind, s in self.kinds.items():
            for name, (total, count) in s.components.items():
                out[f"grader/{kind}/{name}"] = total / count
            if s.judge:
                j, calls = s.judge, max(s.judge.get("calls", 0.0), 1.0)
                out[f"grader/{kind}/judge_calls"] = j.get("calls", 0.0)
                out[f"grader/{kind}/judge_cached"] = j.get("cached", 0.0)
                out[f"grader/{kind}/judge_failure_rate"] = j.get("failures", 0.0) / max(j.get("judgments", 0.0), 1.0)
                out[f"grader/{kind}/judge_latency_ms"] = 1000 * j.get("seconds", 0.0) / calls
                out[f"grader/{kind}/judge_prompt_tokens"] = j.get("prompt_tokens", 0.0) / calls
                out[f"grader/{kind}/judge_completion_tokens"] = j.get("completion_tokens", 0.0) / calls
        return out
