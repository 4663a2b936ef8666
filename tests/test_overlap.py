"""Grading in the pool overlaps the reference forward in the GRPO loop (rft.grpo.train).

Proved by causality, not by timing: the training rows' grader only scores once a marker file exists,
and only the reference log-prob pass creates the marker. If the loop graded first (as it did before
the overlap), every training grade would give up waiting, error and score 0."""

import json

import pytest

import rft.grpo.train as train_module
from rft.config import config_from_dict
from rft.console import Console
from rft.grpo.train import train

GATED = """
import os, time

def grade(sample, item):
    marker = item.get("marker")
    if marker:  # training rows only: validation grades before any reference pass runs
        deadline = time.monotonic() + 2.0
        while not os.path.exists(marker):
            if time.monotonic() > deadline:
                raise RuntimeError("no reference pass started while this grade was in flight")
            time.sleep(0.01)
    return score(sample["output_text"])

def score(text):
    return (sum(map(ord, text)) % 7) / 6
"""


def score(text: str) -> float:
    return (sum(map(ord, text)) % 7) / 6


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_pool_grades_while_the_reference_pass_runs(tmp_path, tiny_model_dir, monkeypatch):
    marker = tmp_path / "reference_pass_started"
    prompts = [f"{a}+{b}=" for a in range(4) for b in range(2)]
    cfg = config_from_dict({
        "name": "overlap", "output_dir": str(tmp_path), "seed": 0, "threads": 2, "model": {"path": str(tiny_model_dir)},
        "data": {"train_file": _write_jsonl(tmp_path / "train.jsonl", [{"prompt": p, "marker": str(marker)} for p in prompts]),
                 "val_file": _write_jsonl(tmp_path / "val.jsonl", [{"prompt": f"{a}-1="} for a in range(2)])},
        "grader": {"type": "python", "source": GATED},
        "grading": {"workers": 2, "timeout_s": 20.0},
        "sampling": {"num_generations": 2, "max_new_tokens": 4, "temperature": 1.0},
        "grpo": {"steps": 1, "prompts_per_step": 2, "beta": 0.04},
        "eval": {"every": 100, "samples": 0, "capability": False}, "monitors": {"enabled": False}, "report_to": [],
    })
    real_batch_logprobs = train_module.batch_logprobs
    calls = []

    def reference_pass(*args, **kwargs):  # the loop calls batch_logprobs itself only for the reference
        calls.append(marker.exists())
        marker.touch()
        return real_batch_logprobs(*args, **kwargs)

    monkeypatch.setattr(train_module, "batch_logprobs", reference_pass)
    run = train(cfg, console=Console(quiet=True)).run_dir

    assert calls == [False], "the reference pass ran once, and nothing else created the marker"
    record = next(json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
                  if json.loads(line)["type"] == "train")
    assert record["grader_errors"] == 0 and record["grader/python/errors"] == 0
    rows = [json.loads(line) for line in (run / "samples" / "step_000001.jsonl").read_text().splitlines()]
    assert len(rows) == 4
    assert [r["score"] for r in rows] == [score(r["completion"]) for r in rows]  # the real scores
    assert any(r["score"] > 0 for r in rows), "all-zero scores would not tell real grades from failed ones"
    assert record["reward_mean"] == pytest.approx(sum(r["score"] for r in rows) / 4)
