"""Run untrusted Python in an isolated, resource-limited process tree and return what it said.

:meth:`Sandbox.run` starts the harness (``code_harness.py``) with a JSON payload on stdin and
returns a typed :class:`RunResult`: the harness's result lines (from a dedicated pipe), capped
stdout/stderr, whether the parent had to kill it for time or output, and which isolation was used.

Isolation modes; ``isolation="auto"`` takes the first of bwrap and unshare that works (each probed
once per process) and never falls back to ``none``: with neither it refuses, naming the fix.

``bwrap``   bubblewrap with every namespace unshared (user, pid, net, ipc, uts, cgroup, mount),
            ``--disable-userns``, ``--new-session``, ``--die-with-parent``, ``--as-pid-1`` (the
            harness is PID 1: when it exits the kernel kills whatever is left in the namespace),
            an empty environment, a filesystem of read-only ``/usr`` (+ ``/lib*``, ``/bin``, the
            interpreter prefix), a fresh ``/proc`` and ``/dev``, and a size-capped tmpfs ``/tmp``
            as the only writable place. No network: the namespace has only its own loopback.
``unshare`` util-linux ``unshare`` (net, pid, ipc, uts, mount; plus user when not root), a shell
            step that builds the same filesystem view with bind mounts and ``chroot``s into it,
            then ``setpriv`` with an empty capability bounding set. Slower (~0.1 s), same coverage.
``none``    rlimits, a new session, an empty environment and a temporary working directory only;
            only when named (``isolation: none``). Logged as a warning once per process and reported
            in every :class:`RunResult` (``warning``); ``require_isolation=True`` refuses it.

In every mode the harness sets, before any untrusted code runs: RLIMIT_AS (memory), RLIMIT_CPU,
RLIMIT_FSIZE, RLIMIT_NOFILE, RLIMIT_NPROC and no core files. The parent enforces the wall clock
(the harness's own budget plus ``STARTUP_GRACE_S``), caps stdout, stderr and results, and kills the
whole tree: in bwrap/unshare it SIGKILLs the namespace's PID 1, so the kernel kills everything in
the namespace (daemons and setsid() escapees included) and the launcher reaps it (no zombies are
left to the host's init); then the process group as a backstop.

Observed on the reference machine (a root container, kernel 6.x, unprivileged user namespaces
allowed, bubblewrap 0.8): bwrap run as root maps the sandbox to host uid 0 (see below), so it runs
unprivileged instead; ``--ro-bind-fd`` cannot help reach a 0700 home, because bwrap 0.8 re-resolves
the fd's path component by component. Where unprivileged user namespaces are blocked (some
Ubuntu/Debian settings; not the case on the reference machine, so this path is by design, not
observed), bwrap fails its probe; a root caller then still gets ``unshare`` mode (root needs no
user namespace), a non-root caller is refused (tests simulate it by failing both probes).

Why the sandbox never maps to host root: the kernel exempts uid 0 from RLIMIT_NPROC, so a fork
bomb inside a sandbox whose user is host root is unbounded. When the caller is root, every run
gets its own unprivileged host uid (``1_000_000 + pid * 64 + n``, no passwd entry needed), and
bwrap runs unprivileged (user namespaces) as that uid. Such a uid cannot read a 0700 home, so a
root caller whose interpreter lives there (pyenv under /root) runs the system ``python3``
instead; programs are standalone, only the stdlib is offered either way (``python -I -S``).

Not covered -- know these before trusting it with more than model-written code:

- no seccomp filter: the program can make any syscall the kernel allows an unprivileged user in
  a namespace; kernel bugs are in scope of an attacker.
- memory is limited per process (RLIMIT_AS), not per tree: the worst case is
  ``processes x memory_mb``; no cgroups are used. CPU time is per process as well.
- ``unshare`` mode needs util-linux ``unshare``, ``setpriv``, ``chroot`` and ``mount``.
- ``none`` mode offers no filesystem or network isolation: the program can read what its uid
  can read, open sockets, and write to world-writable places (disk fill is bounded only by
  RLIMIT_FSIZE per file); a setsid() daemon escapes the process-group kill unless the caller is
  root (then every process of the run's private uid is killed afterwards). As a non-root caller
  it runs as the caller and could read the grader's memory through /proc where ptrace is allowed.
- timing side channels, and the stdlib's own behaviour (the program may import anything in it).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import logging
import os
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MODES = ("bwrap", "unshare", "none")
HARNESS_SOURCE = (Path(__file__).with_name("code_harness.py")).read_text(encoding="utf-8")
STARTUP_GRACE_S = 2.0  # wall clock the parent allows on top of total_timeout_s: start-up on a loaded machine
_UID_BASE = 1_000_000
_uid_counter = itertools.count()


class SandboxUnavailable(RuntimeError):
    """The requested isolation cannot run on this machine; the message says why and the fix."""


@dataclass(frozen=True)
class Limits:
    """Resource limits for one run. Memory and processes are per process (see module docstring)."""

    timeout_s: float = 2.0  # per test, enforced by the harness
    total_timeout_s: float = 10.0  # the whole run, enforced by the harness and (+grace) by the parent
    memory_mb: int = 512
    file_mb: int = 16  # largest file, and the size of the writable tmpfs
    open_files: int = 64
    processes: int = 16
    output_bytes: int = 64 * 1024  # stdout cap (per test in stdio mode)
    results_bytes: int = 4 * 1024 * 1024  # cap on the harness's result channel


@dataclass(frozen=True)
class RunResult:
    isolation: str
    results: bytes  # the harness's JSON lines
    stdout: bytes
    stderr: bytes
    returncode: int | None
    timed_out: bool  # the parent's wall clock ran out and it killed the tree
    output_limited: bool  # stdout, stderr or results went past their cap and the tree was killed
    wall_s: float
    warning: str | None = None  # set when running without isolation


@dataclass(frozen=True)
class Sandbox:
    """A resolved isolation mode plus the interpreter it runs. Build with :func:`get_sandbox`."""

    isolation: str
    python: str

    def run(self, payload: dict[str, Any], limits: Limits) -> RunResult:
        uid = _run_uid()
        scratch = _make_scratch(uid) if self.isolation == "none" else None
        payload = {**payload, **_limit_fields(limits), "cwd": scratch or "/tmp"}
        res_r, res_w = os.pipe()
        argv = _command(self.isolation, self.python, limits, uid) + ["-c", HARNESS_SOURCE, str(res_w)]
        t0 = time.monotonic()
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(res_w,),
                start_new_session=True, env=_ENV, cwd=scratch or "/", **_popen_ids(self.isolation, uid),
            )
        finally:
            os.close(res_w)
        try:
            results, stdout, stderr, timed_out, limited = _communicate(proc, res_r, json.dumps(payload).encode(), limits, t0)
        finally:
            os.close(res_r)
            _kill_tree(proc, self.isolation, uid if self.isolation == "none" else None)
            if scratch:
                shutil.rmtree(scratch, onerror=_log_rmtree_error)
        warning = _NO_ISOLATION_WARNING if self.isolation == "none" else None
        return RunResult(self.isolation, results, stdout, stderr, proc.returncode, timed_out, limited,
                         wall_s=time.monotonic() - t0, warning=warning)


def _popen_ids(mode: str, uid: int | None) -> dict[str, Any]:
    """Popen arguments that start the run as ``uid``: bwrap and none start unprivileged; unshare
    starts as root (it needs it for namespaces and mounts) and drops to ``uid`` itself."""
    if uid is None or mode == "unshare":
        return {}
    return {"user": uid, "group": uid, "extra_groups": []}


_ENV = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8", "HOME": "/tmp"}
_NO_ISOLATION_WARNING = (
    "NO ISOLATION: untrusted code ran with rlimits only (isolation: none); it could read files and "
    "use the network. Install bubblewrap and set isolation: auto."
)


def get_sandbox(isolation: str = "auto", require_isolation: bool = False, python: str | None = None) -> Sandbox:
    """Resolve ``isolation`` ("auto" or one of MODES) to a working :class:`Sandbox`.

    "auto" takes the first of bwrap and unshare whose probe succeeds, never "none": code runs
    unisolated only when the caller named "none". A named mode must work. Otherwise, and for "none"
    with ``require_isolation``, this raises :class:`SandboxUnavailable` with the fix.
    """
    if isolation != "auto" and isolation not in MODES:
        raise SandboxUnavailable(f"isolation={isolation!r} is unknown; use 'auto' or one of {list(MODES)}")
    if isolation == "none" and require_isolation:
        raise SandboxUnavailable("isolation 'none' (rlimits only) is refused by require_isolation (tests the program "
                                 "must not read); use isolation: auto, with bubblewrap installed")
    interpreter = python or _default_python()
    failures = []
    for mode in ("bwrap", "unshare") if isolation == "auto" else (isolation,):
        problem = _probe(mode, interpreter)
        if problem is None:
            if mode == "none":
                _warn_no_isolation()
            return Sandbox(mode, interpreter)
        failures.append(f"{mode}: {problem}")
    raise SandboxUnavailable(
        "no usable sandbox (" + "; ".join(failures) + "). Fix: install bubblewrap (apt-get install bubblewrap) "
        "and allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1 / "
        "kernel.apparmor_restrict_unprivileged_userns=0); or, knowing the program can then read files and use "
        "the network, write isolation: none"
    )


@functools.lru_cache(maxsize=None)
def _warn_no_isolation() -> None:
    log.warning(_NO_ISOLATION_WARNING)


@functools.lru_cache(maxsize=None)
def _probe(mode: str, python: str) -> str | None:
    """Run ``python -c 'pass'`` in ``mode``; None when it works, else the reason (cached)."""
    if mode == "bwrap" and not shutil.which("bwrap"):
        return "bwrap not found on PATH"
    if mode == "unshare" and not all(shutil.which(t) for t in ("unshare", "setpriv", "chroot", "mount")):
        return "unshare/setpriv/chroot/mount not all found on PATH"
    uid = _run_uid()
    argv = _command(mode, python, Limits(), uid) + ["-c", "import json"]
    try:
        r = subprocess.run(argv, capture_output=True, timeout=20, env=_ENV, cwd="/", start_new_session=True,
                           **_popen_ids(mode, uid))
    except (OSError, subprocess.SubprocessError) as e:
        return f"{type(e).__name__}: {e}"
    if r.returncode != 0:
        lines = r.stderr.decode("utf-8", "replace").strip().splitlines() or [f"exit status {r.returncode}"]
        return lines[-1][:200]
    return None


def _run_uid() -> int | None:
    """A fresh unprivileged host uid per run when we are root (see module docstring), else None."""
    if os.geteuid() != 0:
        return None
    return uid_range(os.getpid())[next(_uid_counter) % 64]


def uid_range(pid: int) -> range:
    """The private host uids that runs started by process ``pid`` use (when it is root).

    64 per process, cycled: distinct for concurrent runs in up to 64 threads of one process."""
    return range(_UID_BASE + pid * 64, _UID_BASE + pid * 64 + 64)


def _default_python() -> str:
    """The interpreter to run inside: ours if the sandbox user can reach it, else the system one."""
    ours = os.path.realpath(sys.executable)
    if os.geteuid() != 0 or _world_executable(ours):
        return ours
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        path = os.path.realpath(candidate)
        if os.path.exists(path) and _world_executable(path):
            return path
    return ours  # the probe will fail with a clear error


def _world_executable(path: str) -> bool:
    p = Path(path)
    if not p.exists() or not p.stat().st_mode & stat.S_IXOTH:
        return False
    return all(parent.stat().st_mode & stat.S_IXOTH for parent in p.parents)


def _prefix(python: str) -> str | None:
    """The install prefix to bind read-only, or None when it already lies under /usr."""
    prefix = os.path.dirname(os.path.dirname(python))
    return None if prefix == "/usr" or prefix.startswith("/usr/") else prefix


def _limit_fields(limits: Limits) -> dict[str, Any]:
    return {
        "timeout_s": limits.timeout_s,
        "total_timeout_s": limits.total_timeout_s,
        "memory_mb": limits.memory_mb,
        "cpu_s": int(limits.total_timeout_s) + 2,
        "file_mb": limits.file_mb,
        "open_files": limits.open_files,
        "processes": limits.processes,
        "output_bytes": limits.output_bytes,
    }


def _command(mode: str, python: str, limits: Limits, uid: int | None) -> list[str]:
    """argv that starts ``python -I -S -B`` in ``mode``; the caller appends the interpreter args."""
    py = [python, "-I", "-S", "-B"]
    if mode == "bwrap":
        return _bwrap_argv(python, limits) + py
    if mode == "unshare":
        ns = ["--net", "--pid", "--ipc", "--uts", "--mount", "--fork", "--kill-child"]
        if os.geteuid() != 0:
            ns = ["--user", "--map-root-user"] + ns  # unprivileged: we are root only inside
        return ["unshare", *ns, "--", "/bin/sh", "-c", _UNSHARE_SCRIPT, "rft-sandbox",
                _prefix(python) or "", str(limits.file_mb), "keep" if uid is None else str(uid),
                shutil.which("setpriv") or "setpriv"] + py
    return py


@functools.lru_cache(maxsize=None)
def _bwrap_features() -> frozenset[str]:
    try:
        text = subprocess.run(["bwrap", "--help"], capture_output=True, timeout=10).stdout.decode()
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    return frozenset(opt for opt in ("--disable-userns", "--size") if opt in text)


def _system_dirs() -> list[str]:
    """bwrap args for /bin, /lib, ... as on the host: a symlink where it is one, else a ro bind."""
    args: list[str] = []
    for d in ("/bin", "/sbin", "/lib", "/lib32", "/lib64"):
        if os.path.islink(d):
            args += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            args += ["--ro-bind", d, d]
    return args


def _bwrap_argv(python: str, limits: Limits) -> list[str]:
    features = _bwrap_features()
    argv = ["bwrap", "--unshare-all", "--unshare-user", "--die-with-parent", "--new-session", "--as-pid-1",
            "--hostname", "sandbox", "--clearenv"]
    if "--disable-userns" in features:
        argv.append("--disable-userns")
    for key, value in _ENV.items():
        argv += ["--setenv", key, value]
    argv += ["--ro-bind", "/usr", "/usr", *_system_dirs(), "--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    prefix = _prefix(python)
    if prefix:
        argv += ["--ro-bind", prefix, prefix]
    argv += ["--proc", "/proc", "--dev", "/dev"]
    if "--size" in features:
        argv += ["--size", str(limits.file_mb << 20)]
    return argv + ["--tmpfs", "/tmp", "--chdir", "/tmp", "--"]


# Runs as (namespace) root inside fresh mount/pid/net namespaces: build a root of read-only binds
# and a size-capped tmpfs, chroot into it, drop every capability (and, for a root caller, the uid),
# then run the interpreter. sh stays PID 1, so killing `unshare` tears the namespace down.
_UNSHARE_SCRIPT = r"""
set -eu
prefix=$1; scratch_mb=$2; uid=$3; setpriv=$4; shift 4
ro_bind() { mkdir -p "$2"; mount --rbind "$1" "$2"; mount -o remount,ro,bind "$2"; }
mount -t tmpfs -o mode=755,size=1m rft-root /tmp
R=/tmp
mkdir -p "$R/proc" "$R/dev" "$R/tmp"
ro_bind /usr "$R/usr"
for d in bin sbin lib lib32 lib64; do
  if [ -L "/$d" ]; then ln -s "$(readlink "/$d")" "$R/$d"; elif [ -d "/$d" ]; then ro_bind "/$d" "$R/$d"; fi
done
if [ -n "$prefix" ]; then ro_bind "$prefix" "$R$prefix"; fi
for f in null zero full random urandom; do touch "$R/dev/$f"; mount --bind "/dev/$f" "$R/dev/$f"; done
mount -t proc proc "$R/proc"
mount -t tmpfs -o "size=${scratch_mb}m,mode=1777" rft-tmp "$R/tmp"
ids=""
if [ "$uid" != keep ]; then ids="--reuid=$uid --regid=$uid"; fi
chroot "$R" "$setpriv" $ids --clear-groups --bounding-set=-all --inh-caps=-all --no-new-privs -- "$@"
"""


def _make_scratch(uid: int | None) -> str:
    path = tempfile.mkdtemp(prefix="rft-sandbox-")
    if uid is not None:
        os.chown(path, uid, uid)
    return path


def _log_rmtree_error(func: Any, path: str, exc_info: Any) -> None:
    log.warning("could not remove sandbox scratch path %s: %s", path, exc_info[1])


def _communicate(
    proc: subprocess.Popen, res_r: int, payload: bytes, limits: Limits, t0: float
) -> tuple[bytes, bytes, bytes, bool, bool]:
    """Feed the payload, read the three channels under their caps until EOF, exit or deadline."""
    caps = {proc.stdout.fileno(): limits.output_bytes, proc.stderr.fileno(): 64 * 1024, res_r: limits.results_bytes}
    bufs: dict[int, bytearray] = {fd: bytearray() for fd in caps}
    sel = selectors.DefaultSelector()
    for fd in caps:
        sel.register(fd, selectors.EVENT_READ)
    stdin_fd, pending = proc.stdin.fileno(), memoryview(payload)
    os.set_blocking(stdin_fd, False)
    sel.register(stdin_fd, selectors.EVENT_WRITE)
    deadline = t0 + limits.total_timeout_s + STARTUP_GRACE_S
    timed_out = limited = False
    exited_at: float | None = None
    while len(sel.get_map()) > 0:
        now = time.monotonic()
        if exited_at is None and _has_exited(proc.pid):
            exited_at = now  # leftover holders of our pipes get a short grace, then are ignored
        if now >= deadline or (exited_at is not None and now - exited_at > 0.2):
            timed_out = exited_at is None
            break
        for key, _ in sel.select(timeout=min(deadline - now, 0.05)):
            fd = key.fd
            if fd == stdin_fd:
                try:
                    pending = pending[os.write(fd, pending[: 1 << 16]):]
                except (BrokenPipeError, BlockingIOError):
                    pending = pending[:0]
                if not pending:
                    sel.unregister(fd)
                    proc.stdin.close()
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                sel.unregister(fd)
                continue
            bufs[fd] += chunk
            if len(bufs[fd]) > caps[fd]:
                del bufs[fd][caps[fd]:]
                limited = True
        if limited:
            break
    sel.close()
    if not proc.stdin.closed:
        proc.stdin.close()
    return bytes(bufs[res_r]), bytes(bufs[proc.stdout.fileno()]), bytes(bufs[proc.stderr.fileno()]), timed_out, limited


def _has_exited(pid: int) -> bool:
    """True once ``pid`` has exited, without reaping it: its pid (= our process group id) stays
    reserved until :func:`_kill_tree` has signalled the group, so the kill cannot hit a reused id."""
    info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    return info is not None


def _kill_tree(proc: subprocess.Popen, mode: str, uid: int | None) -> None:
    """SIGKILL everything the run started and reap it.

    bwrap/unshare: kill the sandbox's top process (the harness, PID 1 under ``--as-pid-1``; or
    unshare's PID-1 shell) first; the kernel then kills the whole PID namespace, and the launcher
    reaps it and exits by itself, so no zombie is left for the host's init. Then the process group
    as a backstop. none: the process group, and -- with a private uid -- every process of that uid.
    """
    if mode != "none" and not _has_exited(proc.pid):
        for child in _children(proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=1.0)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream and not stream.closed:
            stream.close()
    if uid is not None:
        kill = shutil.which("kill") or "/bin/kill"
        subprocess.run([kill, "-KILL", "-1"], user=uid, group=uid, extra_groups=[], env=_ENV, cwd="/",
                       capture_output=True, timeout=10)


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc; empty if it is gone)."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []
