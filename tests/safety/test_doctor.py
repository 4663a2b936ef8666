"""rft doctor: verdicts per line, exit status, doctor.json alone in the run directory."""

import itertools
import json
import tempfile
from pathlib import Path

import pytest
import yaml

from rft.cli import main
from rft.data import Example
from rft.graders.base import Grade
from rft.safety.doctor import baseline_verdict, check_grader


@pytest.mark.parametrize("pass_at_k, rate, verdict, words", [
    (0.0, 0.0, "block", "warm up with SFT first (`rft sft`)"),
    (0.3, 0.05, "warn", "hard"),
    (0.6, 0.20, "ok", "sweet spot"),
    (0.9, 0.50, "ok", "learnable"),
    (1.0, 0.95, "warn", "little to gain"),
])
def test_baseline_verdict_on_constructed_baselines(pass_at_k, rate, verdict, words):
    got, advice = baseline_verdict(pass_at_k, rate, k=8)
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


def _write_cfg(tmp_path, model_dir, **over):
    cfg = {"name": "doc", "output_dir": str(tmp_path / "runs"), "threads": 2, "model": {"path": str(model_dir)},
           "data": {"task": {"digits": 1, "val_size": 8}},
           "sampling": {"num_generations": 2, "max_new_tokens": 3}, "grpo": {"steps": 10, "prompts_per_step": 2},
           **over}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path, tmp_path / "runs" / "doc"


def test_untrained_model_blocks_with_nothing_to_amplify_and_leaves_only_doctor_json(tmp_path, tiny_model_dir):
    cfg, run_dir = _write_cfg(tmp_path, tiny_model_dir)
    before = set(Path(tempfile.gettempdir()).glob("rft-doctor-*"))
    assert main(["doctor", str(cfg), "--n", "4", "--quiet"]) == 1
    assert [p.name for p in run_dir.iterdir()] == ["doctor.json"]
    report = json.loads((run_dir / "doctor.json").read_text())
    verdicts = {c["name"]: c["verdict"] for c in report["checks"]}
    assert report["verdict"] == "block"
    assert verdicts == {"data": "ok", "load": "ok", "grader": "ok", "baseline": "block", "cost": "ok"}
    cost = next(c for c in report["checks"] if c["name"] == "cost")["values"]
    assert len(cost["step_s"]) == 2 and cost["estimated_total_s"] > 0 and cost["peak_rss_gib"] > 0
    assert cost["completion_tokens_per_step"] > 0
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

