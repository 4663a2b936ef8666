"""The test harness that runs *inside* the sandbox; the parent passes this file's text to ``python -c``.

(The marker rft-sandbox-harness lets tests find leftover sandbox processes by command line.)

It is never imported by the grader. Inside the sandbox it:

1. reads one JSON payload from stdin (the program, the entry point, the test *inputs* and the
   limits -- never the expected values, which stay in the trusted parent);
2. sets its own rlimits (address space, CPU seconds, file size, open files, processes, no core
   files) before any untrusted code runs, so they bind the program and everything it spawns;
3. runs the tests and writes one JSON line per test to the results fd named in ``argv[1]``:
   ``{"i": 0, "status": "ok", "value": ...}`` (function mode) or
   ``{"i": 0, "status": "ok", "stdout": "...", "exit": 0}`` (stdio mode), where status is one of
   ok / error / timeout / memory / output_limit.

Trust: this code is trusted only until the program starts. In ``function`` mode the program runs
in this interpreter and can tamper with anything here (patch builtins, forge lines on the results
fd, exit early). That is acceptable because the parent compares plain JSON data with expected
values the program never sees: tampering can lower a score, never earn one. The strict encoder
below (exact built-in types only) exists so an honest program's value reaches the parent
unchanged and an always-equal object is reported as an error instead of as a value.
In ``stdio`` mode each test runs in a forked child with the results fd closed, and this process
(not the program) reports the child's captured stdout. (Reopening the pipe through
``/proc/<harness>/fd`` was refused with EACCES under bwrap on the reference machine; where it
works it gives the same power as in function mode: forging data that cannot match expected
values it never sees.)

Kept compatible with Python 3.8+: the sandbox may use the system interpreter, not the venv's.
Start-up is the cost that matters (it is paid per execution), so this imports only C modules
and ``os``/``sys`` (already loaded): ``_json`` instead of ``json`` (which pulls in ``re``) and
``_signal`` instead of ``signal`` (which pulls in ``enum``); that saves ~10 ms per run.
"""

import _json
import _signal as signal
import os
import resource
import select
import sys
import time

MEMORY_EXIT = 86  # stdio child: the program died of MemoryError
UNCAUGHT_EXIT = 87  # stdio child: the program raised an uncaught exception


class _Timeout(BaseException):
    pass


class _JsonContext:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = float  # "NaN", "Infinity", "-Infinity"


_scan = _json.make_scanner(_JsonContext())
# (markers, default, encoder, indent, key_separator, item_separator, sort_keys, skipkeys, allow_nan)
_encode = _json.make_encoder(None, None, _json.encode_basestring_ascii, None, ": ", ", ", False, False, True)


def json_loads(text):
    value, end = _scan(text, 0)
    if text[end:].strip():
        raise ValueError("trailing data after the JSON payload")
    return value


def json_dumps(value):
    return "".join(_encode(value, 0))


def _read_all(fd):
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _set_limits(cfg):
    mem = cfg["memory_mb"] << 20
    limits = [
        (resource.RLIMIT_AS, mem),
        (resource.RLIMIT_CPU, cfg["cpu_s"]),
        (resource.RLIMIT_FSIZE, cfg["file_mb"] << 20),
        (resource.RLIMIT_NOFILE, cfg["open_files"]),
        (resource.RLIMIT_NPROC, cfg["processes"]),
        (resource.RLIMIT_CORE, 0),
    ]
    for which, value in limits:
        resource.setrlimit(which, (value, value))


def _encoder(tuple_as_list, max_depth=64):
    """Encode a return value as JSON, accepting exact built-in types only (no subclasses; tuples
    only when ``tuple_as_list``). Bound to local names now, before the program can patch them."""
    _type, _dumps, _list, _tuple, _dict, _str = type, json_dumps, list, tuple, dict, str
    scalar = (_type(None), bool, int, float, str)

    def plain(v, depth):
        t = _type(v)
        if depth > max_depth:
            raise ValueError("value nested deeper than %d levels" % max_depth)
        if t in scalar:
            return v
        if t is _list or (t is _tuple and tuple_as_list):
            return [plain(x, depth + 1) for x in v]
        if t is _dict:
            out = {}
            for k, x in v.items():
                if _type(k) is not _str:
                    raise ValueError("dict key of type %s; JSON keys must be str" % _type(k).__name__)
                out[k] = plain(x, depth + 1)
            return out
        raise ValueError("returned %s, which is not a plain JSON value" % t.__name__)

    def encode(v):
        return _dumps(plain(v, 0))

    return encode


def _emit_fn(fd):
    """One JSON line per call; ``raw`` is an already encoded JSON object (the value of a test)."""
    _write, _dumps = os.write, json_dumps

    def emit(obj, raw=None):
        line = raw if raw is not None else _dumps(obj)
        _write(fd, (line + "\n").encode("utf-8", "replace"))

    return emit


def _describe(e):
    return ("%s: %s" % (type(e).__name__, e))[:300]


def _alarm(signum, frame):
    raise _Timeout()


def run_function(cfg, emit):
    encode = _encoder(cfg.get("tuple_as_list", False))
    deadline = time.monotonic() + cfg["total_timeout_s"]
    setitimer, ITIMER_REAL, monotonic = signal.setitimer, signal.ITIMER_REAL, time.monotonic
    signal.signal(signal.SIGALRM, _alarm)
    namespace = {"__name__": "solution", "__builtins__": __builtins__}
    try:
        setitimer(ITIMER_REAL, max(0.001, min(cfg["timeout_s"], deadline - monotonic())))
        exec(compile(cfg["program"], "<solution>", "exec"), namespace)
        setitimer(ITIMER_REAL, 0)
        fn = namespace.get(cfg["entry_point"])
        if not callable(fn):
            raise NameError("the program defines no function %r" % cfg["entry_point"])
    except _Timeout:
        emit({"event": "load_error", "status": "timeout", "error": "timed out while loading the program"})
        return
    except MemoryError:
        setitimer(ITIMER_REAL, 0)
        emit({"event": "load_error", "status": "memory", "error": "MemoryError while loading the program"})
        return
    except BaseException as e:  # noqa: BLE001 - any failure of untrusted code is a reported result
        setitimer(ITIMER_REAL, 0)
        emit({"event": "load_error", "status": "error", "error": _describe(e)})
        return
    for i, test in enumerate(cfg["tests"]):
        left = deadline - monotonic()
        if left <= 0:
            emit({"i": i, "status": "timeout", "error": "total time limit reached before this test"})
            continue
        try:
            setitimer(ITIMER_REAL, max(0.001, min(cfg["timeout_s"], left)))
            value = fn(*test.get("args", []), **test.get("kwargs", {}))
            setitimer(ITIMER_REAL, 0)
            emit(None, raw='{"i": %d, "status": "ok", "value": %s}' % (i, encode(value)))
        except _Timeout:
            emit({"i": i, "status": "timeout", "error": "timed out after %.3gs" % cfg["timeout_s"]})
        except MemoryError:
            setitimer(ITIMER_REAL, 0)
            emit({"i": i, "status": "memory", "error": "MemoryError"})
        except BaseException as e:  # noqa: BLE001 - reported per test, never swallowed
            setitimer(ITIMER_REAL, 0)
            emit({"i": i, "status": "error", "error": _describe(e)})


def _child(code, stdin_r, stdout_w, stderr_w):
    """Forked child for one stdio test; never returns (whatever happens, it ends in ``_exit``)."""
    status = UNCAUGHT_EXIT
    try:
        status = _child_body(code, stdin_r, stdout_w, stderr_w)
    finally:
        os._exit(status & 0xFF)


def _child_body(code, stdin_r, stdout_w, stderr_w):
    """Wire the pipes, run the program, return its exit status."""
    os.setpgid(0, 0)
    os.dup2(stdin_r, 0)
    os.dup2(stdout_w, 1)
    os.dup2(stderr_w, 2)
    os.closerange(3, 1 << 16)  # the results fd never reaches the program
    sys.stdin = open(0, "r", closefd=False)
    sys.stdout = open(1, "w", closefd=False)
    sys.stderr = open(2, "w", closefd=False)
    status = 0
    try:
        exec(code, {"__name__": "__main__", "__builtins__": __builtins__})
    except SystemExit as e:
        status = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except MemoryError:
        return MEMORY_EXIT
    except BaseException as e:  # noqa: BLE001 - the exit status carries it to the harness
        os.write(2, ("%s\n" % _describe(e)).encode("utf-8", "replace"))
        return UNCAUGHT_EXIT
    sys.stdout.flush()  # if the program broke stdout this raises, and _child exits UNCAUGHT_EXIT
    return status


def _run_child(code, stdin_data, timeout_s, cap):
    """Fork one child, feed stdin, collect capped stdout, enforce the timeout. Returns a dict."""
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        pid = os.fork()
    except OSError as e:
        for fd in (in_r, in_w, out_r, out_w, err_r, err_w):
            os.close(fd)
        return {"status": "error", "error": "could not start the program: %s" % e}
    if pid == 0:
        _child(code, in_r, out_w, err_w)
    for fd in (in_r, out_w, err_w):
        os.close(fd)
    deadline = time.monotonic() + timeout_s
    out, err, status = bytearray(), bytearray(), None
    pending = memoryview(stdin_data)
    os.set_blocking(in_w, False)
    readers, writers = {out_r: out, err_r: err}, [in_w] if pending else []
    if not pending:
        os.close(in_w)
    while readers or writers:
        left = deadline - time.monotonic()
        if left <= 0:
            status = "timeout"
            break
        r, w, _ = select.select(list(readers), writers, [], left)
        for fd in w:
            try:
                n = os.write(fd, pending[: 1 << 16])
            except (BrokenPipeError, BlockingIOError):
                n = len(pending)
            pending = pending[n:]
            if not pending:
                writers.clear()
                os.close(fd)
        for fd in r:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                del readers[fd]
                os.close(fd)
                continue
            buf = readers[fd]
            buf += chunk
            if fd == out_r and len(buf) > cap:
                status = "output_limit"
            if fd == err_r and len(buf) > 4096:
                del buf[4096:]
        if status:
            break
    if status:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            os.kill(pid, signal.SIGKILL)
    for fd in list(readers) + writers:
        os.close(fd)
    _, wait_status = os.waitpid(pid, 0)
    stdout = bytes(out[:cap]).decode("utf-8", "replace")
    stderr_tail = bytes(err[-300:]).decode("utf-8", "replace")
    if status == "timeout":
        return {"status": "timeout", "stdout": stdout, "error": "timed out after %.3gs" % timeout_s}
    if status == "output_limit":
        return {"status": "output_limit", "stdout": stdout, "error": "stdout exceeded %d bytes" % cap}
    if os.WIFSIGNALED(wait_status):
        sig = os.WTERMSIG(wait_status)
        return {"status": "error", "stdout": stdout, "error": "killed by signal %d" % sig}
    code_ = os.WEXITSTATUS(wait_status)
    if code_ == MEMORY_EXIT:
        return {"status": "memory", "stdout": stdout, "error": "MemoryError", "exit": code_}
    if code_ != 0:
        return {"status": "error", "stdout": stdout, "error": "exit status %d: %s" % (code_, stderr_tail), "exit": code_}
    return {"status": "ok", "stdout": stdout, "exit": 0}


def run_stdio(cfg, emit):
    deadline = time.monotonic() + cfg["total_timeout_s"]
    try:
        code = compile(cfg["program"], "<solution>", "exec")
    except BaseException as e:  # noqa: BLE001 - a program that does not compile fails every test
        emit({"event": "load_error", "status": "error", "error": _describe(e)})
        return
    for i, test in enumerate(cfg["tests"]):
        left = deadline - time.monotonic()
        if left <= 0:
            emit({"i": i, "status": "timeout", "error": "total time limit reached before this test"})
            continue
        stdin_data = test.get("stdin", "").encode("utf-8")
        result = _run_child(code, stdin_data, min(cfg["timeout_s"], left), cfg["output_bytes"])
        result["i"] = i
        emit(result)


def main():
    results_fd = int(sys.argv[1])
    cfg = json_loads(_read_all(0).decode("utf-8"))
    _set_limits(cfg)
    os.chdir(cfg["cwd"])
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    emit = _emit_fn(results_fd)
    emit({"event": "started"})
    if cfg["mode"] == "function":
        run_function(cfg, emit)
    else:
        run_stdio(cfg, emit)
    emit({"event": "done"})


if __name__ == "__main__":
    main()
