"""Metric sinks: TensorBoard gets every numeric metric, a resume hides the redone steps, W&B stays
offline unless the user says otherwise, JSON lines are one record each."""

import io
import json
import sys
import types

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from rft.report.loggers import JsonLinesSink, TensorBoardSink, WandbSink, scalars
from rft.training.run_dir import RunDir


def _tb_scalars(path):
    acc = EventAccumulator(str(path))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_scalars_tag_by_record_type_and_skip_non_numbers():
    got = scalars({"type": "train", "step": 3, "reward_mean": 0.5, "time/rollout": 1.0, "note": "x",
                   "kl": None, "done": True})
    assert got == {"train/reward_mean": 0.5, "train/time/rollout": 1.0}
    assert scalars({"type": "val", "step": 3, "val/pass@1": 0.25}) == {"val/pass@1": 0.25}


def test_run_dir_feeds_every_metric_to_tensorboard(tmp_path):
    run = RunDir(tmp_path, sinks=[TensorBoardSink(tmp_path)])
    run.log_metrics({"type": "val", "step": 0, "val/pass@1": 0.25})
    run.log_metrics({"type": "train", "step": 1, "reward_mean": 0.5, "grader/math/mean": 0.5})
    run.close()
    tb = _tb_scalars(tmp_path)
    assert tb == {"val/pass@1": [(0, 0.25)], "train/reward_mean": [(1, 0.5)], "train/grader/math/mean": [(1, 0.5)]}
    assert len(run.read_metrics()) == 2, "metrics.jsonl is still written"


def test_a_resumed_run_hides_the_steps_it_redoes(tmp_path):
    first = TensorBoardSink(tmp_path)
    for step in (1, 2, 3):
        first.log({"type": "train", "step": step, "reward_mean": 0.25})
    first.close()
    resumed = TensorBoardSink(tmp_path)  # resumed from the step-1 checkpoint: steps 2 and 3 are redone
    for step in (2, 3):
        resumed.log({"type": "train", "step": step, "reward_mean": 0.75})
    resumed.close()
    assert _tb_scalars(tmp_path)["train/reward_mean"] == [(1, 0.25), (2, 0.75), (3, 0.75)]


def test_wandb_is_offline_unless_the_user_sets_a_mode(tmp_path, monkeypatch):
    calls = []
    fake = types.SimpleNamespace(init=lambda **kw: calls.append(kw) or types.SimpleNamespace(
        log=lambda *a, **k: None, finish=lambda: None))
    monkeypatch.setitem(sys.modules, "wandb", fake)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    WandbSink(tmp_path, "run", {}).log({"type": "train", "step": 1, "reward_mean": 0.5})
    monkeypatch.setenv("WANDB_MODE", "online")
    WandbSink(tmp_path, "run", {}).log({"type": "train", "step": 1, "reward_mean": 0.5})
    assert [c["mode"] for c in calls] == ["offline", "online"]


def test_json_lines_are_one_parsable_record_per_line(tmp_path):
    out = io.StringIO()
    run = RunDir(tmp_path, sinks=[JsonLinesSink(out)])
    run.log_metrics({"type": "train", "step": 1, "reward_mean": float("nan")})
    run.log_metrics({"type": "train", "step": 2, "reward_mean": 0.5})
    lines = out.getvalue().splitlines()
    assert [json.loads(line) for line in lines] == [{"type": "train", "step": 1, "reward_mean": None},
                                                     {"type": "train", "step": 2, "reward_mean": 0.5}]


def test_wandb_without_the_package_is_a_config_error(monkeypatch):
    import importlib.util

    import pytest

    from rft.config import ConfigError, load_config

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(ConfigError, match=r"report_to: 'wandb' needs the wandb package.*pip install wandb"):
        load_config(None, ["report_to=[tensorboard, wandb]"])
    assert load_config(None).report_to == ["tensorboard"]
