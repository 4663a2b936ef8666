import pytest

from rft.cli import main
from rft.config import ConfigError, config_from_dict, load_config


def _write(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_defaults_validate_and_round_trip_through_yaml(tmp_path):
    cfg = load_config(None)
    again = load_config(_write(tmp_path, cfg.to_yaml()))
    assert again == cfg


def test_unknown_key_names_the_full_field_path():
    with pytest.raises(ConfigError, match=r"grpo\.betta: unknown key"):
        config_from_dict({"grpo": {"betta": 0.1}})


def test_bad_value_names_field_value_and_constraint():
    with pytest.raises(ConfigError, match=r"grpo\.lr: .*greater than 0.*got -1"):
        config_from_dict({"grpo": {"lr": -1}})


def test_bad_enum_lists_the_allowed_choices():
    with pytest.raises(ConfigError, match=r"grpo\.loss_type: .*'grpo', 'bnpo', 'dr_grpo' or 'dapo'"):
        config_from_dict({"grpo": {"loss_type": "ppo"}})


def test_malformed_yaml_names_file_and_line(tmp_path):
    p = _write(tmp_path, "grpo:\n  lr: 0.1\n  beta: [0.1\nseed: 1\n")
    with pytest.raises(ConfigError, match=r"c\.yaml:\d+:\d+: malformed YAML"):
        load_config(p)


def test_set_overrides_are_parsed_as_yaml_and_validated():
    cfg = load_config(None, ["grpo.beta=0.04", "sampling.num_generations=4", "eval.track_fields=[sloppy]"])
    assert (cfg.grpo.beta, cfg.sampling.num_generations, cfg.eval.track_fields) == (0.04, 4, ["sloppy"])
    with pytest.raises(ConfigError, match=r"grpo\.bta: unknown key"):
        load_config(None, ["grpo.bta=0.04"])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_config(None, ["grpo.beta"])


def test_micro_batches_must_hold_whole_groups():
    with pytest.raises(ConfigError, match="whole groups"):
        config_from_dict({"grpo": {"prompts_per_step": 10, "gradient_accumulation_steps": 4}})


def test_data_needs_exactly_one_source():
    with pytest.raises(ConfigError, match="exactly one of data.task"):
        config_from_dict({"data": {"task": {"digits": 2}, "train_file": "x.jsonl"}})


def test_missing_config_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_cli_reports_config_errors_in_one_line_with_exit_status_2(tmp_path, capsys):
    p = _write(tmp_path, "grpo:\n  betta: 0.1\n")
    assert main(["train", str(p), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: invalid config: grpo.betta: unknown key") and "\n" not in err
    assert "Traceback" not in err


def test_cli_reports_a_missing_model_directory(tmp_path, capsys):
    assert main(["train", "--set", f"model.path={tmp_path / 'none'}", "--set", f"output_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "no such directory" in err and "rft init-model" in err
    assert not (tmp_path / "run").exists()  # nothing partially written


def test_cli_reports_a_directory_that_is_not_a_model(tmp_path, capsys):
    (tmp_path / "notamodel").mkdir()
    assert main(["sft", "--set", f"model.path={tmp_path / 'notamodel'}", "--set", f"output_dir={tmp_path}"]) == 2
    assert "not a model directory" in capsys.readouterr().err


def test_every_config_field_says_what_it_is_for():
    import inspect

    import pydantic

    import rft.config.environments
    import rft.config.run
    import rft.config.tasks

    sections = [cls for module in (rft.config.run, rft.config.environments, rft.config.tasks)
                for _, cls in inspect.getmembers(module, inspect.isclass)
                if issubclass(cls, pydantic.BaseModel) and cls.__module__ == module.__name__]
    assert len(sections) >= 10 + 8 + 4  # run sections, tasks, environments
    assert [f"{cls.__name__}.{name}" for cls in sections for name, info in cls.model_fields.items()
            if not info.description] == []


def test_a_bad_grader_field_fails_at_load_before_any_model_is_built(tmp_path, capsys, monkeypatch):
    import rft.training.session

    monkeypatch.setattr(rft.training.session, "load_policy", lambda *a, **k: pytest.fail("a model was loaded"))
    p = _write(tmp_path, f"output_dir: {tmp_path}\ngrader: {{type: math, extract: boxd}}\n")
    message = "invalid config: grader: math grader: field 'extract' = 'boxd': not a supported value; choose one of 'boxed'"
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert str(e.value).startswith(message)
    assert main(["train", str(p), "--quiet"]) == 2
    assert capsys.readouterr().err.startswith(f"error: {message}")
    assert not (tmp_path / "run").exists()


def test_the_grader_spec_is_kept_as_the_user_wrote_it(tmp_path):
    cfg = load_config(_write(tmp_path, "grader: {type: string_check, name: exact}\n"))
    assert cfg.grader == {"type": "string_check", "name": "exact"}  # validated, not expanded with defaults
    assert "grader:\n  type: string_check\n  name: exact\n" in cfg.to_yaml()


def test_rft_config_graders_lists_every_type_with_its_fields(capsys):
    from rft.config.graders import SPECS

    assert main(["config", "--graders"]) == 0
    out = capsys.readouterr().out
    for kind, model in SPECS.items():
        assert f"\n{kind}: {model.__doc__}\n" in "\n" + out
        for name, info in model.model_fields.items():
            assert name == "type" or f"  {info.alias or name}: " in out and f"      {info.description}\n" in out
    assert '  extract: "boxed" | "tag" | "hash" | "auto" | "last_number", default "boxed"\n' in out
    assert "  max_length: int (>= 1), required\n" in out
    assert "  timeout_s: float (>= 0.01 and <= 600), default 3.0\n" in out


def test_rft_config_graders_prints_the_types_named(capsys):
    assert main(["config", "--graders", "overlong", "format"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("overlong: ") and "\nformat: " in out and "\nmath: " not in out
    assert main(["config", "--graders", "mathh"]) == 2
    assert "unknown grader type(s) ['mathh']; choose from" in capsys.readouterr().err


def test_rft_config_lists_every_task_and_environment_with_its_own_fields(capsys):
    from rft.config.environments import ENVIRONMENT_KINDS
    from rft.config.tasks import TASK_KINDS

    assert main(["config", "--tasks"]) == 0
    out = capsys.readouterr().out
    assert [line.split(":")[0] for line in out.splitlines() if line and not line.startswith(" ")] == list(TASK_KINDS)
    sql = out.split("\nsql: ")[1].split("\n\n")[0]
    assert "val_size" in sql and "digits" not in sql  # a kind lists only its own fields
    assert main(["config", "--environments", "sql_retry"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("sql_retry: ") and "feedback_rows" in out and "factory" not in out
    assert set(ENVIRONMENT_KINDS) == {"single", "sql_retry", "code_retry", "trl"}
    assert main(["config", "--tasks", "sqll"]) == 2
    assert "unknown task(s) ['sqll']; choose from" in capsys.readouterr().err


@pytest.mark.parametrize("task, message", [
    ({"name": "sql", "digits": 3}, "'digits' applies only to the arithmetic and word_problems task(s), not to 'sql'; "
                                   "remove data.task.digits"),
    ({"name": "sqll"}, "data.task.name: 'sqll' is not a task; choose one of 'arithmetic'"),
    ({"digits": 3, "val_size": 7}, None),  # no name: arithmetic
])
def test_a_task_is_its_kind_and_takes_only_its_own_fields(task, message):
    if message is None:
        assert config_from_dict({"data": {"task": task}}).data.task.name == "arithmetic"
        return
    with pytest.raises(ConfigError) as e:
        config_from_dict({"data": {"task": task}})
    assert message in str(e.value)


def test_the_cli_imports_only_the_named_command_and_no_torch_for_config():
    import subprocess
    import sys

    code = ("import io, sys, contextlib\nfrom rft.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n    main(['config', '--tasks'])\n"
            "print('torch' in sys.modules, sorted(m for m in sys.modules if m.startswith('rft.commands.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split(" ", 1)
    assert out[0] == "False"  # `rft config` starts without torch
    assert "rft.commands.train" not in out[1] and "rft.commands.config" in out[1]
