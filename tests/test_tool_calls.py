"""Malformed tool calls: whatever a model writes in a tool call, the parser returns the documented
error observation (docs/environments.md, "Tool calls") in time linear in the turn, never an
exception: deep nesting, integers past Python's digit limit, unhashable literals, arguments that are
not a mapping or not given by name, and turns built to make a backtracking pattern run for minutes."""

from __future__ import annotations

import time

import pytest

from rft.data import Example
from rft.envs.base import EpisodeLimits
from rft.envs.tools import ToolCall, ToolCallError, TrlEnvironment, parse_calls


def _json(arguments: str) -> str:
    return '<tool_call>{"name": "add", "arguments": ' + arguments + "}</tool_call>"


MALFORMED = {  # name: (turn, format, what the error says)
    "json nested past the stack": (_json('{"n": ' + "[" * 100_000 + "]" * 100_000 + "}"), "json", "nested too deeply"),
    "json integer past the digit limit": (_json('{"n": ' + "9" * 5000 + "}"), "json", "digits"),
    "json arguments not a mapping": (_json("[1, 2]"), "json", '"arguments": {...}'),
    "json arguments a string": (_json('"{\\"n\\": 1}"'), "json", '"arguments": {...}'),
    "json not an object": ("<tool_call>[1]</tool_call>", "json", '"name": "<tool>"'),
    "json bad syntax": ("<tool_call>{'name': 'add'}</tool_call>", "json", "not valid JSON"),
    "text unhashable dict key": ("CALL add(n={[1]: 2})", "text", "TypeError"),
    "text unhashable set member": ("CALL add(n={{1}})", "text", "TypeError"),
    "text integer past the digit limit": ("CALL add(n=" + "9" * 5000 + ")", "text", "SyntaxError"),
    "text unary chain past the stack": ("CALL add(n=" + "+" * 5000 + "1)", "text", "cannot read the arguments"),
    "text unary chain past the parser": ("CALL add(n=" + "-" * 100_000 + "1)", "text", "cannot read the arguments"),
    "text nested past the parser": ("CALL add(n=" + "[" * 1000 + "]" * 1000 + ")", "text", "SyntaxError"),
    "text not a literal": ("CALL add(n=__import__('os'))", "text", "ValueError"),
    "text positional": ("CALL add(1)", "text", "by name"),
    "text keyword unpacking": ("CALL add(**{'n': 1})", "text", "by name"),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_a_malformed_call_is_an_error_in_its_place(name):
    turn, fmt, says = MALFORMED[name]
    calls = parse_calls(turn, fmt)
    assert len(calls) == 1 and isinstance(calls[0], ToolCallError) and says in str(calls[0])
    assert len(str(calls[0])) < 300


@pytest.mark.parametrize("turn, fmt", [
    ("<tool_call>" + " " * 4000, "json"),  # an unclosed call and a run of spaces: cubic for `\s*(.*?)\s*`
    ("<tool_call>" * 20_000 + "x" * 20_000, "json"),  # many unclosed calls: quadratic for a search per opener
    ("\n" * 200_000, "text"),  # blank lines: quadratic for `^\s*` under MULTILINE
])
def test_turns_that_make_a_pattern_backtrack_parse_at_once(turn, fmt):
    t0 = time.monotonic()
    assert parse_calls(turn, fmt) == []
    assert time.monotonic() - t0 < 5.0  # generous: the backtracking patterns took minutes


def test_well_formed_calls_still_parse():
    turn = 'x <tool_call> {"name": "add", "arguments": {"n": [1, {"a": null}]}} </tool_call> <tool_call>{"name": "f"}</tool_call>'
    assert parse_calls(turn, "json") == [ToolCall("add", {"n": [1, {"a": None}]}), ToolCall("f", {})]
    assert parse_calls("think\n  CALL add(n=-3, s='a)b', t=(1, 2))  \nCALL f()", "text") == \
        [ToolCall("add", {"n": -3, "s": "a)b", "t": (1, 2)}), ToolCall("f", {})]


class Adder:
    def reset(self, **row):
        self.total = 0

    def add(self, n: int) -> str:
        self.total += n
        return f"total {self.total}"


@pytest.mark.parametrize("fmt, prefix", [("json", "<tool_response>\nError: "), ("text", "Error: ")])
def test_a_trl_episode_answers_every_malformed_call_with_its_error_observation(fmt, prefix):
    episode = TrlEnvironment(Adder, EpisodeLimits(max_turns=2), fmt).reset(Example("t", "add"))
    for name, (turn, kind, says) in MALFORMED.items():
        if kind == fmt:
            observation = episode.step(turn)
            assert observation.startswith(prefix) and says in observation, name
    assert episode.instance.total == 0  # no malformed call reached the tool
