"""A grader that pays for length, and a policy that learns the hack: the monitors must notice within
a bounded number of steps (issue 5: the divergence or length monitor fires)."""

import json

import pytest

from rft.config import config_from_dict
from rft.console import Console
from rft.grpo.train import train
from rft.training.sft import sft

pytestmark = pytest.mark.model  # samples or trains: CI reruns it under other CPU kernels

QUIET = Console(quiet=True)
PAYS_FOR_LENGTH = {"type": "python", "source": "def grade(sample, item):\n    return min(len(sample['output_text']), 8) / 8\n"}


def test_a_policy_learning_a_length_hack_trips_the_monitors(tmp_path, tiny_model_dir):
    base = {"output_dir": str(tmp_path), "seed": 0, "threads": 2, "data": {"task": {"digits": 1, "val_size": 8}}}
    # The warm start answers with one or two digits and stops: short completions to start from.
    warm = sft(config_from_dict({**base, "name": "warm", "model": {"path": str(tiny_model_dir)},
                                 "sampling": {"max_new_tokens": 3},
                                 "sft": {"steps": 150, "batch_size": 32, "lr": 2e-3, "warmup_steps": 10,
                                         "eval_every": 150}}), console=QUIET)
    cfg = config_from_dict({
        **base, "name": "hack", "model": {"path": str(warm.model_dir)}, "grader": PAYS_FOR_LENGTH,
        "sampling": {"num_generations": 4, "max_new_tokens": 8, "temperature": 1.3},
        "grpo": {"steps": 40, "prompts_per_step": 8, "lr": 2e-3}, "eval": {"every": 5},
        "checkpoint": {"every": 100}, "report_to": [],
        "monitors": {"window": 3, "stop_on": ["length", "divergence"]},
    })
    result = train(cfg, console=QUIET)
    rows = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    alerts = [r for r in rows if r["type"] == "alert"]
    lengths = [r["completion_len_mean"] for r in rows if r["type"] == "train"]
    assert {a["monitor"] for a in alerts} & {"length", "divergence"}, (lengths, alerts)
    assert result.steps < 40, "stop_on should have ended the run at the first such alert"
    assert lengths[-1] > lengths[0], "the policy should have learnt to write longer"
