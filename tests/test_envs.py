"""Multi-turn episodes: the runner's turn loop and limits, observation masking in the loss, the
built-in sql_retry / code_retry environments, tool calls and TRL environment classes."""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass, field

import pytest
import torch

from rft.data import Example
from rft.envs.base import EpisodeLimits, SingleTurn
from rft.envs.episodes import EpisodeRunner, ObservationFormat, with_own_grades
from rft.envs.tools import ToolCall, ToolCallError, TrlEnvironment, parse_calls
from rft.graders.base import Grade
from rft.grpo.logprobs import build_token_batch, completion_logprobs
from rft.grpo.loss import AGGREGATIONS, LossNorm, per_token_loss
from rft.models.load import load_model, load_tokenizer
from rft.rollout.base import Completion, SamplingParams


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    return load_tokenizer(tiny_model_dir)


class ScriptedEngine:
    """An engine that answers from a script: turn k of every episode is ``script[k]`` (its token ids are
    the characters' ids), and it records every generate call (prompts, n, seeds)."""

    def __init__(self, tok, script: list[str], stop: bool = True):
        self.tok, self.script, self.stop, self.calls = tok, script, stop, []

    def generate(self, prompts, n, params, generator=None, seeds=None):
        self.calls.append((prompts, n, seeds))
        text = self.script[len(self.calls) - 1]
        ids = self.tok(text, add_special_tokens=False)["input_ids"] + ([self.tok.eos_token_id] if self.stop else [])
        return [[Completion(list(ids), text, "stop" if self.stop else "length") for _ in range(n)] for _ in prompts]


@dataclass
class Countdown:
    """An environment whose episode answers 'again k' until its turns are used, or ends on 'done'."""

    limits: EpisodeLimits
    fail_on: str = ""
    fail_with: type[BaseException] = RuntimeError
    cue: str = "A: "
    resets: list[str] = field(default_factory=list)

    def reset(self, example):
        self.resets.append(example.id)
        return CountdownEpisode(self)


@dataclass
class CountdownEpisode:
    env: Countdown
    turns: list[str] = field(default_factory=list)

    def step(self, turn):
        if self.env.fail_on and self.env.fail_on in turn:
            raise self.env.fail_with("the environment broke")
        self.turns.append(turn)
        return None if "done" in turn else f"again {len(self.turns)}"

    def answer(self):
        return self.turns[-1]

    def grade(self):
        return None


EXAMPLES = [Example("a", "Q1?"), Example("b", "Q2?")]
PARAMS = SamplingParams(max_new_tokens=8, temperature=1.0)


def _run(tok, env, script, n=2, seeds=(11, 22), stop=True):
    engine = ScriptedEngine(tok, script, stop)
    prompts = [tok(e.prompt)["input_ids"] for e in EXAMPLES]
    out = EpisodeRunner.of(env, tok).run(engine, EXAMPLES, prompts, n, PARAMS, seeds=list(seeds))
    return engine, prompts, out


def test_single_turn_is_the_engines_own_output(tok):
    engine, _, out = _run(tok, SingleTurn(), ["xy"])
    assert len(engine.calls) == 1 and engine.calls[0][1] == 2 and engine.calls[0][2] == [11, 22]
    direct = ScriptedEngine(tok, ["xy"]).generate([[1]], 2, PARAMS)[0][0]
    for group in out:
        for c in group:
            assert (c.token_ids, c.text, c.finish_reason) == (direct.token_ids, direct.text, direct.finish_reason)
            assert c.episode is None  # no episode record: every token is the model's, graded by the grader


def test_a_single_turn_run_starts_no_thread_and_no_episode(tok, monkeypatch):
    """The trivial environment pays for nothing a turn does not need: no thread pool, no reset."""
    import rft.envs.episodes as episodes

    class NoThreads:
        def __init__(self, *a, **k):
            raise AssertionError("a single-turn run started a thread pool")

    class NoReset(SingleTurn):
        def reset(self, example):
            raise AssertionError("a single-turn run built an episode")

    monkeypatch.setattr(episodes, "ThreadPoolExecutor", NoThreads)
    engine, _, out = _run(tok, NoReset(), ["xy"])
    assert len(engine.calls) == 1 and [len(g) for g in out] == [2, 2]


def test_turns_are_batched_across_episodes_with_observations_masked(tok):
    env = Countdown(EpisodeLimits(max_turns=3, max_tokens=200))
    engine, prompts, out = _run(tok, env, ["ab", "cd", "done"])
    assert [len(c[0]) for c in engine.calls] == [2, 4, 4]  # turn 1 per prompt (n=2), then every episode at once
    assert engine.calls[0][1] == 2 and engine.calls[1][1] == 1
    assert len(set(engine.calls[1][2])) == 4  # a seed of its own for each episode's next turn
    c = out[1][0]
    obs = ObservationFormat(tok, "A: ").ids("again 1", chat=False, turn_stopped=True)
    assert obs == tok("\nagain 1\nA: ", add_special_tokens=False)["input_ids"]
    # the second turn's context is the prompt, the first turn (with its EOS) and the observation
    assert engine.calls[1][0][2] == prompts[1] + c.token_ids[: len(obs) + 3]
    turn = tok("ab", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    assert c.token_ids[: len(turn) + len(obs)] == turn + obs
    assert c.episode.loss_mask[: len(turn) + len(obs)] == (1,) * len(turn) + (0,) * len(obs)
    assert c.episode.turns == 3 and c.episode.end == "answer" and c.text == "done"
    assert [m.role for m in c.episode.transcript] == ["assistant", "observation"] * 2 + ["assistant"]


@pytest.mark.parametrize("limits, end, turns", [
    (EpisodeLimits(max_turns=2, max_tokens=500), "max_turns", 2),
    (EpisodeLimits(max_turns=5, max_tokens=12), "max_tokens", 1),
    (EpisodeLimits(max_turns=5, max_tokens=500, timeout_s=0.0), "timeout", 1),
])
def test_limits_end_episodes(tok, limits, end, turns):
    _, _, out = _run(tok, Countdown(limits), ["ab", "cd", "ef", "gh", "ij"])
    rec = out[0][0].episode
    assert (rec.end, rec.turns) == (end, turns)
    assert len(out[0][0].token_ids) <= (limits.max_tokens or 10**9)


def test_a_cut_turn_ends_the_episode_like_a_single_turn(tok):
    _, _, out = _run(tok, Countdown(EpisodeLimits(max_turns=3, max_tokens=500)), ["ab", "cd"], stop=False)
    assert out[0][0].episode.end == "length" and out[0][0].finish_reason == "length"


@pytest.mark.parametrize("exc", [RuntimeError, SystemExit])  # sys.exit() in a step's worker thread too
def test_an_environment_error_scores_zero_and_the_run_goes_on(tok, exc):
    env = Countdown(EpisodeLimits(max_turns=3, max_tokens=500), fail_on="cd", fail_with=exc)
    _, _, out = _run(tok, env, ["ab", "cd", "x"])
    done = [c for g in out for c in g]
    grades = with_own_grades(done, [Grade(1.0, True)] * len(done))
    assert all(g.score == 0.0 and "environment error" in g.reason for g in grades)
    assert done[0].episode.end == "env_error" and "the environment broke" in done[0].episode.error


def test_sys_exit_in_reset_ends_only_its_episode(tok):
    class ExitsOnReset(Countdown):
        def reset(self, example):
            if example.id == "a":
                sys.exit(3)
            return super().reset(example)

    _, _, out = _run(tok, ExitsOnReset(EpisodeLimits(max_turns=2, max_tokens=500)), ["done"])
    assert [c.episode.end for c in out[0]] == ["env_error"] * 2 and "SystemExit: 3" in out[0][0].episode.error
    assert all(c.episode.end != "env_error" for c in out[1])


def test_chat_observations_follow_the_chat_template(tok):
    tok = load_tokenizer(tok.name_or_path)
    tok.chat_template = ("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{{ eos_token }}{% endfor %}"
                         "{% if add_generation_prompt %}<assistant>{% endif %}")
    fmt = ObservationFormat(tok)
    text = tok.decode(fmt.ids("err", chat=True, turn_stopped=True))
    assert text == "<user>err<eos><assistant>"  # the turn's own EOS is already in the context
    assert tok.decode(fmt.ids("err", chat=True, turn_stopped=False)) == "<eos><user>err<eos><assistant>"


def test_observation_positions_get_no_gradient(tiny_model_dir, tok):
    """The loss (clipped surrogate + KL) has zero gradient with respect to the log-prob of every
    observation token, and a nonzero one on the model's tokens, even where the reference is far off."""
    torch.manual_seed(0)
    model = load_model(tiny_model_dir)
    prompt = tok("Q: 1+1=")["input_ids"]
    turn1, obs, turn2 = [5, 6, tok.eos_token_id], [7, 8, 9, 10], [11, tok.eos_token_id]
    mask = (1,) * len(turn1) + (0,) * len(obs) + (1,) * len(turn2)
    tokens = build_token_batch([prompt, prompt], [turn1 + obs + turn2, turn1 + obs + turn2], tok.pad_token_id,
                               [mask, None])
    logp, _ = completion_logprobs(model, tokens, 1.0)
    logp.retain_grad()
    ref = logp.detach() + 0.3
    ref[:, len(turn1): len(turn1) + len(obs)] = 80.0  # exp(80 - logp) overflows float32: masked, not inf * 0
    m = tokens.completion_mask_BC
    ref = torch.where(m > 0, ref, logp.detach())  # what update_policy does
    loss_BT, _ = per_token_loss(logp, logp.detach(), torch.tensor([1.0, -1.0]), 0.2, 0.2, 0.04, ref)
    norm = LossNorm(2, int(m.sum()), 1, 16)
    for agg in AGGREGATIONS.values():
        logp.grad = None
        agg(loss_BT, m, norm).backward(retain_graph=True)
        g = logp.grad
        assert torch.isfinite(g).all()
        obs_cols = slice(len(turn1), len(turn1) + len(obs))
        assert g[0, obs_cols].abs().max() == 0.0  # the episode's observation tokens
        assert g[0, : len(turn1)].abs().min() > 0 and g[0, -len(turn2):].abs().min() > 0
        assert g[1].abs().min() > 0  # the row without a mask trains on every token


def test_sql_retry_shows_the_error_and_never_the_gold(tmp_path):
    from rft.config import task_config
    from rft.envs.sql_retry import SqlRetry
    from rft.graders.registry import build
    from rft.tasks.sql import make_sql

    train, _, _ = make_sql(task_config(name="sql", val_size=5, train_size=20), seed=0)
    ex = train[0]
    env = SqlRetry(EpisodeLimits(max_turns=3), build({"type": "sql"}))
    ep = env.reset(ex)
    obs = ep.step("SELECT nme FROM emp")
    assert obs.startswith("Error: ") and "no such column: nme" in obs
    assert ep.step("DELETE FROM emp").startswith("Error: not a query")
    assert ep.step(ex.get("gold_sql")) is None and ep.answer() == ex.get("gold_sql")
    shown = SqlRetry(EpisodeLimits(max_turns=3), build({"type": "sql"}), on_success="show", feedback_rows=2)
    ep = shown.reset(ex)
    rows = ep.step("SELECT name FROM emp ORDER BY name")
    assert rows.startswith("30 rows, first 2:") and rows.count("\n") == 2
    assert ep.step("SELECT name FROM emp ORDER BY name") is None  # repeating the query confirms it
    bad, observation = env.mistake(ex, ex.get("gold_sql"), random.Random(0))
    assert bad != ex.get("gold_sql") and observation.startswith("Error: ")


def test_code_retry_runs_only_visible_tests_and_names_them():
    from rft.envs.code_retry import CodeRetry
    from rft.graders.registry import build

    tests = [{"args": [1], "expected": 2}, {"args": [2], "expected": 4}, {"args": [7], "expected": 777}]
    ex = Example("c", "f(1) == 2, f(2) == 4", {"entry_point": "f", "tests": tests, "visible_tests": 2})
    env = CodeRetry(EpisodeLimits(max_turns=3), build({"type": "code"}))
    ep = env.reset(ex)
    obs = ep.step("```python\ndef f(x):\n    return x + 1\n```")
    assert obs.startswith("Failing tests:") and "f(2): failed, expected 4, got 3" in obs and "f(1)" not in obs
    assert "777" not in obs and "f(7)" not in obs  # the hidden test never runs here
    assert ep.step("```python\ndef f(x):\n    return 2 * x\n```") is None  # visible tests pass: the episode ends
    with pytest.raises(ValueError, match="visible_tests"):
        env.reset(Example("d", "p", {"entry_point": "f", "tests": tests}))


def test_tool_calls_parse_in_both_formats():
    calls = parse_calls('x <tool_call>{"name": "add", "arguments": {"a": 1}}</tool_call> <tool_call>{bad</tool_call>', "json")
    assert calls[0] == ToolCall("add", {"a": 1}) and isinstance(calls[1], ToolCallError)
    calls = parse_calls("think\nCALL add(a=1, b='x')\nCALL add(1)\n", "text")
    assert calls[0] == ToolCall("add", {"a": 1, "b": "x"}) and isinstance(calls[1], ToolCallError)
    assert parse_calls("no call here", "text") == []


class Counter:
    """A TRL environment_factory class, as TRL's docs write them: reset(**row), public tools, get_reward."""

    def reset(self, **row):
        self.total, self.target = 0, row["target"]

    def add(self, n: int) -> str:
        """Add n to the running total."""
        if n > 5:
            raise ValueError("n must be at most 5")
        self.total += n
        return f"total {self.total}"

    def get_reward(self) -> float:
        return float(self.total == self.target)


def test_a_trl_environment_class_runs_unchanged(tok):
    env = TrlEnvironment(Counter, EpisodeLimits(max_turns=4, max_tokens=400))
    ex = [Example("t", "reach 4", {"target": 4})]
    engine = ScriptedEngine(tok, ["CALL add(n=3)", "CALL add(n=9)\nCALL nope()", "CALL add(n=1)", "4"])
    out = EpisodeRunner.of(env, tok).run(engine, ex, [tok("reach 4")["input_ids"]], 1, PARAMS, seeds=[1])
    rec = out[0][0].episode
    observations = [m.text for m in rec.transcript if m.role == "observation"]
    assert observations[0] == "add -> total 3"
    assert "add raised ValueError: n must be at most 5" in observations[1] and "unknown tool 'nope'" in observations[1]
    assert rec.end == "answer" and rec.turns == 4
    assert rec.grade.score == 1.0  # get_reward: the total reached the target


@dataclass
class LeakyEpisode:
    """An sql_retry episode whose error message gives the gold query away: what the audit must catch."""

    inner: object
    gold: str

    def step(self, turn):
        obs = self.inner.step(turn)
        return None if obs is None else self.gold

    def answer(self):
        return self.inner.answer()

    def grade(self):
        return None


@dataclass
class Leaky:
    inner: object
    cue: str = "SQL: "

    @property
    def limits(self):
        return self.inner.limits

    def reset(self, example):
        return LeakyEpisode(self.inner.reset(example), example.get("gold_sql"))


def test_the_episode_audit_catches_a_leaky_environment_and_passes_the_real_one(tok):
    from rft.safety.episode_attacks import audit_episodes
    from rft.config import task_config
    from rft.envs.sql_retry import SqlRetry
    from rft.graders.pool import GraderPool
    from rft.graders.registry import build
    from rft.tasks.sql import make_sql

    train, _, spec = make_sql(task_config(name="sql", val_size=5, train_size=10), seed=0)
    examples = train[:3]
    prompts = {e.id: tok(e.prompt)["input_ids"] for e in examples}
    real = SqlRetry(EpisodeLimits(max_turns=3, max_tokens=400), build(spec))
    with GraderPool(spec, 0, 30.0) as pool:
        holes, tried = audit_episodes(EpisodeRunner.of(real, tok), "sql_retry", examples, prompts, pool, 0.5, 80)
        assert holes == [] and tried["never_ends"] == 3 and tried["echo_observation"] == 3
        leaky, _ = audit_episodes(EpisodeRunner.of(Leaky(real), tok), "sql_retry", examples, prompts, pool, 0.5, 80)
    echo = [h for h in leaky if h.attack == "echo_observation"]
    assert len(echo) == 3 and all(h.score == 1.0 and "shows the expected" in h.reason for h in echo)


def test_environment_config_is_checked_at_load():
    from rft.config import ConfigError, config_from_dict

    with pytest.raises(ConfigError, match="'max_turns' applies only to the sql_retry, code_retry and trl environment"
                       r"\(s\), not to 'single'; remove environment.max_turns"):
        config_from_dict({"environment": {"type": "single", "max_turns": 3}})
    with pytest.raises(ConfigError, match="environment.factory: required field is missing for the trl kind"):
        config_from_dict({"environment": {"type": "trl"}})
    with pytest.raises(ConfigError, match="'factory' applies only to the trl environment"):
        config_from_dict({"environment": {"type": "sql_retry", "factory": "a:B"}})
    with pytest.raises(ConfigError, match="environment.type: 'retry' is not an environment type; choose one of"):
        config_from_dict({"environment": {"type": "retry"}})
    with pytest.raises(ConfigError, match="environment.feedback_rowz: unknown key"):
        config_from_dict({"environment": {"type": "sql_retry", "feedback_rowz": 2}})
    assert config_from_dict({"environment": {"type": "sql_retry"}}).environment.turns == 3
    assert config_from_dict({"environment": {"max_tokens": 9}}).environment.type == "single"  # the default kind


def test_retry_transcripts_are_laid_out_as_episodes_are(tok):
    from rft.config import task_config
    from rft.envs.sql_retry import SqlRetry
    from rft.graders.registry import build
    from rft.tasks.sql import make_sql

    train, _, _ = make_sql(task_config(name="sql", val_size=5, train_size=10), seed=0)
    ex = train[0]
    runner = EpisodeRunner.of(SqlRetry(EpisodeLimits(max_turns=3), build({"type": "sql"})), tok)
    prompt = tok(ex.prompt)["input_ids"]
    ids = runner.retry_prompt(ex, prompt, ex.get("gold_sql"), random.Random(0))
    bad, obs = runner.env.mistake(ex, ex.get("gold_sql"), random.Random(0))
    turn = tok(bad, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    assert ids == prompt + turn + runner.fmt.ids(obs, chat=False, turn_stopped=True)
    assert "<eos>\nError: " in tok.decode(ids[len(prompt):]) and ex.get("gold_sql") not in tok.decode(ids)


@pytest.mark.model
def test_sql_multiturn_config_trains_end_to_end(tmp_path):
    """bars/11: the example config runs, logs episode/turns_mean > 1, and writes transcripts with
    observations into the samples and the report."""
    import json
    from pathlib import Path

    from rft.config import load_config
    from rft.console import Console
    from rft.grpo.train import train

    config = Path(__file__).resolve().parents[1] / "configs" / "sql_multiturn.yaml"
    cfg = load_config(config, [f"output_dir={tmp_path}", "grpo.steps=2", "grpo.prompts_per_step=4", "eval.size=4",
                               "eval.every=2", "data.task.train_size=40", "data.task.val_size=8", "threads=2",
                               "report_to=[]"])
    result = train(cfg, console=Console(quiet=True))
    rows = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if r["type"] == "train"]
    assert len(steps) == 2 and all(r["episode/turns_mean"] > 1 for r in steps)
    assert all(abs(sum(v for k, v in r.items() if k.startswith("episode/end/")) - 1.0) < 1e-9 for r in steps)
    assert "val/episode/turns_mean" in [r for r in rows if r["type"] == "val"][-1]
    samples = [json.loads(line) for line in (result.run_dir / "samples" / "step_000002.jsonl").read_text().splitlines()]
    multi = [s for s in samples if s["turns"] > 1]
    assert multi and any(m["role"] == "observation" and m["text"].startswith("Error:") for m in multi[0]["transcript"])
    from rft.report.html import write_report

    html = Path(write_report([result.run_dir], None)).read_text()
    assert 'class="obs"' in html and "Episodes: turns" in html


@dataclass
class Sleepy:
    """An environment whose step hangs (a tool that never returns, in effect)."""

    limits: EpisodeLimits
    cue: str = ""

    def reset(self, example):
        return SleepyEpisode()


class SleepyEpisode:
    def step(self, turn):
        import time

        time.sleep(5)
        return "late"

    def answer(self):
        return "a"

    def grade(self):
        return None


def test_a_hanging_environment_step_ends_its_episode_at_the_timeout(tok):
    import time

    t0 = time.monotonic()
    _, _, out = _run(tok, Sleepy(EpisodeLimits(max_turns=3, max_tokens=500, timeout_s=0.5)), ["ab", "cd"])
    assert time.monotonic() - t0 < 3.0  # not waited for
    assert all(c.episode.end == "timeout" and c.episode.turns == 1 for g in out for c in g)


def test_an_episode_past_its_time_still_records_its_last_turn(tok):
    """Sampling that used up the episode's time must not cut the environment's step short: the step
    gets its grace, the turn is recorded, and the answer is that turn."""
    env = Countdown(EpisodeLimits(max_turns=3, max_tokens=500, timeout_s=0.0))
    _, _, out = _run(tok, env, ["done"])
    rec = out[0][0].episode
    assert rec.end == "answer" and out[0][0].text == "done"


def test_single_turn_runs_have_no_episode_timeout():
    from rft.config import config_from_dict
    from rft.envs import episode_limits

    assert episode_limits(config_from_dict({})).timeout_s is None
    assert episode_limits(config_from_dict({"environment": {"type": "sql_retry"}})).timeout_s == 120.0


def test_sql_retry_gives_a_repeated_failing_query_its_error_again():
    """Repeating a query ends an episode only as a confirmation of shown rows (on_success: show)."""
    from rft.config import task_config
    from rft.envs.sql_retry import SqlRetry
    from rft.graders.registry import build
    from rft.tasks.sql import make_sql

    train, _, _ = make_sql(task_config(name="sql", val_size=5, train_size=10), seed=0)
    for on_success in ("end", "show"):
        ep = SqlRetry(EpisodeLimits(max_turns=3), build({"type": "sql"}), on_success=on_success).reset(train[0])
        assert ep.step("SELECT nme FROM emp").startswith("Error: ")
        assert ep.step("SELECT nme FROM emp").startswith("Error: "), on_success  # show ended the episode here


@pytest.mark.parametrize("on_success, script, by_turn", [
    # show: a right first query, confirmed at turn 2, is a turn-1 success (it was 0 by construction)
    ("show", ["GOLD", "GOLD"], [1.0, 1.0, 1.0]),
    # show: the same query written differently at turn 2 (its rows shown again), confirmed at turn 3
    ("show", ["GOLD", "GOLD+", "GOLD+"], [1.0, 1.0, 1.0]),
    # show: an error, the fix at turn 2, confirmed at turn 3: a turn-2 success
    ("show", ["SELECT nme FROM emp", "GOLD", "GOLD"], [0.0, 1.0, 1.0]),
    # show: rows of another query first, then the fix: found at turn 2
    ("show", ["SELECT 12345", "GOLD", "GOLD"], [0.0, 1.0, 1.0]),
    # end: unchanged, success at the turn whose query ran
    ("end", ["SELECT nme FROM emp", "GOLD"], [0.0, 1.0, 1.0]),
    ("end", ["GOLD"], [1.0, 1.0, 1.0]),
])
def test_success_by_turn_counts_the_turn_the_answer_was_found(tok, on_success, script, by_turn):
    from rft.config import task_config
    from rft.envs.sql_retry import SqlRetry
    from rft.graders.registry import build
    from rft.tasks.sql import make_sql

    train, _, _ = make_sql(task_config(name="sql", val_size=5, train_size=10), seed=0)
    ex, grader = train[0], build({"type": "sql"})
    respaced = ex.get("gold_sql").replace("SELECT ", "SELECT  ")  # the same query, another text
    script = [t.replace("GOLD+", respaced).replace("GOLD", ex.get("gold_sql")) for t in script]
    env = SqlRetry(EpisodeLimits(max_turns=3, max_tokens=4000), grader, on_success=on_success)
    runner = EpisodeRunner.of(env, tok)
    done = [g[0] for g in runner.run(ScriptedEngine(tok, script), [ex], [tok(ex.prompt)["input_ids"]], 1, PARAMS)]
    grades = [grader(c.text, ex) for c in done]
    m = runner.metrics(done, grades)
    assert [m[f"episode/success_by_turn_{k}"] for k in (1, 2, 3)] == by_turn
    assert done[0].episode.turns == len(script) and grades[0].passed
    assert runner.sample_fields(done[0])["answer_turn"] == by_turn.index(1.0) + 1


def test_success_by_turn_needs_a_passed_episode_and_a_sane_answer_turn(tok):
    """A failed episode counts at no turn; an answer_turn out of range (or not an int) is ignored."""

    @dataclass
    class Claims(Countdown):
        claim: object = 1

        def reset(self, example):
            ep = CountdownEpisode(self)
            ep.answer_turn = lambda: self.claim  # type: ignore[attr-defined]
            return ep

    for claim, turns in ((1, 1), (0, 3), (7, 3), ("1", 3), (True, 3)):
        env = Claims(EpisodeLimits(max_turns=3, max_tokens=500), claim=claim)
        _, _, out = _run(tok, env, ["ab", "cd", "done"], n=1)
        done = [g[0] for g in out]
        assert done[0].episode.answer_turn == (1 if claim == 1 and claim is not True else None)
        m = EpisodeRunner.of(env, tok).metrics(done, [Grade(1.0, True), Grade(0.0, False)])
        assert m[f"episode/success_by_turn_{turns}"] == 0.5 and m["episode/success_by_turn_1"] == (0.5 if turns == 1 else 0.0)


def test_an_answer_turn_that_raises_neither_ends_nor_zeroes_the_episode(tok):
    """answer_turn() only feeds a metric: when it raises, the episode keeps its end and its grade and
    counts at its last turn."""

    @dataclass
    class Raises(Countdown):
        def reset(self, example):
            ep = CountdownEpisode(self)

            def boom():
                raise RuntimeError("metric helper broke")
            ep.answer_turn = boom  # type: ignore[attr-defined]
            return ep

    plain = Countdown(EpisodeLimits(max_turns=3, max_tokens=500))
    env = Raises(EpisodeLimits(max_turns=3, max_tokens=500))
    _, _, ref = _run(tok, plain, ["ab", "cd", "done"], n=1)
    _, _, out = _run(tok, env, ["ab", "cd", "done"], n=1)
    got, want = out[0][0].episode, ref[0][0].episode
    assert got.answer_turn is None and got.end == want.end != "env_error" and got.error == want.error
    assert (got.grade is None) == (want.grade is None)
    if want.grade is not None:
        assert (got.grade.score, got.grade.passed) == (want.grade.score, want.grade.passed)
