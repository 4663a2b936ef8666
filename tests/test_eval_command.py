"""`rft eval`: a model or a run's checkpoint evaluated on a data file gives the numbers training's
validation logged for it -- same prompt rendering (chat template), decoding and grading."""

import json
import shutil

import pytest

from rft.cli import main
from rft.config import config_from_dict
from rft.console import Console
from rft.data import write_jsonl
from rft.grpo.train import train
from rft.models.load import load_tokenizer
from rft.tasks import TASKS, load_splits
from rft.training.sft import sft

QUIET = Console(quiet=True)
# A minimal chat template over the tiny model's character vocabulary (as in test_chat_data).
TEMPLATE = ("{% for m in messages %}{{ m['role'][0] }}:{{ m['content'] }}\n{% endfor %}"
            "{% if add_generation_prompt %}a:{% endif %}")
# A reward random completions sometimes earn (a digit anywhere), so pass@1 is neither 0 nor 1.
DIGIT = {"type": "regex", "pattern": "[0-9]", "mode": "search"}


@pytest.fixture(scope="module", autouse=True)
def _private_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RFT_CACHE", str(tmp_path_factory.mktemp("rft-cache")))
        yield


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _cfg(out, model_dir, data, lora=None):
    return config_from_dict({
        "name": "run", "output_dir": str(out), "seed": 0, "threads": 2, "report_to": [],
        "model": {"path": str(model_dir), "lora": lora}, "data": data, "grader": DIGIT,
        "sampling": {"num_generations": 4, "max_new_tokens": 3, "temperature": 1.3},
        "grpo": {"steps": 2, "prompts_per_step": 4, "lr": 2e-2},
        "eval": {"every": 1, "samples": 4, "capability": False}, "checkpoint": {"every": 1, "keep_last": 2},
    })


@pytest.fixture(scope="module")
def chat_run(tmp_path_factory, varied_model_dir):
    """A 2-step full fine-tuning run on chat rows, from a model whose greedy answers differ per prompt."""
    root = tmp_path_factory.mktemp("chat")
    model = shutil.copytree(varied_model_dir, root / "model")
    tok = load_tokenizer(model)
    tok.chat_template = TEMPLATE
    tok.save_pretrained(model)
    rows = [{"messages": [{"role": "system", "content": "add"}, {"role": "user", "content": f"{i % 10}+{i // 10}="}],
             "answer": str(i % 10 + i // 10)} for i in range(32)]
    _jsonl(root / "train.jsonl", rows[8:])
    val = _jsonl(root / "val.jsonl", rows[:8])
    data = {"train_file": str(root / "train.jsonl"), "val_file": str(val)}
    return model, train(_cfg(root / "runs", model, data), console=QUIET).run_dir, val


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, varied_model_dir):
    pytest.importorskip("peft")
    root = tmp_path_factory.mktemp("lora")
    cfg = _cfg(root, varied_model_dir, {"task": {"digits": 1, "val_size": 8}},
               lora={"r": 4, "alpha": 8, "target_modules": "all-linear"})
    write_jsonl(root / "val.jsonl", load_splits(cfg.data, cfg.seed)[1])
    return train(cfg, console=QUIET).run_dir, root / "val.jsonl"


def _logged(run_dir):
    val = {}
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        r = json.loads(line)
        if r["type"] == "val":
            val[r["step"]] = r
    return val


def _val_rows(run_dir, step):
    return [json.loads(line) for line in (run_dir / "samples" / f"val_step_{step:06d}.jsonl").read_text().splitlines()]


def test_base_and_run_reproduce_the_validation_the_run_logged(chat_run, tmp_path):
    model_dir, run_dir, val = chat_run
    out = tmp_path / "eval.json"
    assert main(["eval", str(model_dir), str(run_dir), "--data", str(val), "--samples", "4", "--out", str(out),
                 "--device", "cpu", "--quiet"]) == 0
    summary = json.loads(out.read_text())
    assert summary["examples"] == 8 and summary["data"] == str(val)
    st = summary["settings"]  # taken from the run's config.yaml, for both rows
    assert (st["max_new_tokens"], st["temperature"], st["grader"], st["samples"]) == (3, 1.3, DIGIT, 4)
    base, trained = summary["models"]
    logged = _logged(run_dir)
    assert (base["checkpoint"], trained["checkpoint"], trained["step"]) == (None, "step_000002", 2)
    # the base model is what step 0 validated; latest is step 2: same completions, same grades
    assert base["rows"] == _val_rows(run_dir, 0) and trained["rows"] == _val_rows(run_dir, 2)
    for model, step in ((base, 0), (trained, 2)):
        for key in ("pass@1", "mean_reward", "sampled/pass@1", "sampled/pass@2", "sampled/pass@4", "sampled/maj@4"):
            assert model["metrics"][key] == logged[step][f"val/{key}"], (step, key)
    # the check has teeth: greedy answers differ across prompts and training changed some of them
    assert len({r["completion"] for r in base["rows"]}) > 1
    assert [r["completion"] for r in base["rows"]] != [r["completion"] for r in trained["rows"]]
    assert 0 < logged[0]["val/pass@1"] < 1
    assert not list(tmp_path.glob(".eval.json.*")), "written atomically"


def test_named_checkpoint_of_a_run(chat_run, tmp_path):
    _, run_dir, val = chat_run
    out = tmp_path / "e.json"
    assert main(["eval", str(run_dir), "--data", str(val), "--checkpoint", "step_1", "--out", str(out), "--quiet"]) == 0
    (result,) = json.loads(out.read_text())["models"]
    assert (result["checkpoint"], result["step"]) == ("step_000001", 1)
    assert result["rows"] == _val_rows(run_dir, 1)


def test_lora_run_loads_its_adapter_onto_the_configured_base(lora_run, tmp_path, capsys):
    run_dir, val = lora_run
    out = tmp_path / "lora.json"
    assert main(["eval", str(run_dir), "--data", str(val), "--json", "--out", str(out)]) == 0
    line = json.loads(capsys.readouterr().out.strip())  # --json: one line, the summary without rows
    (result,) = line["models"]
    assert "rows" not in result and result["base"] is not None and result["checkpoint"] == "step_000002"
    assert result["metrics"]["pass@1"] == _logged(run_dir)[2]["val/pass@1"]
    rows = json.loads(out.read_text())["models"][0]["rows"]
    assert rows == _val_rows(run_dir, 2)
    assert rows != _val_rows(run_dir, 0), "the adapter should change some answers"
    # the adapter directory `rft export` writes loads onto the base it names, with the same answers
    assert main(["export", str(run_dir), "--out", str(tmp_path / "adapter")]) == 0
    assert main(["eval", str(tmp_path / "adapter"), "--data", str(val), "--grader", json.dumps(DIGIT),
                 "--max-new-tokens", "3", "--out", str(out), "--quiet"]) == 0
    assert json.loads(out.read_text())["models"][0]["rows"] == rows


def test_sft_run_directory_is_its_final_model(tmp_path, varied_model_dir, capsys):
    cfg = _cfg(tmp_path, varied_model_dir, {"task": {"digits": 1, "val_size": 8}}).model_dump()
    cfg["sft"] = {"steps": 2, "batch_size": 8, "warmup_steps": 0, "eval_every": 2}
    result = sft(config_from_dict(cfg), console=QUIET)
    write_jsonl(tmp_path / "val.jsonl", load_splits(config_from_dict(cfg).data, 0)[1])
    out = tmp_path / "o.json"
    assert main(["eval", str(result.run_dir), str(varied_model_dir), "--data", str(tmp_path / "val.jsonl"),
                 "--out", str(out), "--quiet"]) == 0
    model, base = json.loads(out.read_text())["models"]
    assert (model["checkpoint"], model["step"]) == ("model", 2)
    assert model["metrics"]["pass@1"] == result.val["val/pass@1"]
    assert model["rows"] != base["rows"], "two SFT steps should change some answers"
    assert main(["eval", str(result.run_dir), "--data", str(tmp_path / "val.jsonl"), "--checkpoint", "best"]) == 2
    assert "is an SFT run with one final model" in capsys.readouterr().err


def test_rows_own_graders_are_used_without_a_grader_flag(chat_run, tmp_path):
    model_dir, _, _ = chat_run
    data = _jsonl(tmp_path / "d.jsonl", [{"prompt": f"{i}+1=", "grader": {"type": "regex", "pattern": ".*"}}
                                         for i in range(3)])
    out = tmp_path / "o.json"
    assert main(["eval", str(model_dir), "--data", str(data), "--max-new-tokens", "2", "--out", str(out),
                 "--quiet"]) == 0
    (result,) = json.loads(out.read_text())["models"]
    assert result["metrics"]["pass@1"] == 1.0 and len(result["rows"]) == 3
    assert "sampled/pass@1" not in result["metrics"], "no --samples: greedy only"


def _bad_line(tmp_path, val):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(val.read_text() + "{not json\n")
    return ["--data", str(bad)]


def _no_checkpoints(tmp_path, run_dir):
    (tmp_path / "fresh").mkdir()
    shutil.copy(run_dir / "config.yaml", tmp_path / "fresh" / "config.yaml")
    return str(tmp_path / "fresh")


@pytest.mark.parametrize("case, message", [
    ("missing path", "is neither a run directory (no config.yaml) nor a model"),
    ("run without checkpoints", "no checkpoints/ (nor an SFT model/) to evaluate"),
    ("missing checkpoint", "step_000009: no such checkpoint; this run has"),
    ("bad checkpoint name", "expected best, latest or step_N"),
    ("bad data line", "1 bad line(s)"),
    ("inline JSON", "--grader: inline JSON is invalid"),
    ("unknown grader", "--grader: "),
    ("no grader", "pass --grader SPEC"),
    ("negative samples", "--samples -1: must be >= 0"),
])
def test_bad_input_is_one_error_line_and_exit_2(chat_run, tmp_path, capsys, case, message):
    model_dir, run_dir, val = chat_run
    run, data = str(run_dir), ["--data", str(val)]
    argv = {
        "missing path": [str(tmp_path / "nope"), *data],
        "run without checkpoints": [_no_checkpoints(tmp_path, run_dir), *data],
        "missing checkpoint": [run, *data, "--checkpoint", "step_9"],
        "bad checkpoint name": [run, *data, "--checkpoint", "final"],
        "bad data line": [run, *_bad_line(tmp_path, val)],
        "inline JSON": [run, *data, "--grader", "{type: regex"],
        "unknown grader": [run, *data, "--grader", '{"type": "no-such-grader"}'],
        "no grader": [str(model_dir), *data],
        "negative samples": [run, *data, "--samples", "-1"],
    }[case]
    assert main(["eval", *argv, "--out", str(tmp_path / "o.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err, err
    assert not (tmp_path / "o.json").exists()


def _sql_rows(tmp_path, n=6):
    from rft.config import task_config

    _, val, _ = TASKS["sql"](task_config(name="sql", val_size=n, train_size=10), 0)
    write_jsonl(tmp_path / "sql.jsonl", val)
    return str(tmp_path / "sql.jsonl")


def test_environment_flag_runs_episodes_and_reports_success_by_turn(tmp_path, varied_model_dir, capsys):
    data = _sql_rows(tmp_path)
    out = tmp_path / "o.json"
    assert main(["eval", str(varied_model_dir), "--data", data, "--grader", '{"type": "sql"}', "--max-new-tokens", "8",
                 "--environment", "{type: sql_retry, max_turns: 2}", "--out", str(out)]) == 0
    assert "within" in capsys.readouterr().out
    (result,) = json.loads(out.read_text())["models"]
    m = result["metrics"]
    assert {"episode/success_by_turn_1", "episode/success_by_turn_2"} <= set(m)
    assert "episode/success_by_turn_3" not in m
    assert m["episode/success_by_turn_2"] == m["pass@1"]
    assert all(r["transcript"][0]["role"] == "assistant" for r in result["rows"])
    assert any(len(r["transcript"]) == 3 and r["transcript"][1]["text"].startswith("Error: ") for r in result["rows"]), \
        "random tiny-model queries fail, so some episodes take a second turn after SQLite's error"
    assert main(["eval", str(varied_model_dir), "--data", data, "--grader", '{"type": "sql"}', "--max-new-tokens", "8",
                 "--environment", "single", "--out", str(out), "--quiet"]) == 0
    assert not any(k.startswith("episode/") for k in json.loads(out.read_text())["models"][0]["metrics"])


def test_a_multi_turn_run_is_evaluated_through_its_own_environment(tmp_path, varied_model_dir):
    data = _sql_rows(tmp_path)
    cfg = config_from_dict({
        "name": "mt", "output_dir": str(tmp_path), "seed": 0, "threads": 2, "report_to": [],
        "model": {"path": str(varied_model_dir)}, "data": {"task": {"name": "sql", "val_size": 4, "train_size": 8}},
        "environment": {"type": "sql_retry", "max_turns": 3, "max_observation_tokens": 64},
        "sampling": {"max_new_tokens": 8}, "eval": {"capability": False},
        "sft": {"steps": 1, "batch_size": 2, "warmup_steps": 0, "eval_every": 1, "target_field": "solution"},
    })
    result = sft(cfg, console=QUIET)
    out = tmp_path / "o.json"
    assert main(["eval", str(result.run_dir), "--data", data, "--out", str(out), "--quiet"]) == 0
    (model,) = json.loads(out.read_text())["models"]
    assert "episode/success_by_turn_3" in model["metrics"]
    assert json.loads(out.read_text())["settings"]["environment"]["type"] == "sql_retry"


@pytest.mark.parametrize("flag, message", [
    ("nope", "--environment 'nope': "),
    ("{type: sql_retry, max_turns: 0}", "greater than or equal to 1"),
    ("{type: [", "--environment '{type: [': "),
])
def test_bad_environment_flag_is_one_error_line(tmp_path, varied_model_dir, capsys, flag, message):
    data = _sql_rows(tmp_path, 2)
    assert main(["eval", str(varied_model_dir), "--data", data, "--grader", '{"type": "sql"}', "--environment", flag]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
