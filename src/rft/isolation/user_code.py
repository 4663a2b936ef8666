"""The user's code -- python graders, verifiers rewards, TRL environment classes -- runs in a host
process that it can neither end, hang, nor (with ``network="deny"``) use to reach the network.

A :class:`UserCodeHost` is one child process (``python -c``, started with ``subprocess``: no fork of
a caller that holds torch threads, nothing re-imported from its ``__main__``) that keeps the user's
objects and runs calls on them, one at a time:

- ``key = host.load(loader, args)``: ``loader(*args)`` runs in the host -- the user's module is
  imported there, never in the caller -- and its result is kept under ``key`` (loaded again after a
  restart; a failure raises :class:`UserCodeError`, which callers turn into a ``SpecError``);
- ``host.call(key, fn, args, timeout_s)``: ``fn(obj, *args)`` in the host, its result sent back;
- ``key2, reply = host.start(key, fn, args, timeout_s)``: ``fn(obj, *args)`` returns ``(state,
  reply)``; the state (a TRL environment instance) stays in the host under ``key2`` until
  ``forget(key2)`` (sent with the next message: no round trip) or a restart, after which calls on
  it raise :class:`UserCodeLost`.

``loader`` and ``fn`` are module-level functions of rft (pickled by reference); arguments and
results must pickle.

What cannot reach the caller: an exception of any kind raised by user code (``SystemExit`` and
``KeyboardInterrupt`` included) comes back as :class:`UserCodeError` with its type and message, and
the host goes on; a call past its ``timeout_s`` (a loop, ``time.sleep(1e9)``, a hang in C) SIGKILLs
the host's process group and raises :class:`UserCodeTimeout`; the host dying (``os._exit``, a
segfault, the OOM killer) raises :class:`UserCodeCrash`. The next call starts a fresh host; start-up
and loading are bounded apart (``STARTUP_TIMEOUT_S``, ``LOAD_TIMEOUT_S``), not charged to the call.
A caller's thread only ever waits on a pipe, for at most its timeout: no thread is left running
user code, and a process that used a hung tool exits at once. The host ignores SIGINT (Ctrl-C is the
caller's), lives in its own session and dies with the caller (``PR_SET_PDEATHSIG``, armed from one
long-lived launcher thread, since Linux fires it when the *thread* that started a child exits).

Network (``network="deny"``): before it reads its first message the host moves itself into a new
user and network namespace (``unshare(CLONE_NEWUSER | CLONE_NEWNET)``, its uid and gid mapped to
themselves), whose only interface is a loopback that is down. Everything the code does inherits it:
TCP and UDP (``sendto``) through Python's ``socket`` or the C-level ``_socket``, from any thread or
``asyncio.to_thread``, and every program it starts (``subprocess`` + ``curl``); DNS fails (no route
to a nameserver; ``/etc/hosts`` still answers). The new user namespace holds no capability over the
machine's namespaces, so the code cannot ``setns`` back, root included. Where the kernel refuses
(unprivileged user namespaces disabled, a container's seccomp profile), the host does not start and
:class:`NetworkUnavailable` gives the reason and the fix: ``network: deny`` is refused, never weakened.

Not blocked by ``deny``: Unix sockets bound to files (``/var/run/docker.sock``, a local proxy's
socket file: reachable through the filesystem, which is not isolated), files (the code keeps the
caller's rights, less a root caller's override on files of other uids), shared memory, and what the
caller passes in. Not covered in any mode: memory and CPU limits, a ``setsid()`` child escaping the
process-group kill, code that writes into its own pipe or signals its caller (``os.kill(os.getppid(),
...)``): this contains the user's trusted code from accidents, it is no sandbox for hostile code
(model-written programs go to ``graders/sandbox.py``).

Measured (the 2-core reference machine, shared): a call's round trip costs 0.06 ms (``allow``) to
0.12 ms (``deny``); a TRL tool call 0.26 ms against 0.03 ms in-process, a TRL ``reset`` 0.2 ms; a
host starts and imports rft's side in ~0.1 s, then the user's code (a TRL class: 0.5 s in all).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import itertools
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections import deque
from concurrent.futures import Future
from multiprocessing.connection import Connection, Pipe
from multiprocessing.reduction import ForkingPickler as _ForkingPickler
from typing import Any, Callable, Iterator

STARTUP_TIMEOUT_S = 60.0  # a host that cannot start is an environment problem, not the call's
LOAD_TIMEOUT_S = 120.0  # importing the user's module (it may import heavy libraries)
NETWORKS = ("allow", "deny")
CLONE_NEWUSER, CLONE_NEWNET = 0x10000000, 0x40000000
NETWORK_FIX = ("Fix: allow unprivileged user namespaces (sysctl -w kernel.unprivileged_userns_clone=1; on Ubuntu "
               "also kernel.apparmor_restrict_unprivileged_userns=0; in Docker --security-opt seccomp=unconfined), "
               "or set network: allow to let this code use the network")


class UserCodeFailed(RuntimeError):
    """A call into user code did not return a value; ``type_name`` is what went wrong."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name, self.message = type_name, message

    def details(self) -> dict[str, Any]:
        """A failed grade's ``details``: the error's name (and ``timeout``: counted as a timeout)."""
        return {"error": self.type_name}


class UserCodeError(UserCodeFailed):
    """The user's code raised (any exception, SystemExit and KeyboardInterrupt included)."""


class UserCodeTimeout(UserCodeFailed):
    def __init__(self, message: str) -> None:
        super().__init__("Timeout", message)

    def details(self) -> dict[str, Any]:
        return {"error": "Timeout", "timeout": True}


class UserCodeCrash(UserCodeFailed):
    def __init__(self, message: str) -> None:
        super().__init__("HostCrash", message)


class UserCodeLost(UserCodeFailed):
    def __init__(self, message: str) -> None:
        super().__init__("HostRestarted", message)


class NetworkUnavailable(RuntimeError):
    """``network="deny"`` cannot be had on this machine; the message says why and the fix."""


# -- the host process --------------------------------------------------------------------------------


def deny_network() -> str | None:
    """Move this single-threaded process into a new user + network namespace; None, or why not."""
    if not sys.platform.startswith("linux"):
        return f"network namespaces are Linux-only (this is {sys.platform})"
    uid, gid = os.geteuid(), os.getegid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        return f"unshare(CLONE_NEWUSER | CLONE_NEWNET) failed: {errno.errorcode.get(err, err)} ({os.strerror(err)})"
    try:
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
    except OSError as e:
        return f"mapping uid {uid} into the new user namespace failed: {e}"
    return None


def host_main() -> None:
    """The host's loop (argv: the pipe's fd, the network mode, the caller's pid, its sys.path)."""
    fd, network, parent = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the caller's launcher thread
    if os.getppid() != parent:  # the caller died before that was armed
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn = Connection(fd)
    problem = deny_network() if network == "deny" else None
    conn.send(("ready", problem))
    objects: dict[str, Any] = {}
    while problem is None:
        try:
            op, drops, key, fn, args, new_key, paths = conn.recv()  # unpickling imports fn's module
        except EOFError:  # the caller closed the pipe or died
            break
        except BaseException as e:  # noqa: BLE001 - fn's module failed to import: that call's error
            _reply(conn, ("error", type(e).__name__, str(e)))
            continue
        for k in drops:
            objects.pop(k, None)
        sys.path[:0] = [p for p in paths if p not in sys.path]
        try:
            if op == "load":
                objects[key], value = fn(*args), None
            elif op == "start":
                objects[new_key], value = fn(objects[key], *args)
            else:
                value = fn(objects[key], *args)
            reply: tuple[Any, ...] = ("ok", value)
        except BaseException as e:  # noqa: BLE001 - SystemExit, KeyboardInterrupt too: the call's error
            reply = ("error", type(e).__name__, str(e))
        _reply(conn, reply)
    os._exit(0)  # never wait for threads the user's code left running


def _reply(conn: Connection, reply: tuple[Any, ...]) -> None:
    try:
        conn.send(reply)
    except Exception as e:  # noqa: BLE001 - pickling fails before anything is written
        conn.send(("error", "UnpicklableResult", f"the result cannot be sent back ({type(e).__name__}: {e})"))


# -- the caller's side ---------------------------------------------------------------------------------

_LAUNCH: "queue.SimpleQueue[tuple[list[str], dict[str, Any], Future[subprocess.Popen[bytes]]]]" = queue.SimpleQueue()
_LAUNCHER: list[threading.Thread] = []
_LAUNCHER_LOCK = threading.Lock()


def _launch(argv: list[str], **kwargs: Any) -> "subprocess.Popen[bytes]":
    """``Popen`` on one long-lived daemon thread, so that a host started from a step's worker thread
    does not die with that thread (PR_SET_PDEATHSIG follows the thread that forked)."""
    with _LAUNCHER_LOCK:
        if not _LAUNCHER or not _LAUNCHER[0].is_alive():  # none yet, or this is a forked copy of the caller
            _LAUNCHER[:] = [threading.Thread(target=_launcher, name="rft-user-code-launcher", daemon=True)]
            _LAUNCHER[0].start()
    done: Future[subprocess.Popen[bytes]] = Future()
    _LAUNCH.put((argv, kwargs, done))
    return done.result()


def _launcher() -> None:
    while True:
        argv, kwargs, done = _LAUNCH.get()
        try:
            done.set_result(subprocess.Popen(argv, **kwargs))
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            done.set_exception(e)


_BOOT = "import sys, json; sys.path[:] = json.loads(sys.argv[4]); from rft.isolation.user_code import host_main; host_main()"


class UserCodeHost:
    """One host process; see the module docstring. Thread-safe: calls from several threads queue."""

    def __init__(self, network: str = "allow") -> None:
        if network not in NETWORKS:
            raise ValueError(f"network = {network!r}: use one of {list(NETWORKS)}")
        self.network = network
        self.restarts = 0  # hosts killed or lost and replaced
        self._lock = threading.Lock()
        self._state: dict[str, Any] = {"proc": None, "conn": None, "owner": os.getpid()}
        self._generation = 0
        self._loads: dict[str, tuple[Callable[..., Any], tuple[Any, ...]]] = {}
        self._loaded: set[str] = set()
        self._drops: deque[str] = deque()  # appended from finalizers in any thread, drained under the lock
        self._ids = itertools.count()
        self._why = ""  # why the host was last replaced
        weakref.finalize(self, _kill, self._state)

    # -- the three calls ------------------------------------------------------------------------------
    def load(self, loader: Callable[..., Any], args: tuple[Any, ...]) -> str:
        """Run ``loader(*args)`` in the host and keep its result; the key names it for :meth:`call`."""
        key = f"{loader.__module__}.{loader.__qualname__}{args!r}"
        self._loads[key] = (loader, args)
        with self._held(LOAD_TIMEOUT_S, "loading the user's code"):
            self._ensure_loaded(key)
        return key

    def call(self, key: str, fn: Callable[..., Any], args: tuple[Any, ...], timeout_s: float, what: str = "") -> Any:
        """``fn(obj, *args)`` in the host, ``obj`` being what ``key`` names; its result. ``what`` names the
        call in errors (default: ``fn``'s name)."""
        return self._exchange("call", key, fn, args, timeout_s, what or fn.__name__)[0]

    def start(self, key: str, fn: Callable[..., Any], args: tuple[Any, ...], timeout_s: float,
              what: str = "") -> tuple[str, Any]:
        """``fn(obj, *args) -> (state, reply)`` in the host; the state is kept under the returned key."""
        reply, new_key = self._exchange("start", key, fn, args, timeout_s, what or fn.__name__)
        return new_key, reply

    def forget(self, key: str) -> None:
        """Drop a started object with the next message (safe from a finalizer: no I/O here)."""
        if key.startswith(f"e{self._generation}:"):
            self._drops.append(key)

    def close(self) -> None:
        """Kill the host; a later call starts a fresh one (objects it had started are lost)."""
        with self._lock:
            self._reset("it was closed")

    # -- plumbing ------------------------------------------------------------------------------------
    def _exchange(self, op: str, key: str, fn: Callable[..., Any], args: tuple[Any, ...], timeout_s: float,
                  what: str) -> tuple[Any, str]:
        t0 = time.monotonic()
        with self._held(timeout_s, what):
            left = timeout_s - (time.monotonic() - t0)  # waiting for the host counts; starting and loading do not
            self._check(key)
            self._connection()  # a host that died while idle is replaced before anything is asked of it
            self._check(key)
            if not key.startswith("e"):
                self._ensure_loaded(key)
            if left <= 0:
                raise UserCodeTimeout(f"{what}: waited {timeout_s:.3g}s for the host to be free")
            new_key = f"e{self._generation}:{next(self._ids)}"
            drops = [self._drops.popleft() for _ in range(len(self._drops))]
            reply = self._send((op, drops, key, fn, args, new_key, []), left, f"{what} ran past its {timeout_s:.3g}s")
        return reply, new_key

    def _check(self, key: str) -> None:
        """A started object of an earlier host is gone: say so, and why that host went."""
        if key.startswith("e") and not key.startswith(f"e{self._generation}:"):
            raise UserCodeLost(f"the object this call needs was lost when its host process was replaced ({self._why})")

    @contextlib.contextmanager
    def _held(self, timeout_s: float, what: str) -> Iterator[None]:
        if not self._lock.acquire(timeout=max(timeout_s, 0.0)):
            raise UserCodeTimeout(f"{what}: the host was busy with another call for {timeout_s:.3g}s")
        try:
            yield
        finally:
            self._lock.release()

    def _ensure_loaded(self, key: str) -> None:
        if key not in self._loaded:
            loader, args = self._loads[key]
            self._send(("load", [], key, loader, args, None, list(sys.path)), LOAD_TIMEOUT_S,
                       f"loading the user's code ran past {LOAD_TIMEOUT_S:g}s")
            self._loaded.add(key)

    def _send(self, message: tuple[Any, ...], timeout_s: float, late: str) -> Any:
        """One round trip; the host's reply value, or raise what happened to it."""
        conn = self._connection()
        try:
            payload = _ForkingPickler.dumps(message)  # first: arguments that do not pickle are the call's error
        except Exception as e:  # noqa: BLE001 - PicklingError, TypeError, RecursionError, ...
            raise UserCodeError("UnpicklableArguments", f"the call's arguments cannot be sent ({type(e).__name__}: "
                                f"{e})"[:300]) from None
        try:
            conn.send_bytes(payload)
            answered = conn.poll(timeout_s)
        except (OSError, EOFError):  # it died under us
            answered = True
        if not answered:
            self._reset(late)
            raise UserCodeTimeout(f"{late}; its host process was killed and is replaced")
        try:
            reply = conn.recv()
        except (EOFError, OSError):
            proc = self._state["proc"]
            code = proc.wait(timeout=5) if proc is not None else None
            self._reset(f"it died with exit code {code}")
            raise UserCodeCrash(f"the user code's host process died (exit code {code}); a fresh one replaces it") \
                from None
        if reply[0] == "error":
            raise UserCodeError(reply[1], reply[2][:500])
        return reply[1]

    def _connection(self) -> Connection:
        """The live host's pipe, starting a host first when there is none (or it died)."""
        if self._state["owner"] != os.getpid():  # a forked copy of the caller: that host is the parent's
            self._state.update(proc=None, conn=None, owner=os.getpid())
            self._generation += 1
            self._loaded.clear()
        if self._state["proc"] is not None and self._state["proc"].poll() is None:
            return self._state["conn"]
        if self._state["proc"] is not None:
            self._reset(f"it died while idle, exit code {self._state['proc'].returncode}")
        parent_conn, child_conn = Pipe()
        argv = [sys.executable, "-c", _BOOT, str(child_conn.fileno()), self.network, str(os.getpid()),
                json.dumps(sys.path)]
        try:
            proc = _launch(argv, pass_fds=(child_conn.fileno(),), stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            child_conn.close()
        self._state.update(proc=proc, conn=parent_conn)
        problem = "no answer"
        try:
            if parent_conn.poll(STARTUP_TIMEOUT_S):
                _, problem = parent_conn.recv()
        except (EOFError, OSError):
            problem = f"exit code {proc.wait(timeout=5)}"
        if problem is None:
            return parent_conn
        self._reset()
        if problem.startswith(("unshare", "mapping", "network namespaces")):
            raise NetworkUnavailable(f"network: deny needs a network namespace, which this machine refuses "
                                     f"({problem}). {NETWORK_FIX}")
        raise UserCodeCrash(f"the user code's host process failed to start ({problem})")

    def _reset(self, why: str = "") -> None:
        self._why = why
        _kill(self._state)
        self._generation += 1
        self._loaded.clear()
        self._drops.clear()
        self.restarts += 1


def _kill(state: dict[str, Any]) -> None:
    """SIGKILL the host's process group (the host and what it started) and reap it; never from a forked
    copy of its caller."""
    if state["owner"] != os.getpid():
        return
    proc, conn = state["proc"], state["conn"]
    state.update(proc=None, conn=None)
    if conn is not None:
        conn.close()
    if proc is not None:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:  # exited between the check and the kill
                pass
        proc.wait(timeout=5)


_SHARED: dict[str, UserCodeHost] = {}
_SHARED_LOCK = threading.Lock()


def shared_host(network: str) -> UserCodeHost:
    """This process's host for graders (stateless user code) with ``network``: one per mode."""
    with _SHARED_LOCK:
        if network not in _SHARED:
            _SHARED[network] = UserCodeHost(network)
        return _SHARED[network]


@functools.lru_cache(maxsize=None)
def network_isolation_problem() -> str | None:
    """Why ``network="deny"`` cannot run here (the reason and the fix), or None; probed once."""
    host = UserCodeHost("deny")
    try:
        with host._held(STARTUP_TIMEOUT_S, "probing network: deny"):
            host._connection()
    except (NetworkUnavailable, UserCodeFailed) as e:
        return str(e)
    finally:
        host.close()
    return None
