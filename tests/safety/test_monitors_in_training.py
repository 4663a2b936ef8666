"""The monitors inside the GRPO loop: alerts land in metrics.jsonl, and stop_on ends the run validated
and checkpointed."""

import json

from rft.config import config_from_dict
from rft.console import Console
from rft.grpo.train import train


def _cfg(tmp_path, model_dir, **monitors):
    # The untrained tiny model never writes a right sum: every group has zero reward variance.
    return config_from_dict({
        "name": "mon", "output_dir": str(tmp_path), "seed": 0, "threads": 2, "model": {"path": str(model_dir)},
        "data": {"task": {"digits": 1, "val_size": 8}},
        "sampling": {"num_generations": 2, "max_new_tokens": 3},
        "grpo": {"steps": 6, "prompts_per_step": 2}, "eval": {"every": 10}, "checkpoint": {"every": 10},
        "monitors": {"zero_signal_steps": 2, **monitors},
    })


def _records(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_stop_on_ends_the_run_validated_and_checkpointed(tmp_path, tiny_model_dir):
    result = train(_cfg(tmp_path, tiny_model_dir, stop_on=["zero_signal"]), console=Console(quiet=True))
    rows = _records(result.run_dir)
    assert result.steps == 2
    alerts = [r for r in rows if r["type"] == "alert"]
    assert [(a["step"], a["monitor"]) for a in alerts] == [(2, "zero_signal")]
    assert [r["step"] for r in rows if r["type"] == "val"] == [0, 2]
    assert (result.run_dir / "checkpoints" / "latest").read_text().strip() == "step_000002"
    assert all("repetition" in r for r in rows if r["type"] == "train")


def test_an_alert_not_in_stop_on_only_logs(tmp_path, tiny_model_dir):
    result = train(_cfg(tmp_path, tiny_model_dir), console=Console(quiet=True))
    assert result.steps == 6
    assert [a["monitor"] for a in _records(result.run_dir) if a["type"] == "alert"] == ["zero_signal"]
