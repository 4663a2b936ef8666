"""Sandboxed test-suite executions per second for the ``code`` grader, with the cost broken down.

    python bench/sandbox_bench.py [--seconds 5] [--isolation auto] [--skip-pool]

One execution = one ``CodeGrader`` call on a trivial function with 5 tests (a fresh sandbox and a
fresh interpreter per call, all 5 tests inside it). Issue 4's target: >= 30 executions/s on the
2-core reference machine. The breakdown times, one layer at a time, the same launch the grader does
(same uid switch, same bwrap arguments), and reports each layer as a difference:

- process start:      spawn + wait of ``/bin/true``
- isolation set-up:   ``bwrap ... /bin/true``  minus process start
- interpreter start:  ``bwrap ... python -I -S -B -c pass``  minus the two above
- harness + 5 tests:  ``Sandbox.run`` (payload, limits, 5 calls, result lines)  minus the above
- grading:            ``CodeGrader.__call__``  minus ``Sandbox.run`` (extraction, parse, compare)

The layers run round-robin so they see the same background load; the median and the minimum
(close to the cost on a quiet machine) are both reported. A difference of medians can come out
slightly negative when a layer costs less than the noise.

Then throughput: one stream in this process, two threads in this process (subprocess waits release
the GIL), and the GraderPool with 2 worker processes. A benchmark, not a test: the numbers depend on
the machine and on what else runs on it (median per-call times are printed to make noise visible).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from typing import Callable

from rft.data import Example
from rft.graders.code import CodeGrader
from rft.graders.pool import GraderPool
from rft.isolation.sandbox import _ENV, _command, _popen_ids, _run_uid

PROGRAM = "```python\ndef f(x):\n    return 2 * x\n```"
EXAMPLE = Example("bench", "double it", {"entry_point": "f", "tests": [{"args": [i], "expected": 2 * i} for i in range(5)]})


def spawn(argv: list[str], mode: str) -> Callable[[], object]:
    def run() -> object:
        return subprocess.run(argv, env=_ENV, cwd="/", start_new_session=True, capture_output=True,
                              **_popen_ids(mode, _run_uid()))
    return run


def breakdown(grader: CodeGrader, seconds: float) -> list[tuple[str, float, float]]:
    sandbox = grader.sandbox()
    mode, python = sandbox.isolation, sandbox.python
    launcher = _command(mode, python, grader.limits(5), _run_uid())[: -len([python, "-I", "-S", "-B"])]
    payload = {"mode": "function", "program": "def f(x):\n    return 2 * x\n", "entry_point": "f",
               "tests": [{"args": [i], "kwargs": {}} for i in range(5)], "tuple_as_list": False}
    layers = [
        ("process start", spawn(["/bin/true"], mode)),
        ("isolation set-up", spawn(launcher + ["/bin/true"], mode) if launcher else spawn(["/bin/true"], mode)),
        ("interpreter start", spawn(launcher + [python, "-I", "-S", "-B", "-c", "pass"], mode)),
        ("harness + 5 tests", lambda: sandbox.run(payload, grader.limits(5))),
        ("grading", lambda: grader(PROGRAM, EXAMPLE)),
    ]
    for _, fn in layers:
        for _ in range(3):
            fn()  # warm-up: probes, page cache
    # Round-robin, so that every layer sees the same background load; report median and minimum
    # (the minimum approximates the cost on a quiet machine).
    times: list[list[float]] = [[] for _ in layers]
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for k, (_, fn) in enumerate(layers):
            t0 = time.perf_counter()
            fn()
            times[k].append(1000 * (time.perf_counter() - t0))
    rows, previous = [], (0.0, 0.0)
    for (name, _), samples in zip(layers, times):
        now = (statistics.median(samples), min(samples))
        rows.append((name, now[0] - previous[0], now[1] - previous[1]))
        previous = now
    rows.append(("total per execution", *previous))
    return rows


def throughput_threads(grader: CodeGrader, threads: int, seconds: float) -> float:
    counts = [0] * threads
    end = time.monotonic() + seconds

    def loop(k: int) -> None:
        while time.monotonic() < end:
            grade = grader(PROGRAM, EXAMPLE)
            assert grade.score == 1.0, grade.reason
            counts[k] += 1

    workers = [threading.Thread(target=loop, args=(k,)) for k in range(threads)]
    t0 = time.monotonic()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(counts) / (time.monotonic() - t0)


def throughput_pool(spec: dict, workers: int, n: int) -> float:
    with GraderPool(spec, workers=workers) as pool:
        pool.grade([PROGRAM] * workers * 2, [EXAMPLE] * workers * 2)  # start and warm the workers
        t0 = time.monotonic()
        grades = pool.grade([PROGRAM] * n, [EXAMPLE] * n)
        elapsed = time.monotonic() - t0
    assert all(g.score == 1.0 for g in grades), grades[0].reason
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="time per measurement")
    parser.add_argument("--isolation", default="auto", help="auto, bwrap, unshare or none")
    parser.add_argument("--skip-pool", action="store_true", help="skip the GraderPool measurement")
    args = parser.parse_args()

    spec = {"type": "code", "mode": "function", "isolation": args.isolation}
    grader = CodeGrader.from_spec(spec)
    sandbox = grader.sandbox()
    print(f"isolation: {sandbox.isolation}   interpreter: {sandbox.python}   "
          f"cores: {len(os.sched_getaffinity(0))}   caller uid: {os.geteuid()}   python: {sys.version.split()[0]}")
    print(f"load average at start: {os.getloadavg()[0]:.2f}\n")
    print("| layer | median ms | min ms |\n|---|---|---|")
    for name, median, best in breakdown(grader, args.seconds):
        print(f"| {name} | {median:.1f} | {best:.1f} |")
    print("\n| throughput (trivial function, 5 tests) | executions/s |\n|---|---|")
    print(f"| 1 stream | {throughput_threads(grader, 1, args.seconds):.1f} |")
    print(f"| 2 threads, one process | {throughput_threads(grader, 2, args.seconds):.1f} |")
    if not args.skip_pool:
        print(f"| GraderPool, 2 workers | {throughput_pool(spec, 2, int(40 * args.seconds)):.1f} |")
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
