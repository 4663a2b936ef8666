"""GraderPool.submit: grading runs in the workers while the caller does other work."""

from __future__ import annotations

import time

import pytest

from rft.data import Example
from rft.graders.pool import GraderPool

SLOW = """
import time
def grade(sample, item):
    time.sleep(0.2)
    return float(sample["output_text"] == item["answer"])
"""


def examples(n: int) -> list[Example]:
    return [Example(str(i), f"q{i}", {"answer": str(i)}) for i in range(n)]


def test_the_whole_batch_is_graded_while_the_caller_is_busy_and_wait_returns_it_in_order():
    with GraderPool({"type": "python", "source": SLOW}, workers=2, timeout_s=30.0) as pool:
        pool.grade(["0"], examples(1))  # start the workers
        exs = examples(8)
        completions = [str(i) if i % 3 else "no" for i in range(8)]
        pending = pool.submit(completions, exs)  # 8 chunks of 1: 2 go out now, the pump feeds the other 6
        deadline = time.monotonic() + 20.0  # the caller's "model work": it never touches the pool
        while any(r is None for r in pending.results) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert all(r is not None for r in pending.results), "the batch was not graded while the caller was busy"
        grades = pending.wait()
        assert [g.score for g in grades] == [float(i % 3 != 0) for i in range(8)]
        assert pending.wait() is grades  # waiting twice returns the same grades
        assert pool.pop_stats().metrics()["grader/python/count"] == 9


MISBEHAVING = """
import os, signal, time
def grade(sample, item):
    if sample["output_text"] == "hang":
        time.sleep(600)
    if sample["output_text"] == "crash":  # the grader's code runs in a host process: kill the worker above it
        os.kill(os.getppid(), signal.SIGKILL)
        time.sleep(600)
    return float(sample["output_text"] == item["answer"])
"""


@pytest.mark.parametrize("bad, error", [("hang", "Timeout"), ("crash", "WorkerCrash")])
def test_a_worker_lost_in_the_background_is_replaced_by_wait_and_the_batch_completes(bad, error):
    with GraderPool({"type": "python", "source": MISBEHAVING}, workers=2, timeout_s=1.0) as pool:
        pool.grade(["0"], examples(1))
        pids = {w.proc.pid for w in pool._pool}
        pending = pool.submit(["0", bad, "2", "3", "4", "5", "6", "7"], examples(8))
        time.sleep(2.0)  # past the timeout: the pump has stopped at the lost worker and replaced nobody
        assert {w.proc.pid for w in pool._pool} == pids and pool.replaced == 0
        grades = pending.wait()
        assert grades[1].score == 0.0 and grades[1].details["error"] == error, grades[1].reason
        assert [g.score for i, g in enumerate(grades) if i != 1] == [1.0] * 7  # the rest of its chunk was regraded
        assert pool.replaced == 1
        assert [g.score for g in pool.grade(["0", "1"], examples(2))] == [1.0, 1.0]  # the replacement works


def test_in_process_submit_grades_on_wait():
    with GraderPool({"type": "arithmetic"}, workers=0) as pool:
        pending = pool.submit(["3", "4"], [Example("a", "1+2=", {"answer": "3"}), Example("b", "2+2=", {"answer": "5"})])
        assert [g.score for g in pending.wait()] == [1.0, 0.0]
