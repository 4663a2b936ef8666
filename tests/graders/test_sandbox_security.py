"""Hostile programs against the ``code`` grader's sandbox: one named test per attack.

Every test checks the grade (0, or the exact partial score an honest reading gives), that the host
is unharmed (planted files intact, listener never connected, victim process alive, nothing
written), that no sandbox process is left behind, and that the run ended within its time bound.

The suite runs in the best isolation this machine offers (bwrap where installed), or in the one
named by ``RFT_TEST_ISOLATION``. Tests that need isolation are skipped when only rlimits are
available, unless ``RFT_REQUIRE_SANDBOX=1`` (set in CI), which turns that skip into a failure.
A subset also runs in the ``unshare`` fallback.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from rft.data import Example
from rft.graders.base import Grade
from rft.graders.registry import build
from rft.isolation.sandbox import SandboxUnavailable, get_sandbox, uid_range

HARNESS_MARK = b"rft-sandbox-harness"
OUR_UIDS = uid_range(os.getpid())  # as root, every run of this process uses one of these host uids




def _best_isolation() -> str:
    try:
        return get_sandbox("auto").isolation
    except SandboxUnavailable:  # auto never falls back to rlimits only; these tests then name it
        return "none"


ISOLATION = os.environ.get("RFT_TEST_ISOLATION") or _best_isolation()
needs_isolation = pytest.mark.skipif(
    ISOLATION == "none" and os.environ.get("RFT_REQUIRE_SANDBOX") != "1",
    reason="no bwrap/unshare isolation on this machine (install bubblewrap; CI sets RFT_REQUIRE_SANDBOX=1)",
)


def _unshare_available() -> bool:
    try:
        get_sandbox("unshare")
    except SandboxUnavailable:
        return False
    return True


ISOLATED_MODES = [ISOLATION] + (["unshare"] if ISOLATION != "unshare" and _unshare_available() else [])


def leftover_processes() -> list[int]:
    """Processes (zombies included) left by this test process's sandbox runs: those with one of
    our private uids when we are root, else any with the harness's command line."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            uid = entry.stat().st_uid
            cmdline = (entry / "cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue  # the process ended while we looked
        if uid in OUR_UIDS if os.geteuid() == 0 else HARNESS_MARK in cmdline:
            found.append(int(entry.name))
    return found


def assert_no_leftovers(within_s: float = 1.0) -> None:
    deadline = time.monotonic() + within_s
    while leftover_processes() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert leftover_processes() == []


def run_hostile(program: str, tests: list[dict], *, bound_s: float, mode: str = "function",
                isolation: str = ISOLATION, **spec) -> Grade:
    """Grade ``program`` and check the invariants every hostile run must keep."""
    spec = {"type": "code", "mode": mode, "timeout_s": 1.5, "test_timeout_s": 0.5, "isolation": isolation, **spec}
    grader = build(spec)
    example = Example("hostile", "p", {"entry_point": "f", "tests": tests})
    t0 = time.monotonic()
    grade = grader(textwrap.dedent(program), example)
    elapsed = time.monotonic() - t0
    assert elapsed < bound_s, f"took {elapsed:.2f}s, bound {bound_s}s"
    assert grade.details.get("isolation") == isolation
    assert "error" not in grade.details, grade.reason  # the sandbox itself must have worked
    assert_no_leftovers()
    return grade


ONE_TEST = [{"args": [1], "expected": 2}]
TWO_TESTS = [{"args": [1], "expected": 2}, {"args": [2], "expected": 4}]


def statuses(grade: Grade) -> list[str]:
    return [t["status"] for t in grade.details["tests"]]


# --- resource exhaustion -------------------------------------------------------------------------


def test_fork_bomb_is_capped_and_leaves_no_process():
    grade = run_hostile("""
        import os
        def f(x):
            while True:
                try:
                    os.fork()
                except OSError:
                    pass
        """, ONE_TEST, bound_s=5, processes=8, timeout_s=1.0)
    assert grade.score == 0.0
    assert statuses(grade) == ["timeout"]


def test_thread_bomb_is_capped_by_the_process_limit():
    grade = run_hostile("""
        import threading, time
        def f(x):
            n = 0
            try:
                while True:
                    threading.Thread(target=time.sleep, args=(5,), daemon=True).start()
                    n += 1
            except RuntimeError:
                return n
        """, [{"args": [1], "expected": 10_000}], bound_s=5, processes=8)
    assert grade.score == 0.0
    assert statuses(grade) == ["failed"]  # it returned how many threads it got: far fewer


def test_memory_bomb_single_allocation_reports_memory():
    grade = run_hostile("""
        def f(x):
            return len(bytearray(1 << 40))
        """, ONE_TEST, bound_s=4, memory_mb=128)
    assert grade.score == 0.0
    assert statuses(grade) == ["memory"]


def test_memory_bomb_gradual_growth_reports_memory():
    grade = run_hostile("""
        def f(x):
            hoard = []
            while True:
                hoard.append(bytearray(8 << 20))
        """, ONE_TEST, bound_s=4, memory_mb=128)
    assert grade.score == 0.0
    assert statuses(grade) == ["memory"]


def test_infinite_loop_times_out_per_test():
    grade = run_hostile("""
        def f(x):
            while True:
                pass
        """, TWO_TESTS, bound_s=4, test_timeout_s=0.3)
    assert grade.score == 0.0
    assert statuses(grade) == ["timeout", "timeout"]
    assert grade.details["timeout"] is True


def test_sleep_past_the_timeout_times_out_and_the_fast_test_still_counts():
    grade = run_hostile("""
        import time
        def f(x):
            if x == 2:
                time.sleep(30)
            return 2 * x
        """, TWO_TESTS, bound_s=4, test_timeout_s=0.3)
    assert grade.score == 0.5
    assert statuses(grade) == ["passed", "timeout"]


def test_ignoring_sigterm_and_sigalrm_is_killed_at_the_wall_clock():
    grade = run_hostile("""
        import signal
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
        def f(x):
            while True:
                pass
        """, TWO_TESTS, bound_s=5, timeout_s=1.0)
    assert grade.score == 0.0
    assert statuses(grade) == ["timeout", "timeout"]


def test_stdout_flood_in_function_mode_hits_the_output_limit():
    grade = run_hostile("""
        def f(x):
            while True:
                print("x" * 10000)
        """, ONE_TEST, bound_s=4, max_output_kb=16)
    assert grade.score == 0.0
    assert statuses(grade) == ["output_limit"]


def test_stdout_flood_in_stdio_mode_hits_the_output_limit():
    grade = run_hostile("""
        import sys
        while True:
            sys.stdout.write("y" * 65536)
        """, [{"stdin": "", "expected_stdout": "y"}], bound_s=4, mode="stdio", max_output_kb=16)
    assert grade.score == 0.0
    assert statuses(grade) == ["output_limit"]


def test_stderr_flood_is_cut_off():
    grade = run_hostile("""
        import sys
        def f(x):
            while True:
                sys.stderr.write("z" * 65536)
        """, ONE_TEST, bound_s=4)
    assert grade.score == 0.0
    assert statuses(grade) == ["output_limit"]


def test_huge_return_value_hits_the_results_limit():
    grade = run_hostile("""
        def f(x):
            return "a" * (64 << 20)
        """, ONE_TEST, bound_s=5, max_output_kb=4, memory_mb=512)
    assert grade.score == 0.0
    assert statuses(grade) == ["output_limit"]


@needs_isolation
def test_disk_fill_is_bounded_and_never_reaches_the_host_disk():
    before = shutil.disk_usage("/").free
    grade = run_hostile("""
        import os
        def f(x):
            written = 0
            for n in range(10_000):
                try:
                    with open("/tmp/fill%d" % n, "wb") as fh:
                        for _ in range(64):
                            fh.write(b"\\0" * (1 << 20))
                            written += 1 << 20
                except OSError:
                    if n > 3:
                        break
            return written
        """, [{"args": [1], "expected": -1}], bound_s=5)
    assert grade.score == 0.0
    assert before - shutil.disk_usage("/").free < 64 << 20


# --- escaping the sandbox ------------------------------------------------------------------------


@needs_isolation
@pytest.mark.parametrize("isolation", ISOLATED_MODES)
def test_connect_to_a_host_listener_never_connects(isolation):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    try:
        grade = run_hostile(f"""
            import socket
            def f(x):
                s = socket.socket()
                s.settimeout(0.3)
                s.connect(("127.0.0.1", {port}))
                s.sendall(b"pwned")
                return 2 * x
            """, ONE_TEST, bound_s=4, isolation=isolation)
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing ever connected
    finally:
        listener.close()
    assert grade.score == 0.0
    assert statuses(grade) == ["error"]


@needs_isolation
@pytest.mark.parametrize("isolation", ISOLATED_MODES)
def test_reading_a_planted_host_file_fails(isolation, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cret-planted-value")
    secret.chmod(0o644)
    grade = run_hostile(f"""
        def f(x):
            for path in ({str(secret)!r}, "/proc/1/root" + {str(secret)!r}, "/proc/self/cwd/../{secret.name}"):
                try:
                    return open(path).read()
                except OSError:
                    pass
            return "not found"
        """, [{"args": [1], "expected": "s3cret-planted-value"}], bound_s=4, isolation=isolation)
    assert grade.score == 0.0
    assert secret.read_text() == "s3cret-planted-value"


@needs_isolation
@pytest.mark.parametrize("isolation", ISOLATED_MODES)
def test_write_outside_the_scratch_dir_does_not_reach_the_host(isolation, tmp_path):
    tmp_path.chmod(0o777)
    targets = [tmp_path / "pwned", Path("/usr/rft-pwned"), Path("/rft-pwned"), Path.cwd() / "rft-pwned"]
    grade = run_hostile(f"""
        import os
        def f(x):
            for path in {[str(t) for t in targets]!r}:
                try:
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    with open(path, "w") as fh:
                        fh.write("pwned")
                except OSError:
                    pass
            return 0
        """, ONE_TEST, bound_s=4, isolation=isolation)
    assert grade.score == 0.0
    assert [t for t in targets if t.exists()] == []


def test_signalling_the_parent_and_a_host_process_harms_neither():
    victim = subprocess.Popen(["sleep", "30"])
    try:
        grade = run_hostile(f"""
            import os, signal
            def f(x):
                for pid in ({victim.pid}, {os.getpid()}, os.getppid(), 1, -1):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
                return 2 * x
            """, TWO_TESTS, bound_s=4)
        assert victim.poll() is None
    finally:
        victim.kill()
        victim.wait()
    assert grade.score == 1.0  # the kills failed or hit only the sandbox's own processes


@pytest.mark.parametrize("isolation", ISOLATED_MODES)
def test_daemon_does_not_outlive_the_run(isolation, tmp_path):
    if isolation == "none" and os.geteuid() != 0:
        pytest.skip("without namespaces or a private uid a setsid() daemon can escape (documented)")
    tmp_path.chmod(0o777)
    marker = tmp_path / "daemon-was-here"
    grade = run_hostile(f"""
        import os, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                time.sleep(1.5)
                open({str(marker)!r}, "w").write("alive")
                time.sleep(60)
            os._exit(0)
        def f(x):
            return 0
        """, ONE_TEST, bound_s=4, isolation=isolation)
    assert grade.score == 0.0
    time.sleep(1.7)
    assert not marker.exists()
    assert leftover_processes() == []


def test_ctypes_segfault_fails_that_test_and_keeps_earlier_passes():
    grade = run_hostile("""
        import ctypes
        def f(x):
            if x == 2:
                ctypes.string_at(0)
            return 2 * x
        """, TWO_TESTS, bound_s=4)
    assert grade.score == 0.5
    assert statuses(grade) == ["passed", "error"]
    assert "SIGSEGV" in grade.details["tests"][1]["message"]


@needs_isolation
def test_no_capabilities_and_no_new_user_namespaces_inside():
    grade = run_hostile("""
        import ctypes
        def f(x):
            caps = int(open("/proc/self/status").read().split("CapEff:")[1].split()[0], 16)
            CLONE_NEWUSER = 0x10000000
            userns = ctypes.CDLL(None, use_errno=True).unshare(CLONE_NEWUSER) == 0
            return [caps, userns]
        """, [{"args": [1], "expected": [0, False]}], bound_s=4)
    assert grade.score == 1.0  # the sandbox reports no capabilities and no way to get them


# --- cheating the verdict ------------------------------------------------------------------------


def test_sys_exit_zero_before_the_tests_scores_zero():
    grade = run_hostile("""
        import sys
        sys.exit(0)
        def f(x):
            return 2 * x
        """, TWO_TESTS, bound_s=4)
    assert grade.score == 0.0
    assert statuses(grade) == ["error", "error"]


def test_os_exit_zero_before_the_tests_scores_zero():
    grade = run_hostile("""
        import os
        os._exit(0)
        def f(x):
            return 2 * x
        """, TWO_TESTS, bound_s=4)
    assert grade.score == 0.0
    assert statuses(grade) == ["error", "error"]


def test_sys_exit_inside_the_function_fails_that_test_only():
    grade = run_hostile("""
        import sys
        def f(x):
            if x == 2:
                sys.exit(0)
            return 2 * x
        """, TWO_TESTS, bound_s=4)
    assert grade.score == 0.5
    assert statuses(grade) == ["passed", "error"]


def test_always_equal_object_is_an_error_not_a_pass():
    grade = run_hostile("""
        class Anything:
            def __eq__(self, other):
                return True
            def __ne__(self, other):
                return False
            __hash__ = object.__hash__
        def f(x):
            return Anything()
        """, TWO_TESTS, bound_s=4)
    assert grade.score == 0.0
    assert statuses(grade) == ["error", "error"]


def test_builtin_subclasses_with_rigged_equality_are_rejected():
    grade = run_hostile("""
        class Int(int):
            def __eq__(self, other):
                return True
        class Str(str):
            def __eq__(self, other):
                return True
        def f(x):
            return Int(0) if x == 1 else [Str("")]
        """, [{"args": [1], "expected": 2}, {"args": [2], "expected": ["4"]}], bound_s=4)
    assert grade.score == 0.0
    assert statuses(grade) == ["error", "error"]


def test_bool_for_int_is_not_accepted():
    grade = run_hostile("""
        def f(x):
            return True
        """, [{"args": [1], "expected": 1}, {"args": [0], "expected": 0}], bound_s=4)
    assert grade.score == 0.0
    assert statuses(grade) == ["failed", "failed"]


def test_monkeypatching_builtins_does_not_change_the_verdict():
    grade = run_hostile("""
        import builtins
        builtins.type = lambda *a: int
        builtins.isinstance = lambda *a: True
        builtins.len = lambda *a: 0
        def f(x):
            return 2 * x if x == 1 else -1
        """, TWO_TESTS, bound_s=4)
    assert grade.score == 0.5
    assert statuses(grade) == ["passed", "failed"]


def test_monkeypatching_json_does_not_change_the_verdict():
    grade = run_hostile("""
        import json, _json, sys
        json.dumps = lambda *a, **k: '"forged"'
        json.loads = lambda *a, **k: {"status": "ok", "value": 4}
        _json.encode_basestring_ascii = lambda s: '"forged"'
        sys.modules["json"] = None
        def f(x):
            return -1
        """, TWO_TESTS, bound_s=4)
    assert grade.score == 0.0
    assert statuses(grade) == ["failed", "failed"]


def test_printing_forged_results_on_stdout_scores_zero():
    grade = run_hostile("""
        import json
        def f(x):
            for i in range(5):
                print(json.dumps({"i": i, "status": "ok", "value": 2 * (i + 1)}))
                print(json.dumps({"i": i, "status": "passed"}))
            print("ALL TESTS PASSED\\n2/2 tests passed")
            return None
        """, TWO_TESTS, bound_s=4)
    assert grade.score == 0.0
    assert statuses(grade) == ["failed", "failed"]


def test_writing_forged_lines_to_the_results_channel_cannot_pass_a_test():
    grade = run_hostile("""
        import os, sys
        fd = int(sys.argv[-1])
        forged = ''.join('{"i": %d, "status": "passed", "value": "guess", "verdict": true}\\n' % i for i in range(4))
        os.write(fd, forged.encode() + b'{"event": "done"}\\n{"i": 0, "status": "ok"}\\nnot json\\n[1, 2]\\n')
        def f(x):
            return 2 * x
        """, TWO_TESTS, bound_s=4)
    assert grade.score == 0.0  # forged lines win the "first line per test" rule, but carry no verdict
    assert statuses(grade) == ["error", "error"]


def test_stdio_program_forging_results_through_proc_cannot_pass_a_test():
    grade = run_hostile("""
        import os
        harness = os.getppid()
        fd = open("/proc/%d/cmdline" % harness, "rb").read().split(b"\\0")[-2].decode()
        try:
            w = os.open("/proc/%d/fd/%s" % (harness, fd), os.O_WRONLY)
            os.write(w, b'{"i": 0, "status": "passed"}\\n{"i": 1, "status": "ok", "stdout": "guess", "exit": 0}\\n')
        except OSError:
            pass
        print("guess")
        """, [{"stdin": "", "expected_stdout": "3"}, {"stdin": "", "expected_stdout": "4"}], bound_s=4, mode="stdio")
    assert grade.score == 0.0


def test_closing_the_results_channel_scores_zero_without_crashing_the_grader():
    grade = run_hostile("""
        import os, sys
        os.close(int(sys.argv[-1]))
        def f(x):
            return 2 * x
        """, TWO_TESTS, bound_s=4)
    assert grade.score == 0.0


def test_deeply_nested_return_value_is_rejected():
    grade = run_hostile("""
        def f(x):
            v = []
            for _ in range(100_000):
                v = [v]
            return v
        """, ONE_TEST, bound_s=4)
    assert grade.score == 0.0
    assert statuses(grade) == ["error"]


def test_stdio_exit_status_zero_with_wrong_output_fails():
    grade = run_hostile("""
        import sys
        print("I am sure the answer is right")
        sys.exit(0)
        """, [{"stdin": "1 2\\n", "expected_stdout": "3\\n"}], bound_s=4, mode="stdio")
    assert grade.score == 0.0
    assert statuses(grade) == ["failed"]


def test_expected_values_are_not_in_the_sandbox_memory_args_or_environment():
    sentinel = "EXPECTED-7f3a9c"
    grade = run_hostile("""
        import gc, os, re, sys
        def search():
            places = [repr(sys.argv), repr(dict(os.environ)), repr(sys.modules.get("__main__").__dict__)]
            frame = sys._getframe()
            while frame is not None:
                places.append(repr(frame.f_locals))
                frame = frame.f_back
            for obj in gc.get_objects():
                if type(obj) in (dict, list, tuple):
                    places.append(repr(obj)[:10000])
            for pid in os.listdir("/proc"):
                for name in ("cmdline", "environ"):
                    try:
                        places.append(open("/proc/%s/%s" % (pid, name), "rb").read().decode("latin-1"))
                    except (OSError, ValueError):
                        pass
            for text in places:
                found = re.search("EXPECTED-[0-9a-f]{6}", text)
                if found:
                    return found.group(0)
            return "nothing found"
        def f(x):
            return search()
        """, [{"args": [1], "expected": sentinel}], bound_s=5, timeout_s=3.0, test_timeout_s=2.0)
    assert grade.score == 0.0
    assert grade.details["tests"][0]["message"].endswith('got "nothing found"')


@needs_isolation
def test_expected_values_are_not_on_the_sandbox_filesystem(tmp_path):
    sentinel = "EXPECTED-c0ffee"
    dataset = tmp_path / "dataset.jsonl"
    dataset.write_text(json.dumps({"prompt": "p", "tests": [{"args": [1], "expected": sentinel}]}) + "\n")
    dataset.chmod(0o644)
    grade = run_hostile(f"""
        import os, re
        def f(x):
            try:
                return open({str(dataset)!r}).read()
            except OSError:
                pass
            for root, dirs, files in os.walk("/"):
                dirs[:] = [d for d in dirs if os.path.join(root, d) not in ("/proc", "/sys", "/usr", "/dev")]
                for name in files:
                    try:
                        text = open(os.path.join(root, name), "rb").read(1 << 20).decode("latin-1")
                    except OSError:
                        continue
                    found = re.search("EXPECTED-[0-9a-f]{{6}}", text)
                    if found:
                        return found.group(0)
            return "nothing found"
        """, [{"args": [1], "expected": sentinel}], bound_s=5, timeout_s=3.0, test_timeout_s=2.0)
    assert grade.score == 0.0
    assert grade.details["tests"][0]["message"].endswith('got "nothing found"')
