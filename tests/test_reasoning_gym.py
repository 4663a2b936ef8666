"""The reasoning_gym task and grader: one answer extracted (an <answer> tag, else the last line),
scored by the dataset's own score_answer; its partial credit for wrong answers is not paid by
default; answers a scorer would evaluate as Python are screened; rft audit finds the scorers'
holes when they are let through; the config trains end to end on the tiny model."""

import json
from pathlib import Path

import pytest

from rft.config import ConfigError, task_config, config_from_dict, load_config
from rft.data import Example
from rft.graders import build
from rft.graders.reasoning_gym import extract_answer, screen

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "reasoning_gym.yaml"


@pytest.mark.parametrize("completion, answer, where", [
    pytest.param("think...\n<answer> 42 </answer>", "42", "answer_tag", id="tag"),
    pytest.param("<ANSWER>7</ANSWER> then more text", "7", "answer_tag", id="tag_any_case"),
    pytest.param("so the sum is\n\n 42 \n", "42", "last_line", id="last_line"),
    pytest.param("<answer>1</answer><answer>2</answer>", None, "answer_tag", id="several_tags"),
    pytest.param("<answer>  </answer>", None, "answer_tag", id="empty_tag"),
    pytest.param(" \n ", None, "last_line", id="empty"),
])
def test_one_answer_is_extracted(completion, answer, where):
    assert extract_answer(completion)[:2] == (answer, where)


def test_tag_mode_needs_the_tag():
    assert extract_answer("42", "tag") == (None, "none", "no <answer> tag")


@pytest.mark.parametrize("answer, kind, refused", [
    ("25 * 4 - 3", "math", False), ("x**2/2 + C", "math", False), ("-cos(2*x)/2 + exp(x) + C", "math", False),
    ("['a', 'b']", "literal", False), ("[[1, 0], [0, 1]]", "literal", False),
    ("open('/tmp/x', 'w').close()", "math", True), ("open('/tmp/x', 'w').close()", "literal", True),
    ("__import__('os').system('id')", "math", True), ("x.__class__", "math", True), ("sin('x')", "math", True),
    ("(lambda: 1)()", "math", True), ("[c for c in 'ab']", "literal", True), ("_x + 1", "math", True),
    ("S('1') + 1", "math", True), ("2 +", "math", True), ("(" * 500 + ")" * 500, "math", True),
])
def test_answers_a_scorer_would_evaluate_are_screened(answer, kind, refused):
    assert (screen(answer, kind) is not None) == refused


# -- with reasoning-gym installed ------------------------------------------------------------------


@pytest.fixture(scope="module")
def rg():
    return pytest.importorskip("reasoning_gym")


def _rows(dataset, n=3, **config):
    from rft.tasks import TASKS

    cfg = task_config(name="reasoning_gym", dataset=dataset, size=n, val_size=n, chat=False, config=config)
    return TASKS["reasoning_gym"](cfg, 0)[0]


def test_the_splits_come_from_different_seeds_and_share_no_question(rg):
    from rft.tasks import TASKS

    cfg = task_config(name="reasoning_gym", dataset="chain_sum", size=200, val_size=100,
                     config={"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1})
    train, val, spec = TASKS["reasoning_gym"](cfg, 3)
    assert spec == {"type": "reasoning_gym"} and len(val) == 100 and 0 < len(train) < 200  # 2-term sums repeat
    assert not {e.prompt_key() for e in train} & {e.prompt_key() for e in val}
    same_seed = rg.create_dataset("chain_sum", size=1, seed=6, **cfg.config)[0]["question"]
    assert val[0].prompt[0]["content"].startswith(same_seed)  # chat form by default
    again = TASKS["reasoning_gym"](cfg, 3)
    assert [e.prompt for e in again[0]] == [e.prompt for e in train]


@pytest.mark.parametrize("task, message", [
    pytest.param({"dataset": "chain_summ"}, "did you mean chain_sum", id="unknown_dataset"),
    pytest.param({"dataset": "chain_sum", "config": {"seed": 1}}, r"\['seed'\] are set by rft", id="seed_in_config"),
    pytest.param({"dataset": "chain_sum", "config": {"max_term": 3}}, "its fields are .*max_terms", id="bad_field"),
])
def test_config_mistakes_are_config_errors_naming_the_fix(rg, task, message):
    from rft.tasks import TASKS

    with pytest.raises(ConfigError, match=message):
        TASKS["reasoning_gym"](task_config(name="reasoning_gym", val_size=2, size=2, **task), 0)


@pytest.mark.parametrize("task, message", [
    ({"name": "reasoning_gym"}, "data.task.dataset: required field is missing for the reasoning_gym kind"),
    ({"name": "reasoning_gym", "dataset": "chain_sum", "train_size": 5}, "'train_size' applies only to"),
    ({"name": "code", "dataset": "chain_sum"}, "'dataset' applies only to the reasoning_gym"),
    ({"name": "sql", "chat": False}, "'chat' applies only to the reasoning_gym and humaneval"),
])
def test_task_fields_are_checked_at_load(task, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"data": {"task": task}})


def test_references_score_one_and_partial_credit_is_not_paid_by_default(rg):
    example = _rows("chain_sum")[0]
    gold = example.get("answer")
    binary, partial = build({"type": "reasoning_gym"}), build({"type": "reasoning_gym", "partial_credit": True})
    assert binary(example.get("solution"), example).score == 1.0
    chatty = f"<answer>The answer is {gold}.</answer>"
    raw = partial(chatty, example)
    assert 0 < raw.score < 1 and raw.details["rg_score"] == raw.score and not raw.passed  # the scorer's hole
    assert binary(chatty, example).score == 0.0 and binary(chatty, example).details["rg_score"] == raw.score


def test_countdown_garbage_earns_nothing(rg):
    example = _rows("countdown")[0]
    partial = build({"type": "reasoning_gym", "partial_credit": True})
    assert partial("<answer>xyz</answer>", example).details["rg_score"] == 0.01  # countdown pays garbage
    assert build({"type": "reasoning_gym"})("<answer>xyz</answer>", example).score == 0.0
    assert partial("<answer></answer>", example).score == 0.0  # the scorer's 0.01 for nothing is never asked for
    assert build({"type": "reasoning_gym"})(example.get("solution"), example).score == 1.0


def test_a_scorer_that_evaluates_answers_never_sees_code(rg, tmp_path):
    """string_insertion's own scorer runs ``eval`` on an answer that is not the gold: it runs code."""
    example = _rows("string_insertion")[0]
    entry = example.get("rg_entry")
    marker = tmp_path / "ran"
    attack = f"open({str(marker)!r}, 'w').close()"
    rg.create_dataset("string_insertion", size=1, seed=0).score_answer(attack, entry)
    assert marker.exists()  # upstream: the answer ran
    marker.unlink()
    grade = build({"type": "reasoning_gym", "partial_credit": True})(f"<answer>{attack}</answer>", example)
    assert grade.score == 0.0 and "refused" in grade.reason and not marker.exists()
    assert build({"type": "reasoning_gym"})(example.get("solution"), example).score == 1.0


def test_audit_finds_no_hole_by_default_and_the_scorers_holes_with_partial_credit(rg, monkeypatch):
    from rft.safety.attacks import audit
    from rft.graders import reasoning_gym as grader_module

    rows = _rows("chain_sum", 2) + _rows("countdown", 2) + _rows("string_insertion", 2)
    assert audit({"type": "reasoning_gym"}, rows, workers=0).holes == []
    found = audit({"type": "reasoning_gym", "partial_credit": True}, rows, workers=0)
    holes = {(h.example_id.split("-")[0], h.attack) for h in found.holes}
    assert {("chain_sum", "chatty"), ("chain_sum", "answer_spray"), ("countdown", "garbage")} <= holes
    assert "several_tags" not in {a for _, a in holes}  # closed by extraction
    assert not [h for h in found.holes if "ran the answer as code" in h.reason]  # closed by the screen
    monkeypatch.setattr(grader_module, "EXECUTES_ANSWER", {})  # no screen: the audit sees the answer run
    unscreened = audit({"type": "reasoning_gym"}, rows[-2:], workers=0)
    assert {h.attack for h in unscreened.holes} == {"executes_answer"}
    assert all("ran the answer as code" in h.reason for h in unscreened.holes)


@pytest.mark.model
def test_the_reasoning_gym_config_trains_two_steps_on_the_tiny_model(rg, tmp_path):
    from rft.console import Console
    from rft.grpo.train import train

    cfg = load_config(CONFIG, ["grpo.steps=2", f"output_dir={tmp_path}", "eval.size=4",
                               "grpo.prompts_per_step=4", "sampling.num_generations=2",
                               "grading.workers=0", "eval.capability=false"])
    result = train(cfg, console=Console(quiet=True))
    rows = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if r["type"] == "train"]
    assert [r["step"] for r in steps] == [1, 2]
    assert all(r["grader/reasoning_gym/count"] == 8 and r["grader/reasoning_gym/errors"] == 0 for r in steps)


def test_rows_without_an_entry_are_skipped_not_scored():
    grade = build({"type": "reasoning_gym"})("<answer>1</answer>", Example("x", "q", {"answer": "1"}))
    assert grade.skipped and grade.score == 0.0
