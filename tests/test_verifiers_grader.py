"""The verifiers grader: an environment's rewards scored offline, in grader workers, both APIs.

The v1 tests need verifiers (``pip install 'rft[verifiers]'``); the Environment-API tests load
environment files whose objects have the shape verifiers' ``SingleTurnEnv`` / ``Rubric`` /
``JudgeRubric`` give (``rubric.funcs``, ``rubric.weights``, ``rubric.class_objects``,
``env.message_type``) -- that API left verifiers in 0.4 -- and one test runs the real classes
where verifiers < 0.4 is installed.
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rft.commands.grade import grade_command
from rft.config import load_config
from rft.config.base import SpecError
from rft.console import Console
from rft.data import Example, example_from_row
from rft.graders.base import passed_of
from rft.graders.registry import build

ROOT = Path(__file__).resolve().parents[1]
ARITH = str(ROOT / "configs" / "verifiers" / "arith_env.py")
needs_v1 = pytest.mark.skipif(
    subprocess.run([sys.executable, "-c", "import verifiers.v1"], capture_output=True).returncode != 0,
    reason="verifiers is not installed (pip install 'rft[verifiers]')")


def _env_file(tmp_path: Path, source: str, name: str = "my_env") -> str:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    return str(path)


def test_importing_rft_does_not_import_verifiers():
    code = ("import sys, rft, rft.cli, rft.graders.registry, rft.graders.verifiers_grader;"
            "print([m for m in sys.modules if m.split('.')[0] == 'verifiers'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- v1: Taskset / Task / @vf.reward ----------------------------------------------------------------


@needs_v1
def test_rft_grade_scores_a_v1_environment_offline_in_worker_processes(tmp_path):
    from rft.graders.verifiers_envs import environment_rows

    rows = environment_rows(ARITH, {"num_examples": 3})
    answer = rows[0]["answer"]
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "completions.jsonl").write_text("".join(json.dumps(c) + "\n" for c in [answer, "7", "seven"]))
    spec = json.dumps({"type": "verifiers", "environment": ARITH, "pass_threshold": 1.0})
    out = tmp_path / "grades.jsonl"
    assert grade_command(spec, str(data), str(tmp_path / "completions.jsonl"), str(out), workers=1, quiet=True) == 0
    grades = [json.loads(line) for line in out.read_text().splitlines()]
    # score = 1.0 x correct + 0.2 x digits_only; reply_length is a metric (weight 0)
    assert [round(g["score"], 6) for g in grades] == [1.2, 0.2, 0.0]
    assert [g["passed"] for g in grades] == [True, False, False]
    assert grades[0]["details"]["components"] == {"correct": 1.0, "digits_only": 1.0, "reply_length": len(answer)}
    assert grades[0]["details"]["weights"] == {"correct": 1.0, "digits_only": 0.2}


@needs_v1
def test_the_example_config_rows_are_the_environments_own_tasks():
    from rft.graders.verifiers_envs import environment_rows

    committed = [json.loads(line) for line in (ROOT / "configs/verifiers/train.jsonl").read_text().splitlines()]
    assert committed == environment_rows(ARITH)


V1_ENV = """
    import asyncio, socket
    import verifiers.v1 as vf

    class Data(vf.TaskData):
        answer: str

    class MyTask(vf.Task[Data]):
        @vf.reward(weight=1.0)
        async def correct(self, trace) -> float:
            return float(trace.last_reply == self.data.answer)

        {extra}

    class MyTaskset(vf.Taskset[MyTask, vf.TasksetConfig]):
        def load(self):
            yield MyTask(Data(prompt="1+1=", answer="2"), self.config.task)

    __all__ = ["MyTaskset"]
"""


def _v1(tmp_path, extra: str = "", **spec) -> object:
    env = _env_file(tmp_path, V1_ENV.replace("{extra}", textwrap.indent(textwrap.dedent(extra), " " * 8).strip()))
    return build({"type": "verifiers", "environment": env, **spec})


@needs_v1
@pytest.mark.parametrize("weight, refused", [(0.5, True), (0, False)])
def test_a_v1_reward_that_needs_a_runtime_is_refused_unless_it_is_a_metric(tmp_path, weight, refused):
    extra = f"""
        @vf.reward(weight={weight})
        async def tests_pass(self, trace, runtime) -> float:
            return 1.0
    """
    if refused:
        with pytest.raises(SpecError, match="reward 'tests_pass' of MyTask needs a runtime.*set its weight to 0"):
            _v1(tmp_path, extra)
    else:
        grade = _v1(tmp_path, extra)("2", Example("a", "1+1=", {"answer": "2"}))
        assert grade.score == 1.0 and grade.details["not_run"] == ["tests_pass"]


@needs_v1
def test_a_judge_plugged_into_a_v1_task_is_refused(tmp_path):
    with pytest.raises(SpecError, match="has a judge .*'reference'.*without an inference server or API key"):
        _v1(tmp_path, args={"task": {"judges": [{"id": "reference"}]}})


@needs_v1
def test_a_v1_reward_reaching_for_the_network_scores_zero_even_when_it_swallows_the_error(tmp_path):
    extra = """
        @vf.reward(weight=1.0)
        async def judged(self, trace) -> float:
            try:
                socket.create_connection(("127.0.0.1", 9), timeout=1)
            except OSError:
                return 1.0  # a careless reward: the refusal must still show
            return 1.0
    """
    grade = _v1(tmp_path, extra)("2", Example("a", "1+1=", {"answer": "2"}))
    assert (grade.score, grade.details["error"]) == (0.0, "NetworkRefused")
    assert "127.0.0.1" in grade.reason and not passed_of(grade)


@needs_v1
def test_a_v1_reward_past_timeout_s_scores_zero_as_a_timeout(tmp_path):
    extra = """
        @vf.reward(weight=1.0)
        async def slow(self, trace) -> float:
            await asyncio.sleep(5)
            return 1.0
    """
    grade = _v1(tmp_path, extra, timeout_s=0.2)("2", Example("a", "1+1=", {"answer": "2"}))
    assert grade.score == 0.0 and grade.details["timeout"] is True


@needs_v1
def test_a_row_without_the_task_datas_fields_is_skipped_not_scored(tmp_path):
    grade = _v1(tmp_path)("2", Example("a", "1+1=", {"gold": "2"}))
    assert grade.skipped and "answer" in grade.reason and grade.score == 0.0


@needs_v1
def test_bad_taskset_args_name_the_config_fields(tmp_path):
    with pytest.raises(SpecError, match="field 'args'.*rejects them.*num_exampels"):
        build({"type": "verifiers", "environment": ARITH, "args": {"num_exampels": 3}})


@needs_v1
@pytest.mark.model
def test_the_verifiers_example_config_trains_with_grader_workers(tmp_path):
    from rft.grpo.train import train

    cfg = load_config(ROOT / "configs/verifiers.yaml", [
        f"output_dir={tmp_path}", "grpo.steps=2", "grpo.prompts_per_step=2", "sampling.num_generations=2",
        "eval.every=2", "eval.size=4", "eval.samples=0", "eval.capability=false", "data.val_size=4",
        "report_to=[]", "threads=1", f"grader.environment={ARITH}"])
    result = train(cfg, console=Console(quiet=True))
    records = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if r.get("type") == "train"]
    assert len(steps) == 2 and cfg.grading.workers >= 1
    assert {"grader/verifiers/correct", "grader/verifiers/digits_only", "grader/verifiers/errors"} <= set(steps[-1])
    assert steps[-1]["grader/verifiers/errors"] == 0


# -- the Environment API: load_environment() -> env.rubric --------------------------------------------

LEGACY_ENV = """
    class Parser:
        def parse_answer(self, completion):
            text = completion[-1]["content"] if isinstance(completion, list) else completion
            return text.strip().split()[-1] if text.strip() else None

    class Rubric:
        def __init__(self, funcs=None, weights=None, parser=None):
            self.funcs, self.weights = list(funcs or []), list(weights or [1.0] * len(funcs or []))
            self.parser = parser or Parser()
            self.class_objects = {"parser": self.parser}

    class RubricGroup(Rubric):
        def __init__(self, rubrics):
            super().__init__()
            self.rubrics = rubrics

    class JudgeClient:  # what JudgeRubric hands out: an AsyncOpenAI-like client
        pass

    class JudgeRubric(Rubric):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.class_objects = {"parser": self.parser, "judge_client": JudgeClient(), "judge": self.judge}

        async def judge(self, prompt, completion, answer, state=None):
            raise AssertionError("never called offline")

    class SingleTurnEnv:
        def __init__(self, rubric, message_type="chat"):
            self.rubric, self.message_type = rubric, message_type

    class SandboxEnv(SingleTurnEnv):
        pass

    def correct_answer(parser, completion, answer) -> float:
        return float(parser.parse_answer(completion) == answer)

    async def uses_everything(completion, answer, state, info, task, **kwargs) -> float:
        assert completion == [{"role": "assistant", "content": "so 4"}] == state["completion"]
        assert kwargs["prompt"][-1] == {"role": "user", "content": "2+2?"} and kwargs["source"] == "unit"
        assert (info, task) == ({"level": 1}, "math")
        return {"score": 0.5, "feedback": "half marks"}

    def judged(prompt, completion, answer, judge, **kwargs) -> float:
        return 1.0

    def group_reward(completions, answers) -> list:
        return [1.0] * len(completions)

    def broken(completion) -> float:
        return 1 / 0

    def load_environment(kind="plain", judge_weight=0.0):
        if kind == "plain":
            return SingleTurnEnv(RubricGroup([Rubric([correct_answer, uses_everything], [1.0, 0.2]),
                                              JudgeRubric(funcs=[judged], weights=[judge_weight])]))
        if kind == "group":
            return SingleTurnEnv(Rubric([correct_answer, group_reward], [1.0, 1.0]))
        if kind == "sandbox":
            return SandboxEnv(Rubric([correct_answer]))
        if kind == "completion":
            return SingleTurnEnv(Rubric([correct_answer]), message_type="completion")
        return SingleTurnEnv(Rubric([correct_answer, broken], [1.0, 1.0]))
"""
ROW = {"prompt": [{"role": "system", "content": "add"}, {"role": "user", "content": "2+2?"}], "answer": "4",
       "info": {"level": 1}, "task": "math", "source": "unit"}


def _legacy(tmp_path, **args):
    return build({"type": "verifiers", "environment": _env_file(tmp_path, LEGACY_ENV, "legacy_env"), "args": args})


def test_environment_rewards_are_called_as_verifiers_calls_them_and_combined_by_weight(tmp_path):
    grade = _legacy(tmp_path)("so 4", example_from_row(ROW, "row"))
    # 1.0 x correct_answer 1 + 0.2 x uses_everything 0.5; judged (weight 0) is a metric that cannot run offline
    assert grade.score == pytest.approx(1.1) and grade.passed is None
    assert grade.details["components"] == {"correct_answer": 1.0, "uses_everything": 0.5}
    assert grade.details["feedback"] == {"uses_everything": "half marks"}
    assert grade.details["not_run"] == ["judged"]


def test_a_completion_environment_gets_text_not_messages(tmp_path):
    grader = _legacy(tmp_path, kind="completion")
    ex = example_from_row({"prompt": "2+2=", "answer": "4"}, "row")
    assert (grader("4", ex).score, grader("5", ex).score) == (1.0, 0.0)


@pytest.mark.parametrize("args, message", [
    ({"judge_weight": 0.5}, "reward 'judged' .* is handed a judge model \\(judge, judge_client\\).*without an inference server"),
    ({"kind": "group"}, "reward 'group_reward' .* is a group reward function"),
    ({"kind": "sandbox"}, "is a SandboxEnv: its rewards run code in a remote sandbox"),
    ({"typo": 1}, "load_environment\\(\\) rejected them"),
])
def test_rewards_that_cannot_run_offline_are_refused_by_name(tmp_path, args, message):
    with pytest.raises(SpecError, match=message):
        _legacy(tmp_path, **args)


def test_a_reward_that_raises_scores_zero_naming_the_reward(tmp_path):
    grade = _legacy(tmp_path, kind="broken")("4", example_from_row({"prompt": "2+2?", "answer": "4"}, "row"))
    assert grade.score == 0.0 and grade.details["error"] == "RewardError"
    assert "reward 'broken' raised ZeroDivisionError" in grade.reason


@pytest.mark.parametrize("spec, message", [
    ({"type": "verifiers"}, "missing field 'environment'"),
    ({"type": "verifiers", "environment": "no/such/env.py"}, "no such file"),
    ({"type": "verifiers", "environment": "rft_no_such_environment_pkg"}, "cannot import"),
    ({"type": "verifiers", "environment": "json"}, "defines neither load_environment"),
    ({"type": "verifiers", "environment": "json", "weights": {}}, "unknown field"),
])
def test_spec_errors_name_the_field_and_the_fix(spec, message):
    with pytest.raises(SpecError, match=message):
        build(spec)


LEGACY_REAL = """
    import verifiers as vf
    from datasets import Dataset

    def correct(parser, completion, answer, **kwargs) -> float:
        return float((parser.parse_answer(completion) or "").strip() == answer)

    def load_environment(**kwargs):
        parser = vf.XMLParser(["answer"], answer_field="answer")
        rubric = vf.Rubric(funcs=[correct, parser.get_format_reward_func()], weights=[1.0, 0.2], parser=parser)
        dataset = Dataset.from_list([{"question": "2+2?", "answer": "4"}, {"question": "3+3?", "answer": "6"}])
        return vf.SingleTurnEnv(dataset=dataset, system_prompt="Answer in <answer> tags.", parser=parser,
                                rubric=rubric, **kwargs)
"""


@pytest.mark.skipif(subprocess.run([sys.executable, "-c", "import verifiers; verifiers.SingleTurnEnv"],
                                   capture_output=True).returncode, reason="the Environment API needs verifiers < 0.4")
def test_the_real_environment_api_classes(tmp_path):
    from rft.graders.verifiers_envs import environment_rows

    env = _env_file(tmp_path, LEGACY_REAL, "legacy_real")
    rows = environment_rows(env)
    assert rows[0]["prompt"][0] == {"role": "system", "content": "Answer in <answer> tags."}
    grader = build({"type": "verifiers", "environment": env})
    ex = example_from_row(rows[0], "row")
    assert grader("<answer>4</answer>", ex).score == pytest.approx(1.2)
    assert grader("<answer>5</answer>", ex).score == pytest.approx(0.2)
