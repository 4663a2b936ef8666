"""Non-finite numbers never reach the optimizer (issue 21): the score gate where grades become rewards
(``rft.graders.base.checked``) on every grader and environment path, the update gate
(``rft.grpo.update``: a NaN/inf loss or gradient is skipped, alerted, and stops the run when repeated),
the checkpoint gate, and NaN/inf refused in the config and in an OpenAI job body."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from rft.config import (
    ConfigError,
    GRPOConfig,
    MonitorsConfig,
    config_from_dict,
    load_config,
)
from rft.data import Example, example_from_row
from rft.envs.base import EpisodeLimits
from rft.envs.episodes import EpisodeRunner, with_own_grades
from rft.envs.tools import TrlEnvironment
from rft.graders.base import MAX_ABS_SCORE, Grade, checked, passed_of
from rft.graders.pool import GraderPool
from rft.graders.registry import build
from rft.rollout.base import Completion, EpisodeRecord, SamplingParams

# Every path below meets each of these, by name: the completion (or row) says which one to return.
HOSTILE = {"nan": "float('nan')", "inf": "float('inf')", "-inf": "float('-inf')", "1e39": "1e39", "str": "'nan'"}
VALUES = "V = {" + ", ".join(f"{k!r}: {v}" for k, v in HOSTILE.items()) + ", 'ok': 0.5}\n"
KEYS = [*HOSTILE, "ok"]
needs_v1 = pytest.mark.skipif(
    subprocess.run([sys.executable, "-c", "import verifiers.v1"], capture_output=True).returncode != 0,
    reason="verifiers is not installed (pip install 'rft[verifiers]')")


def _assert_gated(grades: list[Grade]) -> None:
    """The five hostile grades score 0 as errors; the last ('ok') keeps its 0.5."""
    assert len(grades) == len(KEYS)
    for key, g in zip(KEYS[:-1], grades):
        assert g.score == 0.0 and g.errored and not passed_of(g), (key, g)
        assert type(g.score) is float
    assert grades[-1].score == 0.5 and not grades[-1].errored


def _grade_all(spec: dict, workers: int = 0) -> tuple[list[Grade], dict[str, float]]:
    with GraderPool(spec, workers=workers, timeout_s=60) as pool:
        grades = pool.grade(KEYS, [Example(f"r{i}", "q", {"answer": "4"}) for i in range(len(KEYS))])
        return grades, pool.pop_stats().metrics()


# -- the score gate itself ------------------------------------------------------------------------------


@pytest.mark.parametrize("score, error", [
    (float("nan"), "NonFiniteScore"), (float("inf"), "NonFiniteScore"), (float("-inf"), "NonFiniteScore"),
    (1e39, "ScoreOutOfRange"), (-2e6, "ScoreOutOfRange"), (10**400, "ScoreOutOfRange"),
    ("nan", "NotANumber"), (True, "NotANumber"), (None, "NotANumber"), (1j, "NotANumber"),
    (np.float32("nan"), "NonFiniteScore"), (np.bool_(True), "NotANumber"),
], ids=["nan", "inf", "-inf", "1e39", "-2e6", "10**400", "str", "bool", "None", "complex", "np-nan", "np-bool"])
def test_the_score_gate_turns_a_score_that_is_no_finite_number_into_an_error(score, error):
    g = checked(Grade(score, True, "claimed", {"components": {"a": 1.0}}))
    assert (g.score, g.passed, g.details["error"]) == (0.0, False, error)
    assert "score rejected" in g.reason and g.details["components"] == {"a": 1.0}
    assert float(np.float32(g.score)) == 0.0


@pytest.mark.parametrize("score", [0.5, -MAX_ABS_SCORE, MAX_ABS_SCORE, 3, np.float64(0.25), np.int64(2)])
def test_the_score_gate_keeps_finite_scores_as_floats(score):
    g = checked(Grade(score, None, "fine"))
    assert g.score == float(score) and type(g.score) is float and not g.errored


# -- each grader and environment path -----------------------------------------------------------------


@pytest.mark.parametrize("workers", [0, 1], ids=["in_process", "worker"])
def test_a_python_grader_returning_hostile_scores_scores_zero_and_counts_errors(workers):
    source = VALUES + "def grade(sample, item):\n    return V[sample['output_text']]\n"
    grades, metrics = _grade_all({"type": "python", "source": source}, workers)
    _assert_gated(grades)
    assert metrics["grader/python/errors"] == 5 and math.isfinite(metrics["grader/python/mean"])


def test_a_trl_style_python_reward_function_returning_hostile_scores_scores_zero(tmp_path):
    (tmp_path / "rewards_nf.py").write_text(VALUES + "def reward(prompts, completions, **kw):\n"
                                            "    return [V[completions[0]]]\n")
    grades, metrics = _grade_all({"type": "python", "function": f"{tmp_path / 'rewards_nf.py'}:reward"})
    _assert_gated(grades)
    assert metrics["grader/python/errors"] == 5


LEGACY_ENV = VALUES + """
class Rubric:
    def __init__(self, funcs, weights):
        self.funcs, self.weights, self.class_objects = funcs, weights, {}

class SingleTurnEnv:
    def __init__(self, rubric):
        self.rubric, self.message_type = rubric, "completion"

def hostile(completion) -> float:
    return V.get(completion, 1.0)

def load_environment(weight=1.0):
    return SingleTurnEnv(Rubric([hostile], [weight]))
"""


def test_a_verifiers_environment_api_reward_returning_hostile_scores_scores_zero(tmp_path):
    (tmp_path / "legacy_nf.py").write_text(LEGACY_ENV)
    grades, metrics = _grade_all({"type": "verifiers", "environment": str(tmp_path / "legacy_nf.py")})
    _assert_gated(grades)
    assert metrics["grader/verifiers/errors"] == 5 and math.isfinite(metrics["grader/verifiers/mean"])


def test_verifiers_weights_whose_weighted_sum_leaves_the_bound_score_zero(tmp_path):
    (tmp_path / "legacy_nf.py").write_text(LEGACY_ENV)
    grader = build({"type": "verifiers", "environment": str(tmp_path / "legacy_nf.py"), "args": {"weight": 1e300}})
    from rft.graders.base import safe_grade

    g = safe_grade(grader, "fine", example_from_row({"prompt": "q", "answer": "4"}, "row"))  # 1e300 x 1.0
    assert (g.score, g.details["error"]) == (0.0, "ScoreOutOfRange")


V1_ENV = VALUES + """
import verifiers.v1 as vf

class Data(vf.TaskData):
    answer: str

class MyTask(vf.Task[Data]):
    @vf.reward(weight=1.0)
    async def hostile(self, trace) -> float:
        return V[trace.last_reply]

class MyTaskset(vf.Taskset[MyTask, vf.TasksetConfig]):
    def load(self):
        yield MyTask(Data(prompt="1+1=", answer="2"), self.config.task)

__all__ = ["MyTaskset"]
"""


@needs_v1
def test_a_verifiers_v1_reward_returning_hostile_scores_scores_zero(tmp_path):
    (tmp_path / "v1_nf.py").write_text(V1_ENV)
    grades, metrics = _grade_all({"type": "verifiers", "environment": str(tmp_path / "v1_nf.py")})
    _assert_gated(grades)
    assert metrics["grader/verifiers/errors"] == 5
    assert all(math.isfinite(v) for k, v in metrics.items())  # a NaN component is left out of its mean


def _python(expr: str) -> dict:
    return {"type": "python", "source": VALUES + f"def grade(sample, item):\n    return {expr}\n"}


def test_a_multi_grader_zeroes_a_hostile_term_and_keeps_the_others():
    grades, metrics = _grade_all({"type": "multi", "graders": {"a": _python("V[sample['output_text']]"),
                                                               "b": _python("1.0")},
                                  "weights": {"a": 0.5, "b": 0.5}})
    for g in grades[:-1]:
        assert g.score == 0.5 and g.details["components"]["a"] == 0.0 and g.details["component_errors"] == ["a"]
    assert grades[-1].score == 0.75
    assert all(math.isfinite(v) for v in metrics.values())


@pytest.mark.parametrize("spec", [
    {"weights": {"a": 1e300, "b": 1e300}},            # 2e300: finite in float64, inf in float32
    {"weights": {"a": 1e308, "b": 1e308}},            # inf
    {"calculate_output": "a * 1e39 + b"},               # a formula past float32
    {"calculate_output": "(a * 1e308 * 10) - (b * 1e308 * 10)"},  # inf - inf = nan
], ids=["weighted_sum_2e300", "weighted_sum_inf", "formula_1e39", "formula_nan"])
def test_multi_formulas_whose_finite_terms_overflow_score_zero(spec):
    grades, metrics = _grade_all({"type": "multi", "graders": {"a": _python("1.0"), "b": _python("1.0")}, **spec})
    assert all(g.score == 0.0 and g.errored for g in grades)
    assert metrics["grader/multi/errors"] == len(KEYS)


class HostileReward:
    """A TRL environment_factory class whose get_reward() returns the row's hostile value."""

    def reset(self, **row):
        self.key = row["key"]

    def get_reward(self):
        return {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf"), "1e39": 1e39, "str": "nan",
                "ok": 0.5}[self.key]


class _Engine:
    """Answers every episode's turn with the text '4' (no tool call: the episode ends and is graded)."""

    def __init__(self, tok):
        self.tok = tok

    def generate(self, prompts, n, params, generator=None, seeds=None):
        ids = self.tok("4", add_special_tokens=False)["input_ids"] + [self.tok.eos_token_id]
        return [[Completion(list(ids), "4", "stop") for _ in range(n)] for _ in prompts]


def test_a_trl_get_reward_returning_hostile_scores_scores_zero_and_counts_errors(tiny_model_dir):
    from rft.models.load import load_tokenizer

    tok = load_tokenizer(tiny_model_dir)
    examples = [Example(f"r{i}", "reach 4", {"key": k, "answer": "4"}) for i, k in enumerate(KEYS)]
    runner = EpisodeRunner.of(TrlEnvironment(HostileReward, EpisodeLimits(max_turns=2, max_tokens=100)), tok)
    out = runner.run(_Engine(tok), examples, [tok("reach 4")["input_ids"]] * len(KEYS), 1,
                     SamplingParams(max_new_tokens=4), seeds=list(range(len(KEYS))))
    done = [c for grp in out for c in grp]
    with GraderPool({"type": "arithmetic"}) as pool:
        grades = with_own_grades(done, pool.grade([c.text for c in done], examples), pool)
        metrics = pool.pop_stats().metrics()
    _assert_gated(grades)
    assert metrics["grader/environment/errors"] == 5 and metrics["grader/environment/count"] == len(KEYS)


@pytest.mark.parametrize("own", [float("nan"), float("inf"), float("-inf"), 1e39, "nan", 0.7],
                         ids=["nan", "inf", "-inf", "1e39", "str", "a float, not a Grade"])
def test_an_episodes_own_grade_passes_the_same_gate(own):
    grade = own if own == 0.7 else Grade(own, True, "self-graded")
    done = [Completion([1], "x", "stop", EpisodeRecord((), "answer", (1,), "", grade))]
    with GraderPool({"type": "arithmetic"}) as pool:
        (g,) = with_own_grades(done, [Grade(1.0, True)], pool)
        assert pool.pop_stats().metrics()["grader/environment/errors"] == 1
    assert g.score == 0.0 and g.errored and not passed_of(g)


# -- the update gate ------------------------------------------------------------------------------------


def _tiny_batch(model_dir):
    from rft.grpo.logprobs import build_token_batch
    from rft.models.load import load_model, load_tokenizer

    model, tok = load_model(model_dir), load_tokenizer(model_dir)
    prompts = [tok(p)["input_ids"] for p in ["1+2=", "3+4="] for _ in range(2)]
    return model, build_token_batch(prompts, [[5, 6], [7], [8, 9, 10], [11]], tok.pad_token_id)


@pytest.mark.parametrize("num_iterations", [1, 2])
def test_a_non_finite_loss_skips_the_update_and_leaves_model_and_optimizer_untouched(tiny_model_dir, num_iterations):
    from rft.grpo.update import Batch, global_loss_norm, update_policy
    from rft.training.distributed import Dist
    from rft.training.optim import make_optimizer, make_scheduler

    model, tokens = _tiny_batch(tiny_model_dir)
    cfg = GRPOConfig(lr=1e-3, num_iterations=num_iterations)
    optimizer = make_optimizer(model, cfg.lr, cfg.weight_decay)
    scheduler = make_scheduler(optimizer, "linear", 2, 10)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    adv_B = torch.tensor([1.0, float("nan"), -1.0, 0.5])  # what an unchecked NaN reward makes
    out = update_policy(model, optimizer, scheduler, Batch(tokens, adv_B, None, global_loss_norm(Dist(), tokens, 1, 3)),
                        cfg, 1.0)
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters()), "no weight may move"
    assert not optimizer.state and scheduler.last_epoch == 0
    assert out["update_skipped_nonfinite"] == 1.0 and out["update_skipped"] == 0.0
    assert all(p.grad is None for p in model.parameters())


def test_the_monitors_alert_on_every_skipped_step_and_count_them_in_a_row():
    from rft.safety.monitors import Monitors

    mon = Monitors(MonitorsConfig(enabled=False))  # the update gate's alert is not a reward-hacking rule
    flags = [0, 1, 1, 0, 1]
    alerts = [mon.observe_train({"step": i + 1, "update_skipped_nonfinite": float(f), "loss": float("nan"),
                                 "grad_norm": None}) for i, f in enumerate(flags)]
    assert [[a.monitor for a in step] for step in alerts] == [[], ["nonfinite"], ["nonfinite"], [], ["nonfinite"]]
    assert alerts[2][0].values["consecutive_steps"] == 2.0 and "skipped" in alerts[2][0].message
    assert mon.nonfinite_run == 1


def test_no_checkpoint_is_written_from_a_model_that_is_not_finite(tmp_path, tiny_model_dir):
    from rft.models.load import load_model
    from rft.training.checkpoint import NonFiniteError
    from rft.training.distributed import Dist, save_checkpoint_on_main
    from rft.training.run_dir import RunDir

    model = load_model(tiny_model_dir)
    with torch.no_grad():
        next(model.parameters())[0, 0] = float("inf")
    run = RunDir(tmp_path / "run")
    run.create("name: x\n", overwrite=False)
    with pytest.raises(NonFiniteError, match="checkpoint step_000001 not written: parameters .* hold NaN or inf"):
        save_checkpoint_on_main(Dist(), run, "step_000001", model=model, optimizer=None, tokenizer=None,
                                scheduler=None, rng={}, state={}, latest=True)
    assert run.latest_checkpoint() is None and not list(run.checkpoints_dir.glob("step_*"))


# -- end to end: a tiny-model run -----------------------------------------------------------------------

COUNTER = VALUES + """
CALLS = [0]
ORDER = ["nan", "ok", "inf", "-inf", "ok", "1e39", "str", "ok"]

def grade(sample, item):  # every hostile value in each 8 consecutive grades, whatever is sampled
    CALLS[0] += 1
    return V[ORDER[CALLS[0] % len(ORDER)]] if ORDER[CALLS[0] % len(ORDER)] != "ok" else CALLS[0] % 3 / 2
"""


def _run_cfg(tmp_path, model_dir, **grpo) -> dict:
    return {
        "name": "nonfinite", "output_dir": str(tmp_path), "seed": 0, "threads": 2, "model": {"path": str(model_dir)},
        "data": {"task": {"digits": 1, "val_size": 4}}, "grader": {"type": "python", "source": COUNTER},
        "sampling": {"num_generations": 4, "max_new_tokens": 3, "temperature": 1.3},
        "grpo": {"steps": 2, "prompts_per_step": 4, "lr": 1e-3, **grpo},
        "eval": {"every": 2, "samples": 0, "capability": False}, "checkpoint": {"every": 1, "keep_last": 10},
        "report_to": [],
    }


def _records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _finite(model_dir: Path) -> bool:
    from rft.models.load import load_model

    return all(bool(torch.isfinite(p).all()) for p in load_model(model_dir).parameters())


def test_a_run_whose_grader_returns_hostile_scores_keeps_every_weight_finite(tmp_path, tiny_model_dir):
    from rft.console import Console
    from rft.grpo.train import train

    result = train(config_from_dict(_run_cfg(tmp_path, tiny_model_dir)), console=Console(quiet=True))
    ckpts = result.run_dir / "checkpoints"
    assert _finite(ckpts / "step_000001") and _finite(ckpts / "step_000002"), "a weight became NaN or inf"
    steps = [r for r in _records(result.run_dir) if r["type"] == "train"]
    assert len(steps) == 2
    for r in steps:  # 16 grades a step: two rounds of ORDER, five hostile values each
        assert r["grader/python/errors"] == 10 and math.isfinite(r["reward_mean"]) and r["loss"] is not None
        assert r["update_skipped_nonfinite"] == 0.0


def test_repeated_non_finite_updates_stop_the_run_with_an_error_and_keep_the_last_checkpoint(
        tmp_path, tiny_model_dir, monkeypatch, capsys):
    """Steps 2.. get a NaN advantage (a hook in front of the real update gate): each is skipped with an
    alert, and the third in a row ends `rft train` with exit status 2 and one line naming the cause."""
    import rft.grpo.train as train_module
    from rft.cli import main
    from rft.grpo.update import Batch

    real, calls = train_module.update_policy, []

    def poisoned(model, optimizer, scheduler, batch, *args, **kwargs):
        calls.append(1)
        if len(calls) >= 2:
            batch = Batch(batch.tokens, batch.adv_B * float("nan"), batch.ref_logp_BC, batch.norm)
        return real(model, optimizer, scheduler, batch, *args, **kwargs)

    monkeypatch.setattr(train_module, "update_policy", poisoned)
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump(_run_cfg(tmp_path / "out", tiny_model_dir, steps=8, max_nonfinite_steps=3)))
    assert main(["train", str(cfg), "--quiet"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]  # not progress bars
    assert len(err) == 1 and "step 4: the loss or gradient was NaN or inf in 3 steps in a row" in err[0]
    assert "step_000003" in err[0]  # the last good checkpoint, named

    run = tmp_path / "out" / "nonfinite"
    records = _records(run)
    assert [r["update_skipped_nonfinite"] for r in records if r["type"] == "train"] == [0.0, 1.0, 1.0, 1.0]
    assert [r["step"] for r in records if r.get("monitor") == "nonfinite"] == [2, 3, 4]
    ckpts = run / "checkpoints"
    assert (ckpts / "latest").read_text().strip() == "step_000003" and not (ckpts / "step_000004").exists()
    from safetensors.torch import load_file

    last, first = load_file(ckpts / "step_000003" / "model.safetensors"), load_file(ckpts / "step_000001" / "model.safetensors")
    assert _finite(ckpts / "step_000003")
    assert all(torch.equal(last[k], first[k]) for k in first), "skipped steps left the weights as step 1 made them"


# -- config and job bodies --------------------------------------------------------------------------------


@pytest.mark.parametrize("section, field, value", [
    ("grpo", "lr", ".inf"), ("grpo", "lr", ".nan"), ("grpo", "epsilon_high", ".inf"),
    ("sampling", "temperature", ".inf"), ("monitors", "divergence_min_val_gain", ".nan"),
    ("monitors", "kl_min", ".inf"), ("sft", "lr", ".inf"),
])
def test_a_config_float_refuses_nan_and_inf_at_load(tmp_path, section, field, value):
    path = tmp_path / "c.yaml"
    path.write_text(f"{section}:\n  {field}: {value}\n")
    with pytest.raises(ConfigError, match=f"{section}.{field}: Input should be a finite number"):
        load_config(path)


def test_a_set_override_refuses_inf_too():
    with pytest.raises(ConfigError, match="grpo.lr: Input should be a finite number"):
        load_config(None, ["grpo.lr=inf"])


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e400"])
@pytest.mark.parametrize("key", ["learning_rate_multiplier", "compute_multiplier"])
def test_a_job_body_with_a_non_finite_hyperparameter_is_refused(tmp_path, key, token):
    from rft.commands.openai_job import plan_job

    body = textwrap.dedent(f"""\
        {{"model": "embedded", "training_file": "train.jsonl",
          "method": {{"type": "reinforcement", "reinforcement": {{
            "grader": {{"type": "string_check", "name": "s", "input": "{{{{sample.output_text}}}}",
                       "reference": "{{{{item.answer}}}}", "operation": "eq"}},
            "hyperparameters": {{"{key}": {token}}}}}}}}}
        """)
    (tmp_path / "job.json").write_text(body)
    with pytest.raises(ConfigError, match=f"job.json:5: {token} is not a finite number"):
        plan_job(tmp_path / "job.json")
