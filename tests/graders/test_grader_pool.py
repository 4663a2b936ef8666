"""GraderPool: worker processes, per-grade timeouts, crash recovery, order, counts and stats."""

from __future__ import annotations

import time

import pytest

from rft.config.base import SpecError
from rft.data import Example
from rft.graders.pool import GraderPool

MISBEHAVING = """
import os, time
def grade(sample, item):
    text = sample["output_text"]
    if text == "hang":
        time.sleep(600)
    if text == "crash":
        os._exit(7)
    if text == "raise":
        raise ValueError("grader bug")
    return float(text == item["answer"])
"""
SPEC = {"type": "python", "source": MISBEHAVING}


def examples(n: int) -> list[Example]:
    return [Example(str(i), f"q{i}", {"answer": str(i)}) for i in range(n)]


@pytest.fixture(scope="module")
def pool():
    with GraderPool(SPEC, workers=2, timeout_s=1.0) as p:
        yield p


def test_results_come_back_in_input_order(pool):
    exs = examples(40)
    completions = [str(i) if i % 2 else "wrong" for i in range(40)]
    grades = pool.grade(completions, exs)
    assert [g.score for g in grades] == [float(i % 2) for i in range(40)]
    pool.pop_stats()


def test_hung_grade_times_out_and_worker_is_replaced(pool):
    exs = examples(6)
    completions = ["0", "hang", "2", "3", "4", "5"]
    replaced = pool.replaced
    t0 = time.monotonic()
    grades = pool.grade(completions, exs)
    assert time.monotonic() - t0 < 8.0
    assert grades[1].score == 0.0 and grades[1].details["timeout"] is True
    assert [g.score for i, g in enumerate(grades) if i != 1] == [1.0] * 5  # the rest of its chunk was regraded
    assert pool.replaced == replaced + 1
    stats = pool.pop_stats().metrics()
    assert stats["grader/python/timeouts"] == 1 and stats["grader/python/count"] == 6


def test_crashing_grader_becomes_a_grade(pool):
    grades = pool.grade(["crash", "1", "2"], examples(3))  # the user code's host dies, not the worker
    assert grades[0].score == 0.0 and grades[0].details["error"] == "HostCrash", grades[0].reason
    assert "exit code 7" in grades[0].reason
    assert [g.score for g in grades[1:]] == [1.0, 1.0]
    pool.pop_stats()


def test_grader_exception_becomes_a_zero_grade(pool):
    pool.pop_stats()
    grades = pool.grade(["raise", "1"], examples(2))
    assert grades[0].score == 0.0 and "grader bug" in grades[0].reason
    assert pool.pop_stats().metrics()["grader/python/errors"] == 1


def test_pool_keeps_working_after_failures(pool):
    grades = pool.grade([str(i) for i in range(10)], examples(10))
    assert all(g.score == 1.0 for g in grades)
    pool.pop_stats()


def test_count_mismatch_is_refused(pool):
    with pytest.raises(ValueError, match="2 completions but 3 examples"):
        pool.grade(["a", "b"], examples(3))


def test_bad_row_spec_raises_before_any_work():
    bad = Example("x", "p", {}, grader={"type": "regex"})
    with GraderPool(None, workers=0) as p, pytest.raises(SpecError, match="pattern"):
        p.grade(["a"], [bad])


def test_rows_route_to_their_own_grader_and_stats_split_by_type():
    rows = [
        Example("a", "p", {"answer": "4"}, grader={"type": "string_check"}),
        Example("b", "p", {}, grader={"type": "regex", "pattern": r"\d+"}),
        Example("c", "p", {"answer": "4"}),
    ]
    with GraderPool({"type": "arithmetic"}, workers=0) as p:
        grades = p.grade(["4", "x", "4"], rows)
        stats = p.pop_stats().metrics()
    assert [g.score for g in grades] == [1.0, 0.0, 1.0]
    assert stats["grader/string_check/count"] == 1 and stats["grader/regex/pass_rate"] == 0.0
    assert stats["grader/arithmetic/mean"] == 1.0
    assert p.pop_stats().metrics() == {}  # popped


def test_multi_components_are_logged_separately():
    spec = {
        "type": "multi",
        "graders": {"correct": {"type": "string_check"}, "long": {"type": "overlong", "max_length": 4, "cache_length": 2}},
        "weights": {"correct": 1.0, "long": 1.0},
    }
    with GraderPool(spec, workers=0) as p:
        p.grade(["4", "44444"], [Example("a", "p", {"answer": "4"}), Example("b", "p", {"answer": "4"})])
        stats = p.pop_stats().metrics()
    assert stats["grader/multi/correct"] == 0.5 and stats["grader/multi/long"] == -0.5
    assert stats["grader/multi/mean"] == 0.0


def test_missing_default_spec_is_an_error():
    with GraderPool(None, workers=0) as p, pytest.raises(ValueError, match="no default grader"):
        p.grade(["a"], [Example("a", "p", {})])


def test_worker_that_died_while_idle_is_replaced(pool):
    import os
    import signal

    pool.grade(["0"], examples(1))  # make sure workers exist
    os.kill(pool._pool[0].proc.pid, signal.SIGKILL)
    pool._pool[0].proc.join(timeout=5)
    grades = pool.grade([str(i) for i in range(8)], examples(8))
    assert [g.score for g in grades] == [1.0] * 8
    pool.pop_stats()


def test_pass_rate_counts_full_scores_without_a_verdict_and_skipped_rows_apart():
    spec = {"type": "python", "source": "def grade(sample, item):\n    return float(sample['output_text'] == '4')"}
    rows = [Example("a", "p", {}), Example("b", "p", {}), Example("c", "p", {}, grader={"type": "arithmetic"})]
    with GraderPool(spec, workers=0) as p:
        p.grade(["4", "5", "4"], rows)  # row c: the arithmetic grader has no answer field to compare to
        stats = p.pop_stats().metrics()
    assert stats["grader/python/pass_rate"] == 0.5 and stats["grader/python/skipped"] == 0
    assert stats["grader/arithmetic/pass_rate"] == 0.0 and stats["grader/arithmetic/skipped"] == 1
