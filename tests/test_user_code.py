"""User code is bounded and contained (rft.isolation.user_code): SystemExit, KeyboardInterrupt, os._exit, a busy
loop and a sleep from every entry point -- a TRL environment's reset, tool and get_reward, the
pre-flight check, a python grader with and without grading workers, a verifiers reward -- score 0
with the reason while the caller goes on; a process that used a hung tool exits; and under
``network: deny`` no way to the network works (UDP, the C-level socket, a thread, asyncio.to_thread,
a subprocess), while ``allow`` reaches the same listener (so the checks can fail).

The network tests need unprivileged user namespaces; they are skipped where the machine cannot make
them, unless ``RFT_REQUIRE_SANDBOX=1`` (set in CI), which turns that skip into a failure.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from rft.config.base import SpecError
from rft.data import Example
from rft.envs.base import EpisodeLimits
from rft.graders.pool import GraderPool
from rft.graders.registry import build
from rft.isolation.user_code import UserCodeHost, network_isolation_problem

SRC = str(Path(__file__).resolve().parents[1] / "src")
NO_NETNS = network_isolation_problem()
needs_netns = pytest.mark.skipif(
    NO_NETNS is not None and os.environ.get("RFT_REQUIRE_SANDBOX") != "1",
    reason=f"this machine cannot make a network namespace ({NO_NETNS}); CI sets RFT_REQUIRE_SANDBOX=1")

USER_CODE = '''
import _socket, asyncio, os, socket, subprocess, sys, threading, time


def misbehave(mode):
    if mode == "exit":
        raise SystemExit(0)
    if mode == "interrupt":
        raise KeyboardInterrupt
    if mode == "os_exit":
        os._exit(0)
    if mode == "loop":
        while True:
            pass
    if mode == "sleep":
        time.sleep(1e9)


class Hostile:
    """A TRL environment class that misbehaves in reset, its tool or get_reward, as its row says."""

    def reset(self, **row):
        self.mode, self.where = row["mode"], row["where"]
        if self.where == "reset":
            misbehave(self.mode)

    def act(self) -> str:
        if self.where == "tool":
            misbehave(self.mode)
        return "acted"

    def get_reward(self) -> float:
        if self.where == "reward":
            misbehave(self.mode)
        return 1.0


def grade(sample, item):
    """A python grader: misbehaves as the completion says, or tries the network as it says."""
    if sample["output_text"] in NET:
        NET[sample["output_text"]](item["port"])
        return 1.0
    misbehave(sample["output_text"])
    return 1.0


def tcp(port):
    s = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)  # C level: under Python's socket module
    s.settimeout(3)
    s.connect(("127.0.0.1", port))


def udp(port):
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"hello", ("127.0.0.1", port))


def thread(port):
    errors = []
    t = threading.Thread(target=lambda: _catch(errors, tcp, port))
    t.start()
    t.join()
    if errors:
        raise errors[0]


def _catch(errors, fn, port):
    try:
        fn(port)
    except OSError as e:
        errors.append(e)


def to_thread(port):
    asyncio.run(asyncio.to_thread(tcp, port))


def child_python(port):
    subprocess.run([sys.executable, "-c", f"import socket; socket.create_connection(('127.0.0.1', {port}), 3)"],
                   check=True, capture_output=True)


def curl(port):
    done = subprocess.run(["curl", "-sS", "-m", "1", "--noproxy", "*", f"http://127.0.0.1:{port}/"], capture_output=True)
    if done.returncode == 7:  # could not connect (28, a timeout after connecting, is a connection)
        raise OSError(f"curl: {done.stderr.decode()}")


NET = {"tcp": tcp, "udp": udp, "thread": thread, "to_thread": to_thread, "child_python": child_python,
       "curl": curl}
'''

MODES = ["exit", "interrupt", "os_exit", "loop", "sleep"]
REASON = {"exit": "SystemExit", "interrupt": "KeyboardInterrupt", "os_exit": "died", "loop": "ran past",
          "sleep": "ran past"}


@pytest.fixture(scope="module")
def user_file(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("user") / "hostile.py"
    path.write_text(USER_CODE)
    return str(path)


# -- TRL environment classes: reset, a tool, get_reward, the pre-flight check -------------------------


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    from rft.models.load import load_tokenizer

    return load_tokenizer(tiny_model_dir)


class Scripted:
    """Every episode's turn k is ``script[k]``."""

    def __init__(self, tok, script):
        self.tok, self.script, self.calls = tok, script, 0

    def generate(self, prompts, n, params, generator=None, seeds=None):
        from rft.rollout.base import Completion

        text = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        ids = self.tok(text, add_special_tokens=False)["input_ids"] + [self.tok.eos_token_id]
        return [[Completion(list(ids), text, "stop") for _ in range(n)] for _ in prompts]


@pytest.mark.parametrize("where", ["reset", "tool", "reward"])
@pytest.mark.parametrize("mode", MODES)
def test_a_trl_environment_that_misbehaves_scores_zero_and_the_run_goes_on(tok, user_file, where, mode):
    from rft.envs.episodes import EpisodeRunner
    from rft.envs.tools import TrlEnvironment
    from rft.rollout.base import SamplingParams

    env = TrlEnvironment.load(f"{user_file}:Hostile", EpisodeLimits(max_turns=3, max_tokens=400, timeout_s=1.5))
    rows = [Example("bad", "go", {"mode": mode, "where": where}), Example("good", "go", {"mode": "ok", "where": where})]
    prompts = [tok(e.prompt)["input_ids"] for e in rows]
    out = EpisodeRunner.of(env, tok).run(Scripted(tok, ["CALL act()", "done"]), rows, prompts, 1,
                                         SamplingParams(max_new_tokens=8), seeds=[1, 2])
    bad, good = out[0][0].episode, out[1][0].episode
    assert bad.end == "env_error" and bad.grade.score == 0.0 and bad.grade.details["error"], bad
    assert REASON[mode] in bad.grade.reason, bad.grade.reason
    assert good.grade.score == 1.0, good  # the other episode, in another host, is untouched


@pytest.mark.parametrize("mode", ["exit", "sleep"])
def test_the_preflight_check_turns_a_misbehaving_reset_into_a_config_error(user_file, mode):
    from rft.config import ConfigError
    from rft.envs.tools import TrlEnvironment
    from rft.training.session import check_environment

    env = TrlEnvironment.load(f"{user_file}:Hostile", EpisodeLimits(max_turns=2, timeout_s=1.0))
    with pytest.raises(ConfigError, match=f"cannot start an episode.*{REASON[mode]}"):
        check_environment(env, Example("x", "go", {"mode": mode, "where": "reset"}))


def test_a_process_that_used_a_hung_tool_exits_promptly(user_file):
    script = textwrap.dedent(f"""
        import time
        from rft.data import Example
        from rft.envs.base import EpisodeLimits
        from rft.envs.episodes import EpisodeRunner
        from rft.envs.tools import TrlEnvironment
        from rft.rollout.base import Completion, SamplingParams

        class Engine:
            def generate(self, prompts, n, params, generator=None, seeds=None):
                return [[Completion([1, 2], "CALL act()", "stop") for _ in range(n)] for _ in prompts]

        env = TrlEnvironment.load({user_file + ':Hostile'!r}, EpisodeLimits(max_turns=3, timeout_s=1.0))
        rows = [Example(str(i), "go", {{"mode": "sleep", "where": "tool"}}) for i in range(3)]
        for step in range(2):  # two steps: each used to leave a thread behind, asleep in the tool
            out = EpisodeRunner.of(env, None).run(Engine(), rows, [[1]] * 3, 1, SamplingParams(max_new_tokens=4))
            assert all(c.episode.grade.score == 0.0 for g in out for c in g)
        print("ran", time.time(), flush=True)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": SRC})
    assert proc.returncode == 0, proc.stderr[-2000:]
    ran = float(proc.stdout.split()[-1])
    assert time.time() - ran < 15.0  # it exits, not after the tool's 1e9 s


# -- python graders, in-process and in workers -------------------------------------------------------


@pytest.mark.parametrize("workers", [0, 1])
@pytest.mark.parametrize("mode", MODES)
def test_a_python_grader_that_misbehaves_scores_zero_and_grading_goes_on(user_file, workers, mode):
    spec = {"type": "python", "file": user_file, "timeout_s": 1.0}
    with GraderPool(spec, workers=workers, timeout_s=30.0) as pool:
        grades = pool.grade([mode, "ok", mode, "ok"], [Example(str(i), "p") for i in range(4)])
        errors = pool.pop_stats().metrics()["grader/python/errors"]
    assert [g.score for g in grades] == [0.0, 1.0, 0.0, 1.0], grades
    assert REASON[mode] in grades[0].reason and grades[0].errored and errors == 2, grades[0]
    assert pool.replaced == 0  # the host was replaced, never the grading worker


def test_a_python_grader_module_that_exits_or_hangs_on_import_is_a_spec_error(tmp_path):
    path = tmp_path / "bad.py"
    path.write_text("raise SystemExit(3)\n")
    with pytest.raises(SpecError, match="SystemExit"):
        build({"type": "python", "function": f"{path}:grade"})


# -- verifiers rewards ---------------------------------------------------------------------------------

needs_verifiers = pytest.mark.skipif(
    subprocess.run([sys.executable, "-c", "import verifiers.v1"], capture_output=True).returncode != 0,
    reason="verifiers is not installed (pip install 'rft[verifiers]')")

V1_ENV = '''
import sys
import verifiers.v1 as vf
sys.path.insert(0, {folder!r})
from hostile import NET, misbehave

class Data(vf.TaskData):
    port: int = 0

class MyTask(vf.Task[Data]):
    @vf.reward(weight=1.0)
    async def reward(self, trace) -> float:
        reply = trace.last_reply
        if reply in NET:
            try:
                NET[reply](self.data.port)
            except OSError:
                return 0.5  # careless: swallows the failure
            return 1.0
        misbehave(reply)
        return 1.0

class MyTaskset(vf.Taskset[MyTask, vf.TasksetConfig]):
    def load(self):
        yield MyTask(Data(prompt="go"), self.config.task)

__all__ = ["MyTaskset"]
'''


@pytest.fixture(scope="module")
def v1_env(user_file) -> str:
    path = Path(user_file).with_name("v1_env.py")
    path.write_text(V1_ENV.format(folder=str(Path(user_file).parent)))
    return str(path)


@needs_verifiers
@pytest.mark.parametrize("mode", MODES)
def test_a_verifiers_reward_that_misbehaves_scores_zero_and_grading_goes_on(v1_env, mode):
    grader = build({"type": "verifiers", "environment": v1_env, "timeout_s": 0.5, "network": "allow"})
    bad = grader(mode, Example("a", "go", {}))
    assert bad.score == 0.0 and bad.errored and REASON[mode] in bad.reason, bad
    assert grader("ok", Example("b", "go", {})).score == 1.0


# -- network: deny ----------------------------------------------------------------------------------


@pytest.fixture
def listeners():
    """A TCP listener and a UDP socket on loopback, and a function saying whether anything reached them."""
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(8)
    tcp.settimeout(0.3)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(0.3)

    def reached(kind: str) -> bool:
        try:
            if kind == "udp":
                udp.recvfrom(100)
            else:
                tcp.accept()[0].close()
        except (socket.timeout, TimeoutError):
            return False
        return True

    yield tcp.getsockname()[1], udp.getsockname()[1], reached
    tcp.close()
    udp.close()


ATTEMPTS = ["tcp", "udp", "thread", "to_thread", "child_python"] + (["curl"] if shutil.which("curl") else [])


@needs_netns
@pytest.mark.parametrize("network", ["deny", "allow"])
@pytest.mark.parametrize("attempt", ATTEMPTS)
def test_network_deny_blocks_every_way_out_and_allow_does_not(user_file, listeners, attempt, network):
    tcp_port, udp_port, reached = listeners
    grader = build({"type": "python", "file": user_file, "network": network, "timeout_s": 10.0})
    port = udp_port if attempt == "udp" else tcp_port
    grade = grader(attempt, Example("n", "p", {"port": port}))
    if network == "deny":
        assert grade.score == 0.0 and grade.errored, grade
        assert not reached(attempt)
    else:  # the control: the same attempt gets through, so the deny case can fail
        assert grade.score == 1.0, grade
        assert reached(attempt)


@needs_netns
@needs_verifiers
@pytest.mark.parametrize("attempt", ["udp", "thread"])
def test_a_verifiers_reward_cannot_reach_the_network_by_ways_the_socket_patch_missed(v1_env, listeners, attempt):
    tcp_port, udp_port, reached = listeners
    grader = build({"type": "verifiers", "environment": v1_env})  # network: deny is the default
    grade = grader(attempt, Example("n", "go", {"port": udp_port if attempt == "udp" else tcp_port}))
    assert grade.score < 1.0 and not reached(attempt), grade


@needs_netns
def test_a_trl_environment_with_network_deny_has_no_network(tmp_path, listeners):
    from rft.envs.tools import TrlEnvironment

    tcp_port, _, reached = listeners
    path = tmp_path / "netenv.py"
    path.write_text(textwrap.dedent(f"""
        import socket
        class Net:
            def reset(self, **row):
                pass
            def connect(self) -> str:
                socket.create_connection(("127.0.0.1", {tcp_port}), timeout=3)
                return "connected"
    """))
    for network, expected in (("deny", "Error: connect raised"), ("allow", "connected")):
        ep = TrlEnvironment.load(f"{path}:Net", EpisodeLimits(max_turns=2, timeout_s=10.0), "text", network).reset(
            Example("n", "go", {}))
        assert expected in ep.step("CALL connect()")
        assert reached("tcp") == (network == "allow")


def test_network_deny_is_refused_with_the_reason_and_the_fix_where_no_namespace_can_be_made(user_file):
    spec = {"type": "python", "file": user_file, "network": "deny"}
    if NO_NETNS is not None:  # this machine is such a machine
        with pytest.raises(SpecError, match="network.*deny.*Fix: allow unprivileged user namespaces"):
            build(spec)
        return
    # make one: a user namespace allowed no further user namespaces
    code = (f"from rft.graders.registry import build\ntry:\n    build({spec!r})\nexcept Exception as e:\n"
            "    print(type(e).__name__, e)\n")
    inner = f"echo 0 > /proc/sys/user/max_user_namespaces && exec {sys.executable} -c {shlex.quote(code)}"
    proc = subprocess.run(["unshare", "-Ur", "sh", "-c", inner], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": SRC})
    assert proc.stdout.startswith("SpecError") and "field 'network' = 'deny'" in proc.stdout, proc.stdout + proc.stderr
    assert "Fix: allow unprivileged user namespaces" in proc.stdout and "network: allow" in proc.stdout


def test_a_call_costs_little_and_the_host_survives_what_the_code_raises(user_file):
    from rft.envs import tools

    host = UserCodeHost()
    key = host.load(tools._load_factory, (f"{user_file}:Hostile",))
    ekey, (names, has_reward) = host.start(key, tools._start_episode, ("go", {"mode": "ok", "where": ""}), 10.0)
    assert names == ["act"] and has_reward
    t0 = time.perf_counter()
    for _ in range(200):
        assert host.call(ekey, tools._run_tool, ("act", {}), 10.0) == "acted"
    per_call = (time.perf_counter() - t0) / 200
    assert per_call < 0.05, per_call  # 0.26 ms on the reference machine; generous for a loaded CI box
    host.close()
