"""Run graders over a batch of completions, in worker processes with a per-grade timeout.

``GraderPool.grade(completions, examples)`` returns one Grade per completion, in input order, and
never raises for a grader's fault. Each example is graded by its own ``grader`` spec when it has
one, else by the pool's default spec; every distinct spec is built once in the caller first, so a
bad spec raises :class:`SpecError` before any work starts.

``workers``: 0 grades in the calling process (no timeout: for tiny runs and tests); N > 0 uses N
worker processes; -1 one per available core. Workers are started lazily with ``spawn`` (safe next
to torch threads), each in its own process group, and die with the caller (pipe EOF, and on Linux
``PR_SET_PDEATHSIG``). Work is sent in chunks; a worker reports after every grade, so the grade
in flight is always known:

- it gets ``min(timeout_s, grader.timeout_s + 10)`` seconds (the grader's own bound, when it
  declares one, plus slack); past that its worker's process group is SIGKILLed, the grade becomes
  ``Grade(0, reason="timed out ...", details={"error": "Timeout", "timeout": True})``, the rest of
  its chunk goes back on the queue, and a fresh worker replaces it;
- if the worker dies (segfault, ``os._exit``, OOM kill), the grade becomes ``WorkerCrash``, same
  recovery;
- a grader exception becomes score 0 (``safe_grade``) inside the worker.
The result count is checked against the input count before returning.

``pop_stats()`` returns the :class:`~rft.graders.stats.GraderStats` of the grades since the last
call, per grader type; its ``metrics()`` are the ``grader/<type>/...`` metrics of metrics.jsonl.

``submit(completions, examples)`` returns at once with a :class:`PendingGrades`; a background
thread feeds and collects the batch while the caller does other work, and ``wait()`` returns the
grades (the GRPO loop runs the reference forward meanwhile).

Use one pool from one long-lived thread: on Linux a worker dies with the thread that started it
(a dead idle worker is replaced on the next batch); the background thread of ``submit`` starts and
kills no worker, it leaves that to ``wait()``. Not covered: sharing one grader object across
workers (each builds its own), retrying a grade that timed out, batch-level reward functions
(each grade is one call).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from rft.data import Example
from rft.graders.base import Grade, Grader, safe_grade
from rft.graders.judge_servers import LocalJudges
from rft.graders.registry import build
from rft.graders.stats import GraderStats
from rft.isolation.bounded import die_with_parent

STARTUP_TIMEOUT_S = 120.0  # a worker that cannot start is an environment problem: raise
SLACK_S = 10.0  # added to a grader's own bound: start-up of its bounded child, a loaded machine
Item = tuple[int, str, str, Example]  # (input index, spec key, completion, example)


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _worker_main(conn: Connection) -> None:
    """Worker loop: receive ``(specs, items)`` chunks, send ``(index, grade, seconds)`` per item."""
    die_with_parent()
    os.setpgrp()  # the pool kills the whole group: the worker and anything it started
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the caller's to handle
    graders: dict[str, Grader | str] = {}
    conn.send(("ready",))
    while True:
        try:
            specs, items = conn.recv()
        except EOFError:  # the pool closed the pipe
            return
        for key, spec in specs.items():
            try:
                graders[key] = build(spec)
            except Exception as e:  # noqa: BLE001 - reported per grade below, never raised
                graders[key] = f"building the grader failed: {type(e).__name__}: {e}"
        for index, key, completion, example in items:
            t0 = time.perf_counter()
            grader = graders[key]
            if isinstance(grader, str):
                grade = Grade(0.0, False, grader[:300], {"error": "BuildError"})
            else:
                grade = safe_grade(grader, completion, example)
            try:
                conn.send((index, grade, time.perf_counter() - t0))
            except (TypeError, ValueError, AttributeError) as e:  # unpicklable details
                bad = Grade(grade.score, grade.passed, grade.reason, {"error": "UnpicklableDetails", "detail": str(e)[:100]})
                conn.send((index, bad, time.perf_counter() - t0))


@dataclass
class _Worker:
    proc: multiprocessing.process.BaseProcess
    conn: Connection
    ready: bool = False
    known: set[str] = field(default_factory=set)
    pending: deque[Item] = field(default_factory=deque)
    clock: float = 0.0  # when the grade in flight started (as far as the pool can tell)
    started: float = field(default_factory=time.monotonic)


class GraderPool:
    def __init__(self, default_spec: dict[str, Any] | None, workers: int = 0, timeout_s: float = 10.0) -> None:
        if workers < -1:
            raise ValueError(f"workers = {workers}: use 0 (in-process), N > 0 processes, or -1 (one per core)")
        self.default_spec = default_spec
        self.workers = available_cores() if workers == -1 else workers
        self.timeout_s = timeout_s
        self._graders: dict[str, Grader] = {}
        self._specs: dict[str, dict[str, Any]] = {}
        self._pool: list[_Worker] = []
        self._stats = GraderStats()
        self.replaced = 0  # workers killed or lost and replaced, since creation
        self._pump_thread: threading.Thread | None = None
        self._judges = LocalJudges()  # loopback servers of local judges, started on first need
        self._finalizer = weakref.finalize(self, _shutdown, self._pool)
        self._judges_finalizer = weakref.finalize(self, self._judges.close)

    # -- specs ---------------------------------------------------------------------------------
    def _key_for(self, example: Example) -> str:
        spec = example.grader or self.default_spec
        if spec is None:
            raise ValueError(f"example {example.id!r} names no grader and no default grader is configured")
        key = json.dumps(spec, sort_keys=True, default=str)
        if key not in self._graders:
            grader = build(spec)  # raises SpecError now, not in a worker
            resolved = self._judges.resolve(spec)  # a local judge's server starts here (rft.graders.judge_servers)
            self._graders[key] = grader if resolved is spec else build(resolved)
            self._specs[key] = resolved
        return key

    def resolve(self, spec: dict[str, Any]) -> dict[str, Any]:
        """``spec`` with its local judges pointed at the servers this pool runs (rft.graders.judge_servers)."""
        return self._judges.resolve(spec)

    def _timeout_for(self, key: str) -> float:
        own = getattr(self._graders[key], "timeout_s", None)
        return min(self.timeout_s, own + SLACK_S) if own else self.timeout_s

    # -- grading -------------------------------------------------------------------------------
    def grade(self, completions: list[str], examples: list[Example]) -> list[Grade]:
        return self._submit(completions, examples, pump=False).wait()

    def submit(self, completions: list[str], examples: list[Example]) -> "PendingGrades":
        """Start grading and return at once; ``wait()`` on the result returns what :meth:`grade` does.

        With worker processes the first chunks go to the workers now and a background thread (the
        pump) feeds them the rest and collects the grades, so the whole batch is graded while the
        caller runs model work (e.g. the reference forward). The pump never kills or starts a
        worker: a timed-out, crashed or failed worker stops it, and ``wait()`` deals with that worker
        and finishes the batch on the caller's thread. In-process pools (``workers=0``) grade in
        ``wait()``. Bad specs raise here. One batch in flight at a time: ``wait()`` before the next."""
        return self._submit(completions, examples, pump=True)

    def _submit(self, completions: list[str], examples: list[Example], pump: bool) -> "PendingGrades":
        if len(completions) != len(examples):
            raise ValueError(f"{len(completions)} completions but {len(examples)} examples")
        keys = [self._key_for(ex) for ex in examples]
        self._join_pump()  # a batch that was never waited for
        pending = PendingGrades(self, completions, examples, keys)
        if self.workers > 0 and completions:
            # about 4 chunks per worker, so a worker with slow grades does not hold up the batch
            chunk = max(1, min(64, len(completions) // (self.workers * 4) or 1))
            pending.results, pending.queue = self._start(completions, examples, keys, chunk)
            if pump:
                self._pump_thread = threading.Thread(target=self._pump, args=(pending,), name="rft-grader-pump",
                                                     daemon=True)
                self._pump_thread.start()
        return pending

    def _pump(self, pending: "PendingGrades") -> None:
        """Background half of :meth:`submit`: feed idle workers and collect grades until the batch is
        done or a worker needs killing, replacing or reporting (left to ``wait()``: a worker started
        from this thread would die with it)."""
        try:
            remaining = sum(r is None for r in pending.results)  # type: ignore[union-attr]
            while remaining:
                if not self._feed(pending.queue, replace=False):
                    return
                done, trouble = self._receive(pending.results)  # type: ignore[arg-type]
                remaining -= done
                if trouble:
                    return
        except BaseException as e:  # noqa: BLE001 - handed to the caller by wait()
            pending.error = e

    def _join_pump(self) -> None:
        if self._pump_thread is not None:
            self._pump_thread.join()
            self._pump_thread = None

    def _finish(self, pending: "PendingGrades") -> list[Grade]:
        self._join_pump()
        if pending.error is not None:
            raise RuntimeError(f"grading in the background failed: {type(pending.error).__name__}: {pending.error}") \
                from pending.error
        completions, examples, keys = pending.completions, pending.examples, pending.keys
        if self.workers == 0:
            results = self._grade_in_process(completions, examples, keys)
        elif pending.results is None:  # nothing was started (an empty batch)
            results = []
        else:
            results = self._drain(pending.results, pending.queue)
        missing = [i for i, r in enumerate(results) if r is None]
        if missing or len(results) != len(completions):
            raise RuntimeError(f"grader pool lost {len(missing)} of {len(completions)} results (indices {missing[:5]})")
        grades = []
        for key, (grade, seconds) in zip(keys, results):  # type: ignore[misc]
            self._stats.add(str(self._specs[key]["type"]), grade, seconds)
            grades.append(grade)
        return grades

    def _grade_in_process(self, completions: list[str], examples: list[Example], keys: list[str]) -> list[Any]:
        results = []
        for completion, example, key in zip(completions, examples, keys):
            t0 = time.perf_counter()
            grade = safe_grade(self._graders[key], completion, example)
            results.append((grade, time.perf_counter() - t0))
        return results

    def _start(self, completions: list[str], examples: list[Example], keys: list[str],
               chunk: int) -> tuple[list[Any], deque[list[Item]]]:
        """Queue the batch in chunks and hand one chunk to each idle worker; returns (results, queue)."""
        n = len(completions)
        results: list[Any] = [None] * n
        items: list[Item] = [(i, keys[i], completions[i], examples[i]) for i in range(n)]
        queue: deque[list[Item]] = deque(items[i : i + chunk] for i in range(0, n, chunk))
        while len(self._pool) < self.workers:
            self._pool.append(self._spawn())
        self._feed(queue)
        return results, queue

    def _feed(self, queue: deque[list[Item]], replace: bool = True) -> bool:
        """Hand a chunk to each idle worker. A worker found dead is replaced, or with ``replace=False``
        left for the caller's thread: returns False then."""
        for slot, worker in enumerate(self._pool):
            if not worker.pending and queue:
                chunk = queue.popleft()
                try:
                    self._dispatch(worker, chunk)
                except OSError:  # it died while idle (OOM killer, its parent thread exited)
                    queue.appendleft(chunk)
                    if not replace:
                        return False
                    _kill(worker)
                    self.replaced += 1
                    self._pool[slot] = self._spawn()
        return True

    def _drain(self, results: list[Any], queue: deque[list[Item]]) -> list[Any]:
        remaining = sum(r is None for r in results)
        while remaining:
            self._feed(queue)
            remaining -= self._collect(results, queue)
        return results

    def _spawn(self) -> _Worker:
        ctx = multiprocessing.get_context("spawn")
        parent_conn, child_conn = ctx.Pipe()
        proc = ctx.Process(target=_worker_main, args=(child_conn,), daemon=False, name="rft-grader")
        proc.start()
        child_conn.close()
        return _Worker(proc, parent_conn)

    def _dispatch(self, worker: _Worker, items: list[Item]) -> None:
        specs = {key: self._specs[key] for _, key, _, _ in items if key not in worker.known}
        worker.conn.send((specs, items))
        worker.known.update(specs)
        worker.pending.extend(items)
        worker.clock = time.monotonic()

    def _collect(self, results: list[Any], queue: deque[list[Item]]) -> int:
        """Wait for the next events; store results; handle timeouts and crashes. Returns #results."""
        done, trouble = self._receive(results)
        for slot, worker, lost, timed_out in trouble:
            if not worker.ready:
                _kill(worker)
                raise RuntimeError(f"a grader worker failed to start (exit code {worker.proc.exitcode})")
            done += self._replace(slot, worker, results, queue, timed_out=timed_out and not lost)
        return done

    def _receive(self, results: list[Any]) -> tuple[int, list[tuple[int, _Worker, bool, bool]]]:
        """Wait for the next events and store the grades that came. Returns (#results, the workers
        in trouble as (slot, worker, lost, timed out)): lost or timed out, or failed to start."""
        now = time.monotonic()
        busy = [w for w in self._pool if w.pending and w.ready]
        deadlines = [w.clock + self._timeout_for(w.pending[0][1]) for w in busy]
        wait_s = max(0.0, min(deadlines) - now) if deadlines else 1.0
        wait([w.conn for w in self._pool] + [w.proc.sentinel for w in self._pool], timeout=wait_s)
        done = 0
        trouble = []
        for slot, worker in enumerate(list(self._pool)):
            lost = False
            try:
                while worker.conn.poll():
                    message = worker.conn.recv()
                    if message[0] == "ready":
                        worker.ready, worker.clock = True, time.monotonic()
                        continue
                    index, grade, seconds = message
                    worker.pending.popleft()
                    results[index] = (grade, seconds)
                    worker.clock = time.monotonic()
                    done += 1
            except (EOFError, OSError):
                lost = True
            lost = lost or not worker.proc.is_alive()
            failed_start = not worker.ready and (lost or time.monotonic() - worker.started > STARTUP_TIMEOUT_S)
            timed_out = bool(worker.pending and worker.ready
                             and time.monotonic() - worker.clock > self._timeout_for(worker.pending[0][1]))
            if failed_start or (worker.ready and lost) or timed_out:
                trouble.append((slot, worker, lost, timed_out))
        return done, trouble

    def _replace(self, slot: int, worker: _Worker, results: list[Any], queue: deque[list[Item]], timed_out: bool) -> int:
        """Kill ``worker``, fail its grade in flight, requeue the rest of its chunk, start a new one."""
        if not timed_out:
            worker.proc.join(timeout=2.0)  # EOF can arrive before the exit is reaped: wait for the code
        code = worker.proc.exitcode
        _kill(worker)
        self.replaced += 1
        self._pool[slot] = self._spawn()
        if not worker.pending:
            return 0
        index, key, _, _ = worker.pending.popleft()
        if timed_out:
            limit = self._timeout_for(key)
            grade = Grade(0.0, False, f"timed out after {limit:g}s; worker killed and replaced", {"error": "Timeout", "timeout": True})
            results[index] = (grade, limit)
        else:
            grade = Grade(0.0, False, f"grader worker crashed (exit code {code}); replaced", {"error": "WorkerCrash"})
            results[index] = (grade, 0.0)
        if worker.pending:
            queue.appendleft(list(worker.pending))
        return 1

    # -- statistics ----------------------------------------------------------------------------
    def count(self, kind: str, grade: Grade) -> None:
        """Count a grade made outside the pool (an episode's own: kind ``environment``) in its statistics."""
        self._stats.add(kind, grade, 0.0)

    def pop_stats(self) -> GraderStats:
        """The statistics of every grade since the last call (validation's apart from training's)."""
        stats, self._stats = self._stats, GraderStats()
        return stats

    # -- lifetime ------------------------------------------------------------------------------
    def close(self) -> None:
        self._join_pump()
        _shutdown(self._pool)
        self._judges.close()
        self._graders.clear()
        self._specs.clear()

    def __enter__(self) -> "GraderPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class PendingGrades:
    """A batch handed to :meth:`GraderPool.submit`; ``wait()`` returns its grades, in input order."""

    pool: GraderPool
    completions: list[str]
    examples: list[Example]
    keys: list[str]
    results: list[Any] | None = None
    queue: deque[list[Item]] = field(default_factory=deque)
    error: BaseException | None = None  # what stopped the background pump, raised by wait()
    _grades: list[Grade] | None = None

    def wait(self) -> list[Grade]:
        if self._grades is None:
            self._grades = self.pool._finish(self)
        return self._grades


def _kill(worker: _Worker) -> None:
    worker.conn.close()
    if worker.proc.is_alive():
        try:
            os.killpg(worker.proc.pid, signal.SIGKILL)  # type: ignore[arg-type]
        except ProcessLookupError:  # not yet in its own group, or already gone
            worker.proc.kill()
    worker.proc.join(timeout=5)


def _shutdown(pool: list[_Worker]) -> None:
    for worker in pool:
        _kill(worker)
    pool.clear()
