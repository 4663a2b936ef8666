"""The Python API (rft.train / rft.evaluate / rft.commands.grade): configs from paths, dicts and Config
models with overrides, Python callables as graders, hostile rewards, and the README's example run
verbatim."""

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import rft
from rft.config import ConfigError, config_from_dict

ROOT = Path(__file__).resolve().parents[1]
ROW = {"id": "r1", "prompt": "2+3=", "answer": "5"}


def test_import_rft_stays_cheap():
    code = "import sys, rft; print(rft.__version__, 'torch' in sys.modules, 'rft.api' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[1:] == ["False", "False"]


def test_api_names_are_the_functions_even_after_the_modules_behind_them_are_imported():
    import importlib.util

    import rft.commands.grade  # noqa: F401 - `rft grade`, the command
    import rft.training.evaluate  # noqa: F401 - held-out evaluation

    assert importlib.util.find_spec("rft.evaluate") is None and importlib.util.find_spec("rft.grade") is None
    assert (rft.train.__module__, rft.evaluate.__module__, rft.grade.__module__) == ("rft.api",) * 3


def test_config_from_a_path_a_dict_or_a_config_with_overrides_and_sections(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: a\ngrpo: {steps: 7, lr: 0.01}\n")
    raw = {"name": "a", "grpo": {"steps": 7, "lr": 0.01}}
    for source in (path, str(path), raw, config_from_dict(raw)):
        cfg = rft.build_config(source, ["grpo.beta=0.5"], sampling={"temperature": 0.7}, grpo={"steps": 3})
        assert (cfg.name, cfg.grpo.steps, cfg.grpo.lr, cfg.grpo.beta, cfg.sampling.temperature) == ("a", 3, 0.01, 0.5, 0.7)
    assert raw == {"name": "a", "grpo": {"steps": 7, "lr": 0.01}}  # the caller's dict is untouched
    assert rft.build_config(None, {"grpo.steps": 4, "report_to": []}).grpo.steps == 4
    with pytest.raises(ConfigError, match="grpo.stepz: unknown key"):
        rft.build_config(raw, grpo={"stepz": 1})


def reward(completion, example):
    return float(completion.strip() == example["answer"])


def batch_reward(prompts, completions, answer, **kw):
    return [float(c.strip() == a) for c, a in zip(completions, answer)]


def test_a_callable_grader_is_recorded_by_name_and_graded_in_process():
    cfg = rft.build_config({"grading": {"workers": 4}}, grader=reward)
    assert cfg.grader == {"type": "python", "function": "test_api:reward"} and cfg.grading.workers == 0
    grades = rft.grade(reward, ["5", "6"], [ROW, ROW])
    assert [g.score for g in grades] == [1.0, 0.0]
    assert [g.score for g in rft.grade(batch_reward, ["5 ", "7"], [ROW, ROW])] == [1.0, 0.0]


def _raises(c, e):
    raise KeyError("boom")


HOSTILE = {
    "raises": (_raises, "KeyError"),
    "nan": (lambda c, e: math.nan, "BadReturn"),
    "inf": (lambda c, e: -math.inf, "BadReturn"),
    "string": (lambda c, e: "1.0", "BadReturn"),
    "bool": (lambda c, e: True, "BadReturn"),
    "none": (lambda c, e: None, "BadReturn"),
    "exits": (lambda c, e: sys.exit(3), "SystemExit"),
    "nan_grade": (lambda c, e: rft.Grade(math.nan, True), "BadReturn"),
    "batch_wrong_length": (lambda prompts, completions, **kw: [1.0, 1.0], "BadReturn"),
    "batch_nan": (lambda prompts, completions, **kw: [math.nan], "BadReturn"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_reward_scores_zero_with_the_reason(name):
    fn, error = HOSTILE[name]
    [grade] = rft.grade(fn, ["5"], [ROW])
    assert (grade.score, grade.passed, grade.details.get("error")) == (0.0, False, error)
    assert grade.reason


def test_a_reward_may_return_a_grade_and_two_lambdas_do_not_collide():
    first = rft.grade(lambda c, e: rft.Grade(0.25, True, "mine"), ["x"], [ROW])[0]
    second = rft.grade(lambda c, e: 0.5, ["x"], [ROW])[0]
    assert (first.score, first.passed, first.reason, second.score) == (0.25, True, "mine", 0.5)


def _readme_python_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert blocks, "README.md has no ```python block"
    return blocks[0]


@pytest.mark.model
def test_the_readme_python_example_runs_verbatim(tmp_path, monkeypatch, capsys):
    code = _readme_python_example()
    assert "rft.train(" in code and len(code.splitlines()) <= 20
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})  # noqa: S102 - our own README
    run = tmp_path / "runs" / "python-api"
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["grader"] == {"type": "python", "function": "readme:reward"}
    assert str(run.resolve()) in capsys.readouterr().out
    assert (run / "checkpoints" / "step_000002").is_dir()


@pytest.mark.model
def test_train_returns_the_run_its_metrics_and_checkpoints(tmp_path):
    result = rft.train({"output_dir": str(tmp_path), "name": "r", "report_to": []},
                       ["grpo.steps=1", "grpo.prompts_per_step=2", "data.task.val_size=4", "data.task.digits=1"],
                       grader=batch_reward, sampling={"num_generations": 2, "max_new_tokens": 2})
    assert result.run_dir == (tmp_path / "r").resolve() and result.steps == 1
    assert set(result.metrics) >= {"val/pass@1"} and result.checkpoint == result.run_dir / "checkpoints" / "step_000001"
    assert result.best_checkpoint in (None, result.run_dir / "checkpoints" / "best")
    assert yaml.safe_load((result.run_dir / "config.yaml").read_text())["grader"]["function"] == "test_api:batch_reward"


@pytest.mark.model
def test_evaluate_scores_a_hub_model_with_a_python_reward(tmp_path, hub_cache, tiny_model_dir):
    from hub_cache_layout import publish_to_hub_cache

    publish_to_hub_cache(hub_cache, "rft-test/tiny", tiny_model_dir)
    data = tmp_path / "val.jsonl"
    data.write_text("".join(f'{{"id": "{a}", "prompt": "{a}+1=", "answer": "{a + 1}"}}\n' for a in range(4)))
    [res] = rft.evaluate("rft-test/tiny", str(data), grader=reward, max_new_tokens=2, device="cpu")
    assert res.metrics["pass@1"] in (0.0, 0.25, 0.5, 0.75, 1.0) and len(res.rows) == 4
