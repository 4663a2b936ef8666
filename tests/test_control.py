"""The control arm (grpo.control, rft train --control) and the attribution of a gain to the grader."""

import json

import pytest
import torch
import yaml

from rft.cli import main
from rft.config import config_from_dict
from rft.graders.base import Grade
from rft.grpo.control import (
    control_config,
    control_generator,
    control_rewards,
    step_rewards,
)
from rft.grpo.groups import Group
from rft.report.attribution import AttributionError, attribute, attribution_lines


def test_shuffled_rewards_keep_the_batch_distribution_and_lose_the_pairing():
    r = torch.arange(64, dtype=torch.float32)
    out = control_rewards(r, r > 31, "shuffled", control_generator(0, 1))
    assert sorted(out.tolist()) == r.tolist()  # the same rewards...
    assert not torch.equal(out, r)  # ...on other completions
    assert torch.equal(out, control_rewards(r, r > 31, "shuffled", control_generator(0, 1)))  # seeded: resumes exactly
    assert not torch.equal(out, control_rewards(r, r > 31, "shuffled", control_generator(0, 2)))  # a fresh draw a step


@pytest.mark.parametrize("rate", [0.0, 0.25, 1.0])
def test_random_rewards_are_pass_fail_at_the_steps_pass_rate(rate):
    n = 4000
    passed = torch.arange(n) < int(rate * n)
    out = control_rewards(torch.rand(n) * 7, passed, "random", control_generator(3, 5))
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    assert abs(out.mean().item() - rate) < 0.03  # 0.03 is > 4 standard deviations at n = 4000


def test_step_rewards_are_the_graders_without_a_control_and_a_permutation_with_one():
    grades = [Grade(s, s >= 1.0) for s in (0.0, 1.0, 0.5, 1.0, 0.0, 0.0)]
    groups = [Group(example=None, completions=[], grades=grades[:3]), Group(example=None, completions=[], grades=grades[3:])]
    assert step_rewards(groups, "none", 0, 1).tolist() == [0.0, 1.0, 0.5, 1.0, 0.0, 0.0]
    assert sorted(step_rewards(groups, "shuffled", 0, 1).tolist()) == [0.0, 0.0, 0.0, 0.5, 1.0, 1.0]


def test_the_control_config_is_the_same_run_beside_the_real_one():
    cfg = config_from_dict({"name": "exp", "seed": 7, "grpo": {"steps": 3}})
    ctrl = control_config(cfg, "random")
    assert ctrl.name == "exp-control-random" and ctrl.grpo.control == "random"
    assert ctrl.run_dir.parent == cfg.run_dir.parent
    assert ctrl.model_dump(exclude={"name", "grpo"}) == cfg.model_dump(exclude={"name", "grpo"})
    assert ctrl.grpo.model_dump(exclude={"control"}) == cfg.grpo.model_dump(exclude={"control"})
    with pytest.raises(ValueError, match="shuffled, random"):
        control_config(cfg, "sorted")


def _run(path, control, start, final, metrics=()):
    (path / "samples").mkdir(parents=True)
    (path / "config.yaml").write_text(yaml.safe_dump({"grpo": {"control": control}}))
    for step, passed in ((0, start), (4, final)):
        rows = [{"id": f"v{i}", "passed": p} for i, p in enumerate(passed)]
        (path / "samples" / f"val_passed_step_{step:06d}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (path / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in metrics))
    return path


def test_a_gain_the_control_does_not_share_is_the_graders(tmp_path):
    n = 50
    real = _run(tmp_path / "real", "none", [False] * n, [True] * 30 + [False] * 20)
    ctrl = _run(tmp_path / "ctrl", "shuffled", [False] * n, [True] * 5 + [False] * 45,
                [{"type": "val", "step": 0, "val/pass@1": 0.0, "val/mean_reward": 0.1},
                 {"type": "val", "step": 4, "val/pass@1": 0.1, "val/mean_reward": 0.1}])
    a = attribute(real, ctrl)
    assert (a.n, a.real_gain, a.control_gain, a.diff) == (50, 60.0, 10.0, 50.0)
    assert 30 < a.low < 50 < a.high < 70
    assert a.verdict.startswith("the grader explains 50.0 of 60.0 points")
    assert a.moved == {"val/pass@1": (0.0, 0.1)}  # what did not move is not listed


def test_a_control_that_loses_ground_leaves_the_whole_gain_to_the_grader(tmp_path):
    """Not 'explains 97.6 of 66.6 points' (the tiny demo's controls fell below their warm start)."""
    real = _run(tmp_path / "real", "none", [True] * 10 + [False] * 30, [True] * 35 + [False] * 5)
    ctrl = _run(tmp_path / "ctrl", "shuffled", [True] * 10 + [False] * 30, [False] * 40)
    a = attribute(real, ctrl)
    assert (a.real_gain, a.control_gain, a.diff) == (62.5, -25.0, 87.5)
    assert a.verdict.startswith("the grader explains all +62.5 points of the real gain: the shuffled control "
                                "moved -25.0 (real minus control +87.5, 95% CI")


def test_equal_gains_are_not_distinguishable_and_identical_outcomes_have_a_zero_interval(tmp_path):
    real = _run(tmp_path / "real", "none", [False] * 40, [True] * 20 + [False] * 20)
    same = _run(tmp_path / "same", "random", [False] * 40, [True] * 20 + [False] * 20)
    a = attribute(real, same)
    assert (a.diff, a.low, a.high) == (0.0, 0.0, 0.0)
    assert a.verdict.startswith("the gain is not distinguishable from the random control's")
    other = _run(tmp_path / "other", "random", [False] * 40, [False] * 20 + [True] * 20)  # same rate, other problems
    b = attribute(real, other)
    assert b.diff == 0.0 and b.low < 0 < b.high and "not distinguishable" in b.verdict


def test_runs_that_cannot_be_compared_are_refused_with_the_reason(tmp_path):
    real = _run(tmp_path / "real", "none", [False] * 4, [True] * 4)
    with pytest.raises(AttributionError, match="not a control run"):
        attribute(real, real)
    short = _run(tmp_path / "short", "shuffled", [False] * 3, [True] * 3)
    with pytest.raises(AttributionError, match="different held-out problems"):
        attribute(real, short)
    (tmp_path / "empty" / "samples").mkdir(parents=True)
    (tmp_path / "empty" / "config.yaml").write_text("grpo: {control: shuffled}\n")
    with pytest.raises(AttributionError, match="step-0"):
        attribute(real, tmp_path / "empty")


@pytest.mark.model
def test_rft_train_control_writes_both_runs_and_prints_the_attribution(tmp_path, tiny_model_dir, capsys):
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(yaml.safe_dump({
        "name": "exp", "output_dir": str(tmp_path / "runs"), "seed": 0, "threads": 2,
        "model": {"path": str(tiny_model_dir)}, "data": {"task": {"digits": 1, "val_size": 12}},
        "sampling": {"num_generations": 4, "max_new_tokens": 3}, "grpo": {"steps": 2, "prompts_per_step": 4},
        "eval": {"every": 2, "samples": 0}, "checkpoint": {"every": 2},
    }))
    assert main(["train", str(cfg), "--control", "--quiet"]) == 0
    out = capsys.readouterr().out
    real, ctrl = tmp_path / "runs" / "exp", tmp_path / "runs" / "exp-control-shuffled"
    assert yaml.safe_load((ctrl / "config.yaml").read_text())["grpo"]["control"] == "shuffled"
    assert yaml.safe_load((real / "config.yaml").read_text())["grpo"]["control"] == "none"
    for run in (real, ctrl):  # each arm is a complete run of its own
        assert (run / "checkpoints" / "step_000002" / "model.safetensors").is_file()
        assert len((run / "samples" / "val_passed_step_000000.jsonl").read_text().splitlines()) == 12
    assert "verdict: " in out and "12 problems" in out
    assert attribution_lines(real, ctrl)[1] in out
    assert main(["report", str(real), str(ctrl)]) == 0
    assert "verdict: " in capsys.readouterr().out
