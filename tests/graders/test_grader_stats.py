"""GraderStats: sums per grader type that merge by adding; the flat metrics made once from them."""

import pytest

from rft.graders.base import Grade
from rft.graders.stats import GraderStats


def _stats(*grades: tuple[str, Grade, float]) -> GraderStats:
    out = GraderStats()
    for kind, grade, seconds in grades:
        out.add(kind, grade, seconds)
    return out


def test_metrics_are_totals_and_means_per_grader_type():
    stats = _stats(("math", Grade(1.0, True), 0.002), ("math", Grade(0.0, False, details={"error": "Timeout",
                                                                                          "timeout": True}), 0.004),
                   ("multi", Grade(0.5, details={"components": {"format": 1.0, "correct": 0.0}}), 0.0))
    m = stats.metrics()
    assert m["grader/math/count"] == 2 and m["grader/math/mean"] == 0.5 and m["grader/math/pass_rate"] == 0.5
    assert m["grader/math/errors"] == 1 and m["grader/math/timeouts"] == 1 and m["grader/math/skipped"] == 0
    assert m["grader/math/latency_ms"] == pytest.approx(3.0)
    assert m["grader/multi/format"] == 1.0 and m["grader/multi/correct"] == 0.0
    assert m["grader/multi/pass_rate"] == 0.0  # partial credit without a verdict is no pass


def test_two_ranks_merge_to_the_statistics_of_the_whole_batch():
    """Means are weighted by each part's counts, components by their own counts (a part where a
    grade reported no components does not dilute them), every type of either part kept."""
    grades = [("math", Grade(1.0, True), 0.001), ("math", Grade(0.0, False), 0.003),
              ("multi", Grade(1.0, details={"components": {"format": 1.0}}), 0.0),
              ("math", Grade(1.0, True), 0.002), ("multi", Grade(0.0), 0.0),
              ("multi", Grade(0.5, details={"components": {"format": 0.0}}), 0.0), ("regex", Grade(0.0), 0.0)]
    whole = _stats(*grades).metrics()
    merged = GraderStats.merged([_stats(*grades[:3]), _stats(*grades[3:])]).metrics()
    assert merged == pytest.approx(whole)
    assert merged["grader/math/mean"] == pytest.approx(2 / 3) and merged["grader/multi/format"] == 0.5
    assert merged["grader/regex/count"] == 1 and set(merged) == set(whole)


def test_merging_with_nothing_changes_nothing():
    stats = _stats(("math", Grade(0.3), 0.01), ("math", Grade(0.7), 0.02))
    assert GraderStats.merged([stats]).metrics() == stats.metrics()
    assert GraderStats.merged([]).metrics() == {}
