"""GraderPool.submit: grading runs in the workers while the caller does other work."""

from __future__ import annotations

import time

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


def test_submitted_grades_arrive_while_the_caller_is_busy_and_wait_returns_them_in_order():
    with GraderPool({"type": "python", "source": SLOW}, workers=2, timeout_s=30.0) as pool:
        pool.grade(["0"], examples(1))  # start the workers
        exs = examples(8)
        completions = [str(i) if i % 3 else "no" for i in range(8)]
        pending = pool.submit(completions, exs)
        deadline = time.monotonic() + 20.0  # the caller's "model work": it never touches the pool
        while not all(w.conn.poll() for w in pool._pool) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert all(w.conn.poll() for w in pool._pool), "workers sent no grade while the caller was busy"
        grades = pending.wait()
        assert [g.score for g in grades] == [float(i % 3 != 0) for i in range(8)]
        assert pending.wait() is grades  # waiting twice returns the same grades
        assert pool.pop_stats()["grader/python/count"] == 9


def test_in_process_submit_grades_on_wait():
    with GraderPool({"type": "arithmetic"}, workers=0) as pool:
        pending = pool.submit(["3", "4"], [Example("a", "1+2=", {"answer": "3"}), Example("b", "2+2=", {"answer": "5"})])
        assert [g.score for g in pending.wait()] == [1.0, 0.0]
