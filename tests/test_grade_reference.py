"""``rft grade --task NAME --reference``: every built-in task's own reference answers pass its grader
through the pool training uses (a task whose answers fail its grader is broken), failures are named
with their reasons and exit 1, and bad input is one line with exit 2."""

import importlib.util

import pytest

from rft.cli import main
from rft.data import Example
from rft.tasks import PACKAGES, TASKS

# Small but whole: every reference of HumanEval, a slice of the generated tasks.
SETTINGS = {
    "arithmetic": ["data.task.digits=1"],
    "word_problems": ["data.task.train_size=60"],
    "sql": ["data.task.train_size=60"],
    "json": ["data.task.train_size=60"],
    "logic": ["data.task.train_size=60"],
    "code": ["data.task.train_size=40"],
    "humaneval": [],
    "reasoning_gym": ["data.task.dataset=chain_sum", "data.task.size=30"],
}


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("RFT_CACHE", str(tmp_path_factory.getbasetemp() / "rft-cache"))


def test_every_built_in_task_has_settings_here():
    assert set(SETTINGS) == set(TASKS)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_built_in_tasks_references_pass_its_grader(name, capsys):
    if name in PACKAGES and importlib.util.find_spec(PACKAGES[name]) is None:
        pytest.skip(f"{PACKAGES[name]} is not installed")
    args = ["grade", "--task", name, "--reference", "--workers", "2"]
    for item in SETTINGS[name]:
        args += ["--set", item]
    status = main(args)
    out = capsys.readouterr().out
    assert status == 0, out
    assert "reference answers pass its grader" in out and "fails" not in out
    if name == "humaneval":
        assert "162 of 164 problems converted" in out and "162/162 reference answers pass" in out
        assert "not converted: HumanEval/32" in out and "not converted: HumanEval/95" in out


def test_a_failing_reference_is_named_with_its_reason_and_exits_1(monkeypatch, capsys):
    def task(cfg, seed):  # row r2's reference answer is wrong; the grader checks "truth"
        rows = [Example(f"r{i}", f"{i}+1=", {"answer": str(i + 1 + (i == 2)), "truth": str(i + 1)}) for i in range(4)]
        return rows[1:], rows[:1], {"type": "arithmetic", "answer_field": "truth"}

    monkeypatch.setitem(TASKS, "arithmetic", task)
    assert main(["grade", "--task", "arithmetic", "--reference", "--workers", "0"]) == 1
    out = capsys.readouterr().out
    assert "fails r2" in out and "3/4 reference answers pass" in out


@pytest.mark.parametrize("args, message", [
    (["--task", "nope", "--reference"], "not a built-in task"),
    (["--task", "code"], "--task and --reference go together"),
    (["--task", "code", "--reference", "--data", "x.jsonl"], "--task and --reference go together"),
    (["--data", "x.jsonl"], "give --grader SPEC and --data FILE"),
])
def test_bad_reference_invocations_say_what_to_do(args, message, capsys):
    try:
        status = main(["grade", *args])
    except SystemExit as e:
        status, err = 2, str(e)
    else:
        err = capsys.readouterr().err
    assert status == 2 and message in err
