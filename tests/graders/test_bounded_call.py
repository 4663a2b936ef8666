"""bounded.call_bounded: a time and memory bound enforced from outside the work."""

from __future__ import annotations

import math
import time

import pytest

from rft.isolation.bounded import BoundedWorker, BoundExceeded, RemoteError


@pytest.fixture(scope="module")
def worker():
    w = BoundedWorker(memory_mb=1024)
    yield w
    w.close()


def test_returns_the_result(worker):
    assert worker.call(math.factorial, (5,), 5.0) == 120


def test_hang_in_c_code_is_killed_and_child_replaced(worker):
    t0 = time.monotonic()
    with pytest.raises(BoundExceeded) as info:
        worker.call(pow, (9, 9**9), 0.5)  # a long C-level bignum power: no signal handler would run
    assert info.value.timeout is True and time.monotonic() - t0 < 3.0
    assert worker.call(math.factorial, (3,), 5.0) == 6  # a fresh child answers


def test_exception_is_reported_not_raised_raw(worker):
    with pytest.raises(RemoteError, match="ValueError"):
        worker.call(math.factorial, (-1,), 5.0)


def test_memory_limit_ends_in_bound_exceeded(worker):
    with pytest.raises(BoundExceeded, match="memory"):
        worker.call(bytearray, (4 * 1024**3,), 5.0)
