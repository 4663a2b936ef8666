"""`rft train --openai-job`: OpenAI fine-tuning job bodies mapped onto rft's config and run."""

import json
from pathlib import Path

import pytest

from rft.cli import main
from rft.commands.openai_job import plan_job
from rft.config import ConfigError
from rft.models.load import load_tokenizer

ROOT = Path(__file__).resolve().parents[1]
# The "Reinforcement" example of POST /v1/fine_tuning/jobs in OpenAI's API reference, verbatim
# (https://developers.openai.com/api/reference/resources/fine_tuning/subresources/jobs/methods/create).
DOCUMENTED = {
    "training_file": "file-abc",
    "validation_file": "file-123",
    "model": "o4-mini",
    "method": {
        "type": "reinforcement",
        "reinforcement": {
            "grader": {
                "type": "string_check",
                "name": "Example string check grader",
                "input": "{{sample.output_text}}",
                "reference": "{{item.label}}",
                "operation": "eq",
            },
            "hyperparameters": {"reasoning_effort": "medium"},
        },
    },
}
TEMPLATE = ("{% for m in messages %}{{ m['role'][0] }}:{{ m['content'] }}\n{% endfor %}"
            "{% if add_generation_prompt %}a:{% endif %}")
SMALL = ["sampling.max_new_tokens=4", "eval.samples=0", "eval.capability=false", "report_to=[]", "threads=1"]


@pytest.fixture(scope="module")
def chat_model(tmp_path_factory):
    """The tiny model with a chat template: OpenAI's RFT data is chat messages."""
    from rft.models.tiny import init_tiny_model

    path = init_tiny_model(tmp_path_factory.mktemp("chat"), seed=0)
    tok = load_tokenizer(path)
    tok.chat_template = TEMPLATE
    tok.save_pretrained(path)
    return str(path)


def _job(tmp_path: Path, body: dict, name: str = "job.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(body))
    return str(path)


def _with(**hyper) -> dict:
    body = json.loads(json.dumps(DOCUMENTED))
    body["method"]["reinforcement"]["hyperparameters"].update(hyper)
    return body


def _local(model: str) -> list[str]:
    return [f"model.path={model}", f"data.train_file={ROOT}/configs/openai/train.jsonl",
            f"data.val_file={ROOT}/configs/openai/valid.jsonl"]


@pytest.mark.model
def test_the_documented_job_body_trains_end_to_end(tmp_path, chat_model, capsys):
    job = _job(tmp_path, DOCUMENTED)
    sets = [*_local(chat_model), f"output_dir={tmp_path}", "grpo.steps=2", "grpo.prompts_per_step=2",
            "sampling.num_generations=2", "eval.size=4", *SMALL]
    assert main(["train", "--openai-job", job, *sum((["--set", s] for s in sets), []), "--quiet"]) == 0
    out, err = capsys.readouterr()
    cfg = plan_job(job, sets).config
    assert out.startswith(cfg.to_yaml())  # the resolved config, as `rft config --openai-job` prints it
    assert cfg.grader == DOCUMENTED["method"]["reinforcement"]["grader"]  # the grader as-is
    assert "note: reasoning_effort 'medium': ignored" in err
    metrics = [json.loads(line) for line in (tmp_path / "openai-job" / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in metrics if r.get("type") == "train"]
    assert [r["step"] for r in train] == [1, 2] and "grader/string_check/mean" in train[-1]


def test_the_example_job_reads_its_files_next_to_it_and_prints_what_rft_config_prints(chat_model, capsys):
    plan = plan_job(ROOT / "configs/openai_job.json", [f"model.path={chat_model}"])
    cfg = plan.config
    assert Path(cfg.data.train_file).resolve() == ROOT / "configs/openai/train.jsonl"
    # 104 training rows, batch_size auto = 16 prompts per step, n_epochs auto = 1: ceil(104 / 16) = 7 steps
    assert (cfg.grpo.prompts_per_step, cfg.grpo.steps, cfg.sampling.num_generations) == (16, 7, 8)
    assert cfg.grpo.lr == pytest.approx(1e-6)  # full fine-tuning of a model that is not the embedded one
    assert main(["config", "--openai-job", str(ROOT / "configs/openai_job.json"), "--set",
                 f"model.path={chat_model}"]) == 0
    assert capsys.readouterr().out == cfg.to_yaml()


@pytest.mark.parametrize("hyper, expect", [
    # batch_size B -> prompts per step; n_epochs E -> E * ceil(rows / B) steps (104 rows)
    ({"batch_size": 8, "n_epochs": 3}, {"grpo.prompts_per_step": 8, "grpo.steps": 39}),
    ({"learning_rate_multiplier": 2.0}, {"grpo.lr": 6e-4}),                      # x base 3e-4 (embedded)
    ({"compute_multiplier": 0.5}, {"sampling.num_generations": 4}),              # G = 8 x 0.5
    ({"compute_multiplier": 0.01}, {"sampling.num_generations": 2}),             # at least 2: a group
    ({"eval_interval": 5, "eval_samples": 3}, {"eval.every": 5, "eval.samples": 3}),
    ({"batch_size": "auto", "n_epochs": "auto"}, {"grpo.prompts_per_step": 16, "grpo.steps": 7}),
])
def test_hyperparameters_map_onto_the_config(tmp_path, hyper, expect):
    cfg = plan_job(_job(tmp_path, _with(**hyper)), _local("embedded")).config
    for dotted, value in expect.items():
        section, key = dotted.split(".")
        assert getattr(getattr(cfg, section), key) == pytest.approx(value), dotted


def test_set_overrides_win_and_derived_fields_follow_them(tmp_path):
    job = _job(tmp_path, _with(batch_size=8, n_epochs=2, learning_rate_multiplier=2.0))
    cfg = plan_job(job, [*_local("embedded"), "grpo.prompts_per_step=4", "grpo.lr=1e-5"]).config
    assert (cfg.grpo.prompts_per_step, cfg.grpo.steps, cfg.grpo.lr) == (4, 2 * 26, 1e-5)
    assert plan_job(job, [*_local("embedded"), "grpo.steps=3"]).config.grpo.steps == 3


def test_without_a_validation_file_a_tenth_of_the_rows_is_held_out(tmp_path):
    body = _with(batch_size=8)
    del body["validation_file"]
    plan = plan_job(_job(tmp_path, body), _local("embedded")[:2])
    assert plan.config.data.val_size == 10 and plan.config.grpo.steps == 12  # ceil(94 / 8)
    assert any("no validation_file: 10 of the 104 training rows" in n for n in plan.notes)


SECURITY_GRADER = {  # the multi grader of OpenAI's RFT guide: a score_model term and a string_check term
    "type": "multi",
    "graders": {
        "explanation": {"name": "Explanation text grader", "type": "score_model",
                        "input": [{"role": "user", "type": "message", "content": "..."}], "model": "gpt-4o-2024-08-06"},
        "compliant": {"name": "compliant", "type": "string_check", "reference": "{{item.compliant}}",
                      "operation": "eq", "input": "{{sample.output_json.compliant}}"},
    },
    "calculate_output": "0.5 * compliant + 0.5 * explanation",
}


@pytest.mark.parametrize("change, sets, message", [
    (lambda b: b["method"]["reinforcement"].update(grader=SECURITY_GRADER), None,
     "sub-grader 'explanation': score_model grader: model 'gpt-4o-2024-08-06' names no judge; .*judge: {model: .*"
     "--set grader.judge.model=..."),
    (lambda b: b["method"]["reinforcement"].update(grader={"type": "endpoint", "name": "e", "url": "https://x"}), None,
     "a endpoint grader calls an HTTP endpoint"),
    (lambda b: b.update(method={"type": "supervised"}), None, "runs reinforcement jobs.*rft sft"),
    (lambda b: b.update(n_epoch=2), None, "unknown key\\(s\\) \\['n_epoch'\\]"),
    (lambda b: b["method"]["reinforcement"]["hyperparameters"].update(batch_size=0), None,
     "hyperparameters.batch_size = 0: expected 'auto' or an integer in \\[1, 256\\]"),
    (lambda b: None, [f"data.train_file={ROOT}/configs/openai/train.jsonl"], "model = 'o4-mini': not a local model directory"),
    (lambda b: None, ["model.path=embedded"], "data.train_file = 'file-abc': no such local file; OpenAI file IDs"),
])
def test_what_cannot_run_here_is_refused_with_the_fix(tmp_path, change, sets, message):
    body = json.loads(json.dumps(DOCUMENTED))
    change(body)
    with pytest.raises(ConfigError, match=message):
        plan_job(_job(tmp_path, body), sets if sets is not None else _local("embedded"))


def test_a_model_graded_term_runs_once_its_openai_model_is_mapped_to_a_judge(tmp_path):
    body = json.loads(json.dumps(DOCUMENTED))
    body["method"]["reinforcement"]["grader"] = SECURITY_GRADER
    sets = [*_local("embedded"), "grader.graders.explanation.judge.model=smollm2-135m-instruct"]
    grader = plan_job(_job(tmp_path, body), sets).config.grader
    assert grader["graders"]["explanation"]["judge"] == {"model": "smollm2-135m-instruct"}
    assert grader["graders"]["explanation"]["model"] == "gpt-4o-2024-08-06"  # the job's own text, kept


# The acceptance case of model graders (issue 27): a multi of a python grader and a score_model judge,
# as an OpenAI job body writes it, trains here with the judge a local model rft serves, or a server at
# a base_url (the same loopback server, started by the test).
JUDGED = {
    "type": "multi",
    "graders": {
        "exact": {"type": "python", "name": "exact",
                  "source": "def grade(sample, item):\n    return float(sample['output_text'].strip() == item['label'])\n"},
        "judge": {"type": "score_model", "name": "tone", "model": "gpt-4o-2024-08-06", "range": [0, 1],
                  "input": [{"role": "system", "content": "Score 0 to 1 how well the answer names the sentiment. "
                             "Reply with the number only."},
                            {"role": "user", "content": "Expected: {{ item.label }}\n<answer>{{ sample.output_text }}"
                             "</answer>"}]},
    },
    "calculate_output": "0.7 * exact + 0.3 * judge",
}


def _train_judged(tmp_path, model: str, judge: list[str], steps: int = 2) -> list[dict]:
    body = json.loads(json.dumps(DOCUMENTED))
    body["method"]["reinforcement"]["grader"] = JUDGED
    sets = [*_local(model), f"output_dir={tmp_path}", f"grpo.steps={steps}", "grpo.prompts_per_step=2",
            "sampling.num_generations=2", "eval.size=2", *SMALL, *judge]
    assert main(["train", "--openai-job", _job(tmp_path, body), *sum((["--set", s] for s in sets), []), "--quiet"]) == 0
    metrics = [json.loads(line) for line in (tmp_path / "openai-job" / "metrics.jsonl").read_text().splitlines()]
    return [r for r in metrics if r.get("type") == "train"]


@pytest.mark.model
def test_a_job_with_a_judge_trains_with_the_judge_a_local_model(tmp_path, chat_model):
    train = _train_judged(tmp_path, chat_model, [f"grader.graders.judge.judge.model={chat_model}",
                                                 "grader.graders.judge.judge.device=cpu"])
    assert [r["step"] for r in train] == [1, 2]
    assert train[-1]["grader/multi/judge_calls"] + train[-1]["grader/multi/judge_cached"] == 4  # 2 prompts x G=2
    assert train[-1]["grader/multi/judge_failure_rate"] == 1.0  # the tiny judge's replies are no numbers: 0 each


@pytest.mark.model
def test_a_job_with_a_judge_trains_with_the_judge_at_a_base_url(tmp_path, chat_model):
    from rft.graders.judge_servers import start_server, stop_server

    proc, url = start_server(chat_model, "cpu", threads=1)  # the user's server: here rft's own, on the loopback
    try:
        train = _train_judged(tmp_path, chat_model, [f"grader.graders.judge.judge.base_url={url}"])
    finally:
        stop_server(proc)
    assert [r["step"] for r in train] == [1, 2] and "grader/multi/judge_latency_ms" in train[-1]


@pytest.mark.model
def test_a_job_with_a_judge_trains_with_smollm2_as_the_judge(tmp_path, chat_model):
    """The SmolLM2 preset judges (fetched and converted once into $RFT_CACHE; skipped when it cannot be).
    12.6 s on this 2-core EPYC with the preset cached, under the ~20 s past which it would be marked slow."""
    from rft.models.presets import PresetError, preset_model_dir

    try:
        preset_model_dir("smollm2-135m-instruct")
    except PresetError as e:
        pytest.skip(f"the SmolLM2 preset is not available here: {e}")
    train = _train_judged(tmp_path, chat_model, ["grader.graders.judge.judge.model=smollm2-135m-instruct",
                                                 "grader.graders.judge.judge.device=cpu"])
    assert [r["step"] for r in train] == [1, 2] and train[-1]["grader/multi/judge_prompt_tokens"] > 0
