"""The one-line start: `rft train --model --dataset --grader [--lora] [--steps]` without a config file,
and `rft init-config` writing a commented starter YAML that loads back as the same config."""

import json

import pytest
import yaml

from rft.cli import main
from rft.commands.quickstart import flag_overrides, grader_spec
from rft.config import ConfigError, load_config


@pytest.mark.parametrize("text, spec", [
    ("math", {"type": "math"}),
    ("rewards.py:accuracy", {"type": "python", "function": "rewards.py:accuracy"}),
    ('{"type": "regex", "pattern": "4"}', {"type": "regex", "pattern": "4"}),
])
def test_grader_flag_takes_a_type_a_function_or_a_spec(text, spec):
    assert grader_spec(text) == spec


@pytest.mark.parametrize("text, message", [("maths", "maths"), ("{not json", "inline JSON is invalid")])
def test_a_bad_grader_flag_is_one_line_naming_it(text, message):
    with pytest.raises(ConfigError, match=message):
        grader_spec(text)


def test_dataset_flag_is_a_task_or_a_file(tmp_path):
    assert load_config(None, flag_overrides(None, "word_problems", None, False, None)).data.task.name == "word_problems"
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"prompt": "1+1=", "answer": "2"}\n')
    cfg = load_config(None, flag_overrides("org/model", str(rows), "arithmetic", True, 7))
    assert (cfg.data.task, cfg.data.train_file, cfg.model.path, cfg.grpo.steps) == (None, str(rows), "org/model", 7)
    assert cfg.model.lora is not None and cfg.grader == {"type": "arithmetic"}
    with pytest.raises(ConfigError, match="not a built-in task .* or a hub dataset name ORG/NAME"):
        flag_overrides(None, "no such/../name", None, False, None)


def test_dataset_flag_takes_a_hub_dataset_name_or_a_dataset_directory(tmp_path):
    cfg = load_config(None, flag_overrides(None, "openai/gsm8k", None, False, None) + ["data.dataset.name=main"])
    assert (cfg.data.task, cfg.data.train_file, cfg.data.dataset.path, cfg.data.dataset.name) == (
        None, None, "openai/gsm8k", "main")
    (tmp_path / "folder").mkdir()
    assert load_config(None, flag_overrides(None, str(tmp_path / "folder"), None, False, None)).data.dataset.path == \
        str(tmp_path / "folder")
    back = load_config(None, flag_overrides(None, "openai/gsm8k", None, False, None)
                       + flag_overrides(None, "arithmetic", None, False, None))  # the last --dataset wins
    assert (back.data.task.name, back.data.dataset) == ("arithmetic", None)


@pytest.mark.model
def test_train_runs_from_flags_alone_and_records_them(tmp_path, tiny_model_dir, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = main(["train", "--model", str(tiny_model_dir), "--dataset", "arithmetic", "--grader", "arithmetic",
                 "--steps", "1", "--set", "grpo.prompts_per_step=2", "--set", "data.task.val_size=4",
                 "--set", "data.task.digits=1", "--set", "sampling.num_generations=2", "--set", "report_to=[]"])
    assert code == 0
    printed = capsys.readouterr().out
    assert f"path: {tiny_model_dir}" in printed  # the config is shown before it runs
    saved = yaml.safe_load((tmp_path / "runs" / "run" / "config.yaml").read_text())
    assert saved["model"]["path"] == str(tiny_model_dir) and saved["grader"] == {"type": "arithmetic"}
    assert saved["grpo"]["steps"] == 1


def test_init_config_writes_commented_yaml_that_loads_as_the_flags_config(tmp_path, capsys):
    out = tmp_path / "rft.yaml"
    flags = ["--model", "Qwen/Qwen2.5-0.5B-Instruct", "--dataset", "arithmetic", "--grader", "math", "--steps", "50"]
    assert main(["init-config", *flags, "--out", str(out)]) == 0
    text = out.read_text()
    assert "  path: Qwen/Qwen2.5-0.5B-Instruct  # local model directory, a Hugging Face hub id" in text
    assert load_config(out) == load_config(None, flag_overrides("Qwen/Qwen2.5-0.5B-Instruct", "arithmetic", "math",
                                                                False, 50))
    assert main(["init-config", *flags, "--out", str(out)]) == 2  # not replaced silently
    assert "exists" in capsys.readouterr().err
    assert json.loads(json.dumps(yaml.safe_load(text)))["grpo"]["steps"] == 50
