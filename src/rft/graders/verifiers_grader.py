"""The ``verifiers`` grader: a verifiers environment's rewards, scored offline.

Spec::

    {"type": "verifiers", "environment": "my_env.py",        # or "my_env" (installed), "owner/my-env"
     "args": {"num_examples": 100},                          # load_environment(**args) / the TasksetConfig
     "pass_threshold": 1.0, "timeout_s": 30}

The environment is opened once per user-code host (:func:`rft.graders.verifiers_envs.open_environment`,
which also says how a row and a completion map onto each of verifiers' two APIs and what is refused
there with a :class:`SpecError`). Each grade runs the rewards' coroutines on a fresh event loop of its
own (in a helper thread when the calling thread already runs one), so nothing leaks from one grade
into the next, and bounds them by ``timeout_s`` (default 30 s; the host is killed ``HOST_SLACK_S``
later, which bounds synchronous rewards too).

score = sum_i w_i * r_i over the rewards with their rubric's weights -- verifiers' own total
(``trace.reward``, ``Rubric.score_rollout``); metrics (weight 0) are computed and logged but add
nothing. passed = score >= ``pass_threshold`` when set, else None (full marks, score >= 1, pass).
``details["components"]`` holds every reward and metric (logged as ``grader/verifiers/<name>``).

Offline means offline. The environment is opened and its rewards run in this process's user-code
host (:mod:`rft.isolation.user_code`), never in the grading process: with ``network: deny`` (the default)
that host has no network at all -- a new network namespace, so TCP and UDP from Python or C, from
any thread or ``asyncio.to_thread``, and programs it starts (``curl``) all fail; where the machine
cannot make the namespace, the grader is refused when built, with the fix. Inside it, a connection
attempted from the grading thread through Python's ``socket`` is also named: the grade becomes
score 0 with ``details["error"] = "NetworkRefused"`` and the address, even when the reward caught
the error itself (attempts the namespace stops elsewhere fail as the reward's own error, or go
unseen when it swallows them). ``network: allow`` runs the rewards with the caller's network. A
reward that raises (``SystemExit`` included) or returns a non-number scores 0 with its name in the
reason; a reward past ``timeout_s`` scores 0 as a timeout (a synchronous one, which no event loop
can interrupt, by its host being killed and replaced, as are ``os._exit`` and crashes); a row that
does not fit the environment's task data is a skipped grade (``details["skipped"]``, a data
problem).

Not covered: see ``rft.isolation.user_code`` for what ``deny`` leaves open (Unix sockets bound to files,
the filesystem); sandboxed execution of the rewards (they are the user's trusted code, as the
python grader's are); see ``verifiers_envs`` for the environment side.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, TypeVar

from rft.config.graders import VerifiersSpec
from rft.data import Example
from rft.graders.base import Grade
from rft.graders.python_grader import load_in_host
from rft.isolation.user_code import UserCodeFailed, UserCodeHost

T = TypeVar("T")


class NetworkRefused(ConnectionRefusedError):
    """A reward tried to open a network connection while scoring offline."""


# -- the offline guard ------------------------------------------------------------------------------

_GUARD = threading.local()  # .attempts: the addresses tried by this thread while guarded; None when off
_INSTALLED: list[bool] = []
_LOCK = threading.Lock()


def _install_guard() -> None:
    """Wrap ``socket.socket.connect``/``connect_ex`` once per process; the wrapper refuses only in a
    thread that is inside :func:`offline` (other threads -- a logger, torch.distributed -- are untouched)."""
    with _LOCK:
        if _INSTALLED:
            return
        for name in ("connect", "connect_ex"):
            real = getattr(socket.socket, name)

            def guarded(self: socket.socket, address: Any, _real: Any = real) -> Any:
                attempts = getattr(_GUARD, "attempts", None)
                if attempts is not None and self.family in (socket.AF_INET, socket.AF_INET6):
                    attempts.append(str(address)[:80])
                    raise NetworkRefused(f"rft scores offline: connection to {address} refused")
                return _real(self, address)

            setattr(socket.socket, name, guarded)
        _INSTALLED.append(True)


def offline(make: Callable[[], Awaitable[T]], timeout_s: float, guard: bool = True) -> tuple[T, list[str]]:
    """Run ``make()`` on a fresh event loop, with this thread's connections refused (``guard``); returns
    its result and the addresses it tried to reach. Raises ``asyncio.TimeoutError`` past ``timeout_s``."""
    if guard:
        _install_guard()

    def run() -> tuple[T, list[str]]:
        _GUARD.attempts = [] if guard else None
        try:
            return asyncio.run(asyncio.wait_for(make(), timeout_s)), list(_GUARD.attempts or [])
        except BaseException as e:
            e.rft_attempts = list(_GUARD.attempts or [])  # type: ignore[attr-defined]
            raise
        finally:
            _GUARD.attempts = None

    try:
        asyncio.get_running_loop()
    except RuntimeError:  # no loop in this thread: the usual case (grader workers, rft grade)
        return run()
    with ThreadPoolExecutor(1, thread_name_prefix="rft-verifiers") as ex:  # a notebook's running loop
        return ex.submit(run).result()


# -- the grader ---------------------------------------------------------------------------------------


HOST_SLACK_S = 2.0  # past timeout_s, the host is killed: a synchronous reward no event loop can stop


@dataclass(frozen=True)
class VerifiersGrader:
    spec: VerifiersSpec
    host: UserCodeHost
    key: str  # the opened environment's scorer, in the host

    @classmethod
    def from_spec(cls, spec: VerifiersSpec) -> "VerifiersGrader":
        host, key = load_in_host("verifiers", spec.network, _open, (spec.environment, dict(spec.args)),
                                 f"opening environment {spec.environment!r}")
        return cls(spec, host, key)

    @property
    def timeout_s(self) -> float:
        return self.spec.timeout_s

    def __call__(self, completion: str, example: Example) -> Grade:
        try:
            return self.host.call(self.key, _grade, (self.spec, completion, example), self.spec.timeout_s + HOST_SLACK_S)
        except UserCodeFailed as e:
            return Grade(0.0, False, f"verifiers grader: {e}"[:300], e.details())


# -- run in the host (rft.isolation.user_code) ------------------------------------------------------------------


def _open(environment: str, args: dict[str, Any]) -> Any:
    from rft.graders.verifiers_envs import open_environment

    return open_environment(environment, args)


def _grade(scorer: Any, spec: VerifiersSpec, completion: str, example: Example) -> Grade:
    from rft.graders.verifiers_envs import RewardError, RowMismatch

    try:
        scores, attempts = offline(lambda: scorer.score(completion, example), spec.timeout_s, spec.network == "deny")
    except RowMismatch as e:
        return Grade(0.0, None, str(e)[:300], {"skipped": True})
    except asyncio.TimeoutError:
        return Grade(0.0, False, f"rewards ran past timeout_s = {spec.timeout_s:g}s", {"error": "Timeout", "timeout": True})
    except Exception as e:  # noqa: BLE001 - a reward's failure is this grade's, recorded
        attempts = getattr(e, "rft_attempts", [])
        if not attempts:
            kind = "RewardError" if isinstance(e, RewardError) else type(e).__name__
            return Grade(0.0, False, f"{e}"[:300], {"error": kind})
        scores = None
    if attempts:
        return Grade(0.0, False, f"a reward tried to reach the network ({attempts[0]}); rft scores offline, "
                     "so rewards that call a model or a web API cannot run here", {"error": "NetworkRefused",
                                                                                   "addresses": attempts[:5]})
    total = sum(w * scores.values[name] for name, w in scores.weights.items())  # type: ignore[union-attr]
    passed = None if spec.pass_threshold is None else total >= spec.pass_threshold
    terms = " + ".join(f"{w:g} x {name} {scores.values[name]:.3g}" for name, w in scores.weights.items() if w)
    details: dict[str, Any] = {"components": dict(scores.values), "weights": dict(scores.weights)}
    if scores.feedback:
        details["feedback"] = dict(scores.feedback)
    if scores.not_run:
        details["not_run"] = list(scores.not_run)
    return Grade(total, passed, f"{total:.3f} = {terms}"[:300], details)
