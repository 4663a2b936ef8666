"""rft doctor: verdicts per line, exit status, doctor.json alone in the run directory."""

import itertools
import json
import tempfile
from pathlib import Path

import pytest
import yaml

from rft.cli import main
from rft.commands.doctor import (
    PROBE_MAX_STEPS,
    PROBE_STEPS,
    baseline_verdict,
    check_grader,
    probe_done,
    probe_step,
)
from rft.data import Example
from rft.graders.base import Grade


def _sampled(pass_at_k, rate, mean, best, zero_std, k=8):
    return {f"pass@{k}": pass_at_k, "pass@1": rate, "mean_reward": mean, "max_reward": best,
            "frac_zero_std_groups": zero_std}


BASELINES = [
    # id, sampled (pass@8, pass rate, mean reward, best score, zero-variance share), verdict, words in the advice
    ("never_right_all_zero", _sampled(0.0, 0.0, 0.0, 0.0, 1.0), "block", "warm up with SFT first (`rft sft`)"),
    ("only_penalties_vary", _sampled(0.0, 0.0, -0.2, 0.0, 0.5), "block", "nothing to amplify"),
    ("few_right", _sampled(0.3, 0.05, 0.05, 1.0, 0.7), "warn", "hard"),
    ("little_partial_credit_no_pass", _sampled(0.0, 0.0, 0.04, 0.3, 0.6), "warn", "partial credit is all"),
    ("sweet_spot", _sampled(0.6, 0.20, 0.20, 1.0, 0.4), "ok", "sweet spot"),
    ("partial_credit_sweet_spot_no_pass", _sampled(0.0, 0.0, 0.25, 0.8, 0.1), "ok", "sweet spot"),
    ("learnable", _sampled(0.9, 0.50, 0.50, 1.0, 0.3), "ok", "learnable"),
    ("mostly_solved", _sampled(1.0, 0.95, 0.95, 1.0, 0.9), "warn", "little to gain"),
    # a grader without a verdict that pays 0.99 everywhere: no pass, no variance, nothing left to earn
    ("all_0.99_without_a_pass", _sampled(0.0, 0.0, 0.99, 0.99, 1.0), "warn", "little to gain"),
    ("every_group_scores_alike", _sampled(0.5, 0.5, 0.5, 1.0, 1.0), "warn", "no signal"),
]


@pytest.mark.parametrize("sampled, verdict, words", [c[1:] for c in BASELINES], ids=[c[0] for c in BASELINES])
def test_baseline_verdict_on_constructed_baselines(sampled, verdict, words):
    got, advice = baseline_verdict(sampled, k=8)
    assert got == verdict and words in advice


class _FlakyPool:
    """Scores 0.0, 0.1, 0.2, ... in call order: the same completion never gets the same reward twice."""

    def __init__(self):
        self.n = itertools.count()

    def grade(self, texts, examples):
        return [Grade(0.1 * next(self.n)) for _ in texts]

    def pop_stats(self):
        return {}


def test_a_grader_that_scores_the_same_completion_differently_is_flagged():
    ex = Example("a", "1+1=", {"answer": "2"})
    rows = [{"completion": "2", "score": 1.0}]
    check = check_grader(None, _FlakyPool(), rows, [ex])
    assert check.verdict == "warn" and check.values["differing"] == 2  # the greedy answer and the reference


PROBES = [
    # id, step_s of the probe's steps so far, done
    ("two_steps_are_never_enough", [30.0, 30.0], False),
    ("slow_steps_stop_at_three", [12.0, 9.0, 9.5], True),
    ("under_the_budget_after_three", [2.0, 2.0, 2.0], False),
    ("timed_steps_reach_the_budget", [2.0] + [2.0] * 5, True),  # steps 2-6: 10 s; step 1 is not counted
    ("fast_steps_run_to_the_most", [0.07] * PROBE_MAX_STEPS, True),
    ("fast_steps_one_short_of_the_most", [0.07] * (PROBE_MAX_STEPS - 1), False),
]


@pytest.mark.parametrize("step_s, done", [c[1:] for c in PROBES], ids=[c[0] for c in PROBES])
def test_the_probe_steps_until_its_budget_or_its_most_steps_never_fewer_than_three(step_s, done):
    assert probe_done(step_s) is done


STEPS = [
    # id, step_s of steps 1.., the step_s that stands for every step
    ("one_step_is_its_own", [0.5], 0.5),
    ("of_two_timed_the_faster", [0.30, 0.09, 0.07], 0.07),
    ("a_garbage_collection_is_ignored", [0.09, 0.07, 0.27, 0.07, 0.08], 0.07),
    ("odd_count_the_median", [0.30, 0.07, 0.09, 0.08], 0.08),
    ("warm_up_step_1_never_counts", [0.01, 0.07, 0.08, 0.09], 0.08),
]


@pytest.mark.parametrize("step_s, expected", [c[1:] for c in STEPS], ids=[c[0] for c in STEPS])
def test_the_probe_takes_the_lower_median_of_steps_two_on(step_s, expected):
    assert probe_step([{"step": i + 1, "step_s": t} for i, t in enumerate(step_s)])["step_s"] == expected


def _write_cfg(tmp_path, model_dir, **over):
    cfg = {"name": "doc", "output_dir": str(tmp_path / "runs"), "threads": 2, "model": {"path": str(model_dir)},
           "data": {"task": {"digits": 1, "val_size": 8}},
           "sampling": {"num_generations": 2, "max_new_tokens": 3}, "grpo": {"steps": 10, "prompts_per_step": 2},
           **over}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path, tmp_path / "runs" / "doc"


def test_untrained_model_blocks_with_nothing_to_amplify_and_leaves_only_doctor_json(tmp_path, tiny_model_dir):
    cfg, run_dir = _write_cfg(tmp_path, tiny_model_dir, model={"path": str(tiny_model_dir), "price_per_hour": 3.0})
    before = set(Path(tempfile.gettempdir()).glob("rft-doctor-*"))
    assert main(["doctor", str(cfg), "--n", "4", "--quiet"]) == 1
    assert [p.name for p in run_dir.iterdir()] == ["doctor.json"]
    report = json.loads((run_dir / "doctor.json").read_text())
    verdicts = {c["name"]: c["verdict"] for c in report["checks"]}
    assert report["verdict"] == "block"
    assert verdicts == {"data": "ok", "memory": "ok", "load": "ok", "grader": "ok", "baseline": "block", "cost": "ok"}
    cost = next(c for c in report["checks"] if c["name"] == "cost")["values"]
    # this config's steps take milliseconds: the probe runs more than its fewest steps
    assert PROBE_STEPS < len(cost["step_s"]) <= PROBE_MAX_STEPS
    assert cost["estimated_total_s"] > 0 and cost["peak_rss_gib"] > 0
    assert cost["completion_tokens_per_step"] > 0
    assert all(cost[f"{p}_s"] >= 0 for p in ("rollout", "ref_logprobs", "update")) and cost["update_s"] > 0
    assert cost["estimated_cost"] == pytest.approx(cost["estimated_total_s"] / 3600 * 3.0)
    memory = next(c for c in report["checks"] if c["name"] == "memory")["values"]
    assert 0 < memory["weights_gib"] < memory["peak_gib"] < memory["available_gib"]
    assert set(Path(tempfile.gettempdir()).glob("rft-doctor-*")) == before, "the trial run must be deleted"


def test_a_bad_dataset_line_blocks_and_names_the_line(tmp_path, tiny_model_dir):
    data = tmp_path / "d.jsonl"
    data.write_text('{"prompt": "1+1=", "answer": "2"}\n{not json\n')
    cfg, run_dir = _write_cfg(tmp_path, tiny_model_dir, data={"train_file": str(data), "val_size": 1},
                              grader={"type": "arithmetic", "answer_field": "answer"})
    assert main(["doctor", str(cfg), "--quiet"]) == 1
    report = json.loads((run_dir / "doctor.json").read_text())
    data_check = report["checks"][0]
    assert data_check["verdict"] == "block" and "d.jsonl:2" in data_check["advice"]
    assert all(c["verdict"] == "skip" for c in report["checks"][1:])



def _python_grader(value):
    """OpenAI's python grader shape without pass_threshold: a score for every sample, no verdict."""
    return {"type": "python", "source": f"def grade(sample, item):\n    return {value}"}


@pytest.mark.parametrize("value, exit_status, verdict, words", [
    (0.99, 0, "warn", "little to gain"),  # was: block, "nothing to amplify: warm up with SFT"
    (0.0, 1, "block", "nothing to amplify"),
], ids=["pays_0.99_everywhere", "pays_0_everywhere"])
def test_baseline_of_a_grader_without_a_verdict_is_judged_on_its_scores(tmp_path, tiny_model_dir, value, exit_status,
                                                                       verdict, words):
    cfg, run_dir = _write_cfg(tmp_path, tiny_model_dir, grader=_python_grader(value))
    assert main(["doctor", str(cfg), "--n", "4", "--quiet"]) == exit_status
    baseline = next(c for c in json.loads((run_dir / "doctor.json").read_text())["checks"] if c["name"] == "baseline")
    assert baseline["verdict"] == verdict and words in baseline["advice"]
    assert baseline["values"]["mean_reward"] == pytest.approx(value) and baseline["values"]["pass@1"] == 0.0


def test_doctor_suggests_a_free_text_mode_when_the_math_grader_reads_no_answer():
    """An instruct model answering in sentences: extract: boxed reads nothing in most samples, and
    the advice names auto / last_number; with last_number the same answers are read, no advice."""
    from rft.commands.doctor import extraction_advice
    from rft.data import Example
    from rft.graders.registry import build

    examples = [Example(id=str(i), prompt=f"What is {i} + 1?", fields={"answer": str(i + 1)}) for i in range(4)]
    texts = [f"{i} + 1 = {i + 1}, so the answer is {i + 1}." for i in range(3)] + ["The answer is \\boxed{4}."]
    for mode, advised in (("boxed", True), ("last_number", False)):
        spec = {"type": "math", "extract": mode}
        grader = build(spec)
        share, advice = extraction_advice(spec, examples, [grader(t, e) for t, e in zip(texts, examples)])
        assert share == (0.75 if mode == "boxed" else 0.0)
        assert ("extract: auto" in advice and "last_number" in advice) == advised
    assert extraction_advice({"type": "arithmetic"}, examples, [build({"type": "arithmetic"})(t, e)
                                                                for t, e in zip(texts, examples)]) == (0.0, "")
