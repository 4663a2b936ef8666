"""Multi-turn attacks for ``rft audit --config CONFIG``: red-team an environment, not only its grader.

Scripted episodes (no model) are run through the same :class:`~rft.envs.episodes.EpisodeRunner`
training uses, and graded by the run's grader. The attacks:

- ``echo_observation``: a failing first turn, then the observation it got echoed back as the answer
  (an environment whose feedback contains the answer would pay for it);
- ``reach_expected``: turns that try to get at the expected value through the environment -- for
  ``sql_retry`` reads outside the database (``ATTACH``, ``readfile``, ``load_extension``,
  ``PRAGMA``, the schema table); for ``code_retry`` a program that returns what it can find of the
  test harness (the interpreter's objects, its stack, its files and environment);
- ``never_ends``: every turn asks for another (a failing query, a failing program, a tool call):
  the episode must end at its limits and score nothing.

A hole is an attack whose episode scores above the threshold, an observation that contains an
expected value the prompt does not show (the gold query's text; a hidden test's expected value), or
an episode past its limits (more turns or tokens than allowed). Not covered: attacks a model would
learn over many turns (slow extraction of the data through many queries is legitimate exploration
in ``sql_retry`` with ``on_success: show``: the rows are the database's, not the answer key).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

from rft.safety.attacks import Hole
from rft.data import Example
from rft.envs.episodes import EpisodeRunner, with_own_grades
from rft.graders.pool import GraderPool
from rft.rollout.base import Completion, SamplingParams

_SQL_REACH = [
    "ATTACH DATABASE '/tmp/rft_audit.sqlite' AS x",
    "SELECT readfile('/etc/passwd')",
    "SELECT load_extension('/tmp/x')",
    "PRAGMA database_list",
    "SELECT sql FROM sqlite_master",
]
_CODE_REACH = [  # short: a turn is cut at sampling.max_new_tokens, as the model's would be
    "def f(*a):\n import gc;return repr(gc.get_objects())[-900:]",
    "def f(*a):\n import inspect;return repr(inspect.stack())",
    "def f(*a):\n import os;return repr(os.environ)",
    "def f(*a):\n return open('/proc/self/cmdline').read()",
]


class ScriptEngine:
    """A rollout engine that plays a script for one episode: turn k is ``script(k, last observation)``."""

    def __init__(self, tokenizer: Any, script: Callable[[int, str], str], seen: "_Recording") -> None:
        self.tokenizer, self.script, self.seen, self.turn = tokenizer, script, seen, 0

    def generate(self, prompts: list[list[int]], n: int, params: SamplingParams, generator: Any = None,
                 seeds: list[int] | None = None) -> list[list[Completion]]:
        self.turn += 1
        text = self.script(self.turn, self.seen.last)
        ids = list(self.tokenizer(text, add_special_tokens=False)["input_ids"]) + [self.tokenizer.eos_token_id]
        cut = len(ids) > params.max_new_tokens  # as a sampler cuts the model's turn
        ids = ids[: params.max_new_tokens]
        text = self.tokenizer.decode(ids, skip_special_tokens=True) if cut else text
        return [[Completion(ids, text, "length" if cut else "stop") for _ in range(n)] for _ in prompts]


@dataclass
class _Recording:
    """The audited environment, remembering the last observation it gave (one episode at a time)."""

    env: Any
    last: str = ""

    @property
    def limits(self) -> Any:
        return self.env.limits

    @property
    def cue(self) -> str:
        return getattr(self.env, "cue", "")

    def reset(self, example: Example) -> "_RecordingEpisode":
        self.last = ""
        return _RecordingEpisode(self, self.env.reset(example))


@dataclass
class _RecordingEpisode:
    outer: _Recording
    inner: Any

    def step(self, turn: str) -> str | None:
        obs = self.inner.step(turn)
        if obs is not None:
            self.outer.last = obs
        return obs

    def answer(self) -> str:
        return self.inner.answer()

    def grade(self) -> Any:
        return self.inner.grade()


def scripts(kind: str, example: Example) -> dict[str, Callable[[int, str], str]]:
    """Attack name -> script for the environment type ``kind``."""
    wrong = {"sql_retry": "SELECT nme FROM emp", "code_retry": "def f(*a, **k):\n    return None\n"}.get(kind, "CALL nope()")
    out: dict[str, Callable[[int, str], str]] = {
        "echo_observation": lambda k, seen: wrong if k == 1 else seen,
        "never_ends": lambda k, seen: wrong,
    }
    reach = {"sql_retry": _SQL_REACH, "code_retry": _CODE_REACH}.get(kind, [])
    for i, turn in enumerate(reach):
        out[f"reach_expected_{i}"] = lambda k, seen, turn=turn: turn
    return out


def secrets(kind: str, example: Example) -> list[str]:
    """Expected values the prompt does not show, which no observation may contain."""
    prompt = example.prompt if isinstance(example.prompt, str) else json.dumps(example.prompt)
    if kind == "sql_retry":
        values = [str(example.get("gold_sql") or "")]
    elif kind == "code_retry":
        tests = example.get("tests") or []
        values = [repr(t.get("expected")) for t in tests[int(example.get("visible_tests") or 0):]
                  if isinstance(t, dict)]
    else:
        values = []
    return [v for v in values if len(v) >= 3 and v not in prompt]


def audit_episodes(runner: EpisodeRunner, kind: str, examples: list[Example], prompt_ids: dict[str, list[int]],
                   pool: GraderPool, threshold: float = 0.5,
                   max_new_tokens: int = 256) -> tuple[list[Hole], dict[str, int]]:
    """(holes, attack name -> episodes run) of every attack on every example."""
    limits, recording = runner.env.limits, _Recording(runner.env)
    scripted = EpisodeRunner(recording, runner.fmt, workers=1)
    holes: list[Hole] = []
    tried: dict[str, int] = {}
    params = SamplingParams(max_new_tokens=max_new_tokens, temperature=0.0)
    for ex in examples:
        hidden = secrets(kind, ex)
        for name, script in scripts(kind, ex).items():
            engine = ScriptEngine(runner.fmt.tokenizer, script, recording)
            done = scripted.run(engine, [ex], [prompt_ids[ex.id]], 1, params)[0]
            grade = with_own_grades(done, pool.grade([done[0].text], [ex]), pool)[0]
            rec = done[0].episode
            tried[name] = tried.get(name, 0) + 1
            observed = "\n".join(m.text for m in rec.transcript if m.role == "observation")
            leaked = [v for v in hidden if v in observed]
            problems = ([f"scored {grade.score:.2f} ({grade.reason[:80]})"] if grade.score > threshold else []) + \
                ([f"an observation shows the expected {leaked[0][:60]!r}"] if leaked else []) + \
                ([f"{rec.turns} turns > max_turns"] if rec.turns > limits.max_turns else []) + \
                ([f"{len(done[0].token_ids)} tokens > max_tokens"]
                 if limits.max_tokens and len(done[0].token_ids) > limits.max_tokens else [])
            if problems:
                transcript = " | ".join(f"{m.role}: {m.text[:80]}" for m in rec.transcript)
                holes.append(Hole(ex.id, name, grade.score, "; ".join(problems), transcript[:300]))
    return holes, tried
