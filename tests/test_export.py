"""`rft export`: the exported directory loads with transformers and gives the trained policy's logits."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from rft.cli import main
from rft.commands.export import export
from rft.config import config_from_dict, load_config
from rft.console import Console
from rft.grpo.train import train
from rft.models.load import load_policy

pytestmark = pytest.mark.model  # samples or trains: CI reruns it under other CPU kernels

QUIET = Console(quiet=True)
IDS = torch.tensor([[2, 10, 5, 11, 14, 6], [2, 12, 5, 13, 14, 7]])


def _run(tmp_path, model_dir, lora):
    cfg = config_from_dict({
        "name": "lora" if lora else "full", "output_dir": str(tmp_path), "seed": 0, "threads": 2, "report_to": [],
        "model": {"path": str(model_dir), "lora": lora},
        "data": {"task": {"digits": 1, "val_size": 8}},
        # a reward random completions sometimes earn (a digit anywhere), so the untrained model gets signal
        "grader": {"type": "regex", "pattern": "[0-9]", "mode": "search"},
        "sampling": {"num_generations": 4, "max_new_tokens": 3, "temperature": 1.3},
        "grpo": {"steps": 2, "prompts_per_step": 4, "lr": 2e-2},
        "eval": {"every": 1}, "checkpoint": {"every": 1, "keep_last": 2},
    })
    return train(cfg, console=QUIET).run_dir


def _policy_logits(run_dir, checkpoint="step_000002"):
    cfg = load_config(run_dir / "config.yaml")
    model, _, _ = load_policy(cfg.model, str(run_dir / "checkpoints" / checkpoint))
    with torch.no_grad():
        return model(input_ids=IDS).logits


def _loaded_logits(out):
    model = AutoModelForCausalLM.from_pretrained(str(out))
    model.eval()
    with torch.no_grad():
        return model(input_ids=IDS).logits


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, tiny_model_dir):
    return _run(tmp_path_factory.mktemp("full"), tiny_model_dir, None)


def test_full_finetuning_export_matches_the_policy(full_run, tmp_path):
    assert main(["export", str(full_run), "--out", str(tmp_path / "out")]) == 0
    assert torch.equal(_loaded_logits(tmp_path / "out"), _policy_logits(full_run))
    assert AutoTokenizer.from_pretrained(str(tmp_path / "out"))("1+2=")["input_ids"][0] == 2  # <bos>
    assert not (tmp_path / "out" / "optimizer.pt").exists()
    meta = json.loads((tmp_path / "out" / "rft_export.json").read_text())
    assert meta == {"run": str(full_run.resolve()), "checkpoint": "step_000002", "step": 2, "kind": "full"}


def test_export_picks_the_named_checkpoint(full_run, tmp_path):
    export(full_run, tmp_path / "s1", checkpoint="step_1")
    assert torch.equal(_loaded_logits(tmp_path / "s1"), _policy_logits(full_run, "step_000001"))
    assert not torch.equal(_loaded_logits(tmp_path / "s1"), _policy_logits(full_run))


def test_export_errors_name_the_fix(full_run, tmp_path, capsys):
    assert main(["export", str(full_run), "--out", str(tmp_path / "o"), "--checkpoint", "step_9"]) == 2
    assert "step_000009: no such checkpoint; this run has" in capsys.readouterr().err
    assert main(["export", str(full_run), "--out", str(tmp_path / "o"), "--checkpoint", "final"]) == 2
    assert "expected best, latest or step_N" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() and not list(tmp_path.glob("o.tmp-*")), "a failed export leaves nothing"
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    assert main(["export", str(full_run), "--out", str(tmp_path / "busy")]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_lora_export_adapter_and_merged_both_match_the_policy(tmp_path, tiny_model_dir):
    pytest.importorskip("peft")
    run_dir = _run(tmp_path / "run", tiny_model_dir, {"r": 4, "alpha": 8, "target_modules": "all-linear"})
    policy = _policy_logits(run_dir)

    export(run_dir, tmp_path / "adapter")
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    assert not (tmp_path / "adapter" / "model.safetensors").exists()
    # transformers' peft integration loads base (from base_model_name_or_path) + adapter
    assert torch.allclose(_loaded_logits(tmp_path / "adapter"), policy, atol=1e-5)

    assert main(["export", str(run_dir), "--out", str(tmp_path / "merged"), "--merged"]) == 0
    assert not (tmp_path / "merged" / "adapter_config.json").exists()
    merged = _loaded_logits(tmp_path / "merged")
    assert torch.allclose(merged, policy, atol=1e-4)
    base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    with torch.no_grad():
        assert not torch.allclose(base(input_ids=IDS).logits, policy, atol=1e-3), "the adapter should matter"
