"""Run a trusted function on untrusted input with a wall-clock and memory bound enforced from outside.

Why: SymPy (and the LaTeX parser in front of it) can spend unbounded time or memory on a short
input (``9^{9^{9^9}}``, ``10000000!``), often inside C code where no signal handler runs, and
math-verify's own ``signal.alarm`` timeouts only work on the main thread. So the work runs in a
persistent child process; the caller waits at most ``timeout_s`` for the answer and otherwise
SIGKILLs the child (and its process group) and starts a fresh one on the next call.

- ``call_bounded(fn, args, timeout_s)`` returns ``fn(*args)`` or raises :class:`BoundExceeded`
  (timeout, memory limit, crash) or :class:`RemoteError` (the function raised).
- ``fn`` must be a module-level function (it is sent by reference); args and result must pickle.
- The child has ``RLIMIT_AS`` = ``memory_mb`` so a blow-up ends in MemoryError, not in swapping.
- One child per (process, memory_mb); calls from several threads are serialised by a lock.

Not covered: isolation. The child is an ordinary process with the caller's rights; use it for
*trusted code on untrusted data* (a parser), never to run model-written code (that is the sandbox's
job). A hang costs the timeout plus a restart (~0.5 s, the child re-imports its modules).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import resource
import signal
import sys
import threading
import weakref
from multiprocessing.connection import Connection
from typing import Any, Callable


class BoundExceeded(RuntimeError):
    """The call ran past its time bound, hit the memory limit, or its child process died."""

    def __init__(self, message: str, *, timeout: bool) -> None:
        super().__init__(message)
        self.timeout = timeout


class RemoteError(RuntimeError):
    """The bounded function raised; carries the exception's type name and message."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when the thread that started it exits (no-op elsewhere)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)


def _child_main(conn: Connection, memory_mb: int) -> None:
    die_with_parent()
    os.setpgrp()  # its own group: a terminal's Ctrl-C goes to the caller, which decides
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    while True:
        try:
            message = conn.recv()  # unpickling ("load", fn) imports fn's module
        except EOFError:  # the parent closed the pipe: nothing more to do
            return
        if message[0] == "load":
            conn.send(("ok", None))
            continue
        _, fn, args = message
        try:
            result: tuple[Any, ...] = ("ok", fn(*args))
        except MemoryError:
            result = ("memory", f"memory limit of {memory_mb} MB exceeded")
        except Exception as e:  # noqa: BLE001 - reported to the caller as RemoteError
            result = ("error", type(e).__name__, str(e)[:500])
        conn.send(result)


class BoundedWorker:
    """One persistent child process; see the module docstring."""

    STARTUP_TIMEOUT_S = 60.0  # start-up and imports are not the input's fault: not charged to it

    def __init__(self, memory_mb: int = 2048) -> None:
        self.memory_mb = memory_mb
        self.restarts = 0
        self._lock = threading.Lock()
        self._state: dict[str, Any] = {"proc": None, "conn": None, "loaded": set()}
        weakref.finalize(self, _kill, self._state)

    def _connection(self, fn: Callable[..., Any]) -> Connection:
        """The live child's pipe, starting a child and importing ``fn`` there when needed."""
        proc = self._state["proc"]
        if proc is None or not proc.is_alive():
            _kill(self._state)
            ctx = multiprocessing.get_context("spawn")  # never fork a process that may hold torch threads
            parent_conn, child_conn = ctx.Pipe()
            proc = ctx.Process(target=_child_main, args=(child_conn, self.memory_mb), daemon=False)
            proc.start()
            child_conn.close()
            self._state.update(proc=proc, conn=parent_conn, loaded=set())
        conn: Connection = self._state["conn"]
        key = f"{fn.__module__}:{fn.__qualname__}"
        if key not in self._state["loaded"]:
            conn.send(("load", fn))
            self._receive(conn, self.STARTUP_TIMEOUT_S, "start-up")
            self._state["loaded"].add(key)
        return conn

    def _receive(self, conn: Connection, timeout_s: float, what: str) -> tuple[Any, ...]:
        if not conn.poll(timeout_s):
            self._reset()
            raise BoundExceeded(f"{what} timed out after {timeout_s:g}s (child killed)", timeout=True)
        try:
            return conn.recv()
        except EOFError:
            code = self._state["proc"].exitcode
            self._reset()
            raise BoundExceeded(f"bounded child died during {what} (exit code {code})", timeout=False) from None

    def _reset(self) -> None:
        _kill(self._state)
        self.restarts += 1

    def call(self, fn: Callable[..., Any], args: tuple[Any, ...], timeout_s: float) -> Any:
        with self._lock:
            conn = self._connection(fn)
            conn.send(("call", fn, args))
            reply = self._receive(conn, timeout_s, "the call")
        if reply[0] == "ok":
            return reply[1]
        if reply[0] == "memory":
            raise BoundExceeded(reply[1], timeout=False)
        raise RemoteError(reply[1], reply[2])

    def close(self) -> None:
        with self._lock:
            _kill(self._state)


def _kill(state: dict[str, Any]) -> None:
    """SIGKILL the child's process group and forget it (safe to call when there is none)."""
    proc, conn = state["proc"], state["conn"]
    state.update(proc=None, conn=None, loaded=set())
    if conn is not None:
        conn.close()
    if proc is not None and proc.pid is not None:
        if proc.is_alive():
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:  # exited between the check and the kill
                proc.kill()
        proc.join(timeout=5)


_WORKERS: dict[int, BoundedWorker] = {}
_WORKERS_LOCK = threading.Lock()


def call_bounded(fn: Callable[..., Any], args: tuple[Any, ...], timeout_s: float, memory_mb: int = 2048) -> Any:
    """Run ``fn(*args)`` in this process's bounded child for ``memory_mb``; see the module docstring."""
    with _WORKERS_LOCK:
        worker = _WORKERS.get(memory_mb)
        if worker is None:
            worker = _WORKERS[memory_mb] = BoundedWorker(memory_mb)
    return worker.call(fn, args, timeout_s)
