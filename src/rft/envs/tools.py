"""Tool calls, and TRL's ``environment_factory`` classes run as they are.

A TRL environment is a class: ``reset(**row)`` starts an episode from a dataset row, every public
method other than ``reset`` (and ``get_reward``) is a tool the model may call, and an optional
``get_reward()`` scores the episode. :class:`TrlEnvironment` makes one instance per episode (as
TRL does per rollout), so state never leaks between episodes.

The model calls tools in one of two formats (``environment.tool_format``):

- ``json`` (chat models; the ChatML/Hermes convention Qwen and SmolLM use):
  ``<tool_call>{"name": "add", "arguments": {"a": 1, "b": 2}}</tool_call>``;
- ``text`` (plain-text models such as the tiny one): a line ``CALL add(a=1, b=2)`` (values are Python
  literals);
- ``auto``: ``json`` for a chat prompt, ``text`` for a plain one.

Every call of the turn runs, in order; the observation holds each result (``<tool_response>`` blocks
in json, ``name -> result`` lines in text). A malformed call (bad JSON, an unknown tool, wrong
arguments) or a tool that raises gets an error observation and the episode goes on: the model may
fix its call. A turn without a call ends the episode: it is the answer, graded by the run's grader,
unless the environment has ``get_reward()``, whose value is the episode's score (a value that is not
a finite number within +-1e6 scores 0: :func:`rft.graders.base.checked`).

The class is the user's code: it is imported, instantiated and called only in user-code hosts
(:mod:`rft.isolation.user_code`; up to ``HOSTS`` processes per environment, episodes spread over them), each
instance living in its host for its episode and addressed by key (a tool call costs 0.26 ms, against
0.03 ms in-process). Every call -- ``reset``, each tool, ``get_reward``, and the pre-flight check's
``reset`` -- is bounded by the time its episode has left (:func:`rft.envs.base.time_left`: the
runner's deadline; ``timeout_s`` outside the runner). An exception of any kind out of ``reset`` or
``get_reward`` (``SystemExit``, ``KeyboardInterrupt`` too), ``os._exit``, a crash or a hang in any
call ends the episode with score 0 and the reason (``end: env_error``), and the run goes on; a host
that hangs or dies is killed and replaced, and the other episodes it held end the same way (their
instances are gone). ``environment.network: deny`` runs the hosts with no network
(``rft.isolation.user_code`` says what that blocks).

Not covered: the string ``reset`` may return (TRL appends it to the prompt; here the prompt is the
row's own: put that text in the data), async tools, tool schemas in the prompt (write them into the
system message of the data), tool arguments that do not pickle (nested past Python's recursion limit:
the episode ends with the reason).
"""

from __future__ import annotations

import ast
import inspect
import itertools
import json
import os
import re
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from rft.config.base import SpecError
from rft.data import Example
from rft.envs.base import EpisodeLimits, time_left
from rft.graders.base import Grade, shown
from rft.graders.python_grader import load_callable
from rft.isolation.user_code import NetworkUnavailable, UserCodeFailed, UserCodeHost

_OPEN, _CLOSE = "<tool_call>", "</tool_call>"
_TEXT_CALL = re.compile(r"^[ \t]*CALL[ \t]+([A-Za-z_]\w*)\((.*)\)[ \t]*$", re.MULTILINE)  # one line; no \s*: linear
_RESERVED = {"reset", "get_reward"}


class ToolCallError(ValueError):
    """A call the model wrote that cannot run; its message is the observation."""


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]


def parse_calls(turn: str, fmt: str) -> list[ToolCall | ToolCallError]:
    """The tool calls of a model turn, in order; a malformed one is a ToolCallError in its place.

    Never raises, and runs in time linear in the turn's length (no backtracking pattern over the
    turn): JSON nested past the interpreter's stack, an integer past Python's digit limit, an
    unhashable literal (``{[1]: 2}``), arguments that are not a mapping or not given by name -- each
    is a ToolCallError whose message says what to write instead."""
    if fmt == "json":
        return [_json_call(body) for body in _json_bodies(turn)]
    return [_text_call(name, body) for name, body in _TEXT_CALL.findall(turn)]


def _json_bodies(turn: str) -> list[str]:
    """The text of each ``<tool_call>...</tool_call>`` block (an unclosed one is no call)."""
    bodies, at = [], 0
    while (start := turn.find(_OPEN, at)) >= 0 and (end := turn.find(_CLOSE, start)) >= 0:
        bodies.append(turn[start + len(_OPEN):end].strip())
        at = end + len(_CLOSE)
    return bodies


def _json_call(body: str) -> ToolCall | ToolCallError:
    try:
        obj = json.loads(body)
    except json.JSONDecodeError as e:
        return ToolCallError(f"tool call is not valid JSON ({e.msg} at column {e.colno})")
    except (ValueError, RecursionError) as e:  # an integer past the digit limit; nesting past the stack
        why = "nested too deeply" if isinstance(e, RecursionError) else str(e)[:120]
        return ToolCallError(f"tool call JSON cannot be read ({why}); write plain arguments")
    args = obj.get("arguments", {}) if isinstance(obj, dict) else None
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str) or not isinstance(args, dict):
        return ToolCallError('a tool call is {"name": "<tool>", "arguments": {...}}')
    return ToolCall(obj["name"], args)


def _text_call(name: str, body: str) -> ToolCall | ToolCallError:
    by_name = ToolCallError("write arguments by name: CALL tool(a=1, b='x')")
    try:
        call = ast.parse(f"f({body})", mode="eval").body
        if not isinstance(call, ast.Call) or call.args or any(k.arg is None for k in call.keywords):
            return by_name
        return ToolCall(name, {str(k.arg): ast.literal_eval(k.value) for k in call.keywords})
    # what a hostile literal raises: bad syntax or an integer past the digit limit (SyntaxError), not a
    # literal (ValueError), unhashable (TypeError), nested past the stack (RecursionError, MemoryError)
    except (SyntaxError, ValueError, TypeError, RecursionError, MemoryError) as e:
        return ToolCallError(f"cannot read the arguments of {name} ({type(e).__name__}); "
                             "use literals: CALL tool(a=1, b='x')")


def public_tools(instance: Any) -> dict[str, Callable[..., Any]]:
    """The environment's tools: its public methods other than reset and get_reward."""
    return {name: getattr(instance, name) for name, member in inspect.getmembers(type(instance), inspect.isfunction)
            if not name.startswith("_") and name not in _RESERVED}


HOSTS = max(1, min(4, os.cpu_count() or 1))  # host processes per environment: episodes' calls run in parallel


@dataclass
class TrlEpisode:
    host: UserCodeHost
    key: str  # the environment instance, in the host
    fmt: str
    tools: list[str]
    has_reward: bool
    timeout_s: float  # a call's bound outside the episode runner
    turns: list[str] = field(default_factory=list)
    calls: int = 0

    def __post_init__(self) -> None:
        weakref.finalize(self, self.host.forget, self.key)  # the instance leaves its host with the episode

    def step(self, turn: str) -> str | None:
        self.turns.append(turn)
        calls = parse_calls(turn, self.fmt)
        if not calls:
            return None
        return "\n".join(self._result(c) for c in calls)

    def _result(self, call: ToolCall | ToolCallError) -> str:
        if isinstance(call, ToolCall):
            self.calls += 1
            if call.name not in self.tools:
                return self._wrap(call.name, f"Error: unknown tool {call.name!r}; the tools are {sorted(self.tools)}")
            args = (call.name, call.arguments)
            text = self.host.call(self.key, _run_tool, args, time_left(self.timeout_s), f"tool {call.name!r}")
            return self._wrap(call.name, text)
        return self._wrap("", f"Error: {call}")

    def _wrap(self, name: str, text: str) -> str:
        if self.fmt == "json":
            return f"<tool_response>\n{text}\n</tool_response>"
        return f"{name} -> {text}" if name else text

    def answer(self) -> str:
        return self.turns[-1] if self.turns else ""

    def grade(self) -> Grade | None:
        if not self.has_reward:
            return None
        score = self.host.call(self.key, _reward, (), time_left(self.timeout_s), "get_reward")
        return Grade(score, None, f"environment reward {shown(score)} after {self.calls} tool calls",
                     {"tool_calls": self.calls})  # the score gate (with_own_grades) judges the value


@dataclass
class TrlEnvironment:
    factory: Callable[[], Any] | str  # the class, or where it is: 'module:Class' / 'file.py:Class'
    limits: EpisodeLimits
    tool_format: str = "auto"
    cue: str = ""
    network: str = "allow"
    hosts: list[tuple[UserCodeHost, str]] = field(default_factory=list, repr=False)  # (host, the class's key)
    _next: Iterator[int] = field(default_factory=itertools.count, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def load(cls, ref: str, limits: EpisodeLimits, tool_format: str = "auto", network: str = "allow") -> "TrlEnvironment":
        env = cls(ref, limits, tool_format, network=network)
        env._host(0)  # import the class now, in a host: a bad reference or a failing import is a SpecError here
        return env

    def _host(self, i: int) -> tuple[UserCodeHost, str]:
        with self._lock:
            while len(self.hosts) <= i:
                host = UserCodeHost(self.network)
                try:
                    self.hosts.append((host, host.load(_load_factory, (self.factory,))))
                except NetworkUnavailable as e:
                    raise SpecError(f"environment.network = 'deny': {e}") from None
                except UserCodeFailed as e:
                    if e.type_name == "SpecError":
                        raise SpecError(e.message) from None
                    raise SpecError(f"environment.factory = {self.factory!r}: importing it failed ({e})") from None
            return self.hosts[i]

    def reset(self, example: Example) -> TrlEpisode:
        host, key = self._host(next(self._next) % HOSTS)
        timeout = self.limits.timeout_s or DEFAULT_TIMEOUT_S
        row = (example.prompt, example.fields)
        ekey, (tools, has_reward) = host.start(key, _start_episode, row, time_left(timeout), "reset")
        fmt = self.tool_format if self.tool_format != "auto" else ("json" if isinstance(example.prompt, list) else "text")
        return TrlEpisode(host, ekey, fmt, tools, has_reward, timeout)


DEFAULT_TIMEOUT_S = 120.0  # a call's bound without limits.timeout_s, outside the runner


# -- run in the host (rft.isolation.user_code) ------------------------------------------------------------------


def _load_factory(factory: Callable[[], Any] | str) -> Callable[[], Any]:
    return load_callable(factory, "environment.factory") if isinstance(factory, str) else factory


def _start_episode(factory: Callable[[], Any], prompt: Any, fields: dict[str, Any]) -> tuple[Any, tuple[list[str], bool]]:
    instance = factory()
    instance.reset(prompt=prompt, **fields)  # the row, as TRL passes it
    return instance, (sorted(public_tools(instance)), getattr(instance, "get_reward", None) is not None)


def _run_tool(instance: Any, name: str, arguments: dict[str, Any]) -> str:
    tool = public_tools(instance)[name]
    try:
        inspect.signature(tool).bind(**arguments)
    except TypeError as e:
        return f"Error: {e}"
    try:
        return str(tool(**arguments))
    except Exception as e:  # noqa: BLE001 - a failing tool is the model's observation, as in TRL
        return f"Error: {name} raised {type(e).__name__}: {e}"


def _reward(instance: Any) -> Any:
    """``get_reward()``'s value as it is, for the score gate (``with_own_grades``) to judge; a value that
    would not travel back over the pipe (an array, any object) arrives as a scalar or as its repr,
    which the gate refuses as no number."""
    value = instance.get_reward()
    if isinstance(value, (bool, int, float, str, type(None))):
        return value
    try:
        return value.item() if hasattr(value, "item") else repr(value)[:200]  # numpy / torch scalars
    except Exception as e:  # noqa: BLE001 - an array of many values: the gate refuses the text
        return f"{type(value).__name__} whose item() raised {type(e).__name__}"
