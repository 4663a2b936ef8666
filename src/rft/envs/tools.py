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
unless the environment has ``get_reward()``, whose value is the episode's score.

Not covered: the string ``reset`` may return (TRL appends it to the prompt; here the prompt is the
row's own: put that text in the data), async tools, tool schemas in the prompt (write them into the
system message of the data).
"""

from __future__ import annotations

import ast
import inspect
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from rft.data import Example
from rft.envs.base import EpisodeLimits
from rft.graders.base import Grade
from rft.graders.python_grader import load_callable

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


@dataclass
class TrlEpisode:
    instance: Any
    fmt: str
    tools: dict[str, Callable[..., Any]]
    turns: list[str] = field(default_factory=list)
    calls: int = 0

    def step(self, turn: str) -> str | None:
        self.turns.append(turn)
        calls = parse_calls(turn, self.fmt)
        if not calls:
            return None
        return "\n".join(self._result(c) for c in calls)

    def _result(self, call: ToolCall | ToolCallError) -> str:
        if isinstance(call, ToolCall):
            self.calls += 1
            try:
                if call.name not in self.tools:
                    raise ToolCallError(f"unknown tool {call.name!r}; the tools are {sorted(self.tools)}")
                inspect.signature(self.tools[call.name]).bind(**call.arguments)
            except (ToolCallError, TypeError) as e:
                return self._wrap(call.name, f"Error: {e}")
            try:
                return self._wrap(call.name, str(self.tools[call.name](**call.arguments)))
            except Exception as e:  # noqa: BLE001 - a failing tool is the model's observation, as in TRL
                return self._wrap(call.name, f"Error: {call.name} raised {type(e).__name__}: {e}")
        return self._wrap("", f"Error: {call}")

    def _wrap(self, name: str, text: str) -> str:
        if self.fmt == "json":
            return f"<tool_response>\n{text}\n</tool_response>"
        return f"{name} -> {text}" if name else text

    def answer(self) -> str:
        return self.turns[-1] if self.turns else ""

    def grade(self) -> Grade | None:
        get_reward = getattr(self.instance, "get_reward", None)
        if get_reward is None:
            return None
        score = float(get_reward())
        return Grade(score, None, f"environment reward {score:g} after {self.calls} tool calls", {"tool_calls": self.calls})


@dataclass
class TrlEnvironment:
    factory: Callable[[], Any]
    limits: EpisodeLimits
    tool_format: str = "auto"
    cue: str = ""

    @classmethod
    def load(cls, ref: str, limits: EpisodeLimits, tool_format: str = "auto") -> "TrlEnvironment":
        return cls(load_callable(ref, "environment.factory"), limits, tool_format)

    def reset(self, example: Example) -> TrlEpisode:
        instance = self.factory()
        instance.reset(prompt=example.prompt, **example.fields)  # the row, as TRL passes it
        fmt = self.tool_format if self.tool_format != "auto" else ("json" if isinstance(example.prompt, list) else "text")
        return TrlEpisode(instance, fmt, public_tools(instance))
