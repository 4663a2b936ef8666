"""LoRA through peft: only the adapter trains, the KL reference is the base with the adapter off,
checkpoints hold the adapter, and a resumed LoRA run equals the straight one."""

import importlib.util
import json

import pytest
import torch
from safetensors.torch import load_file

pytest.importorskip("peft")

from rft.commands.export import export  # noqa: E402
from rft.config import ConfigError, config_from_dict  # noqa: E402
from rft.console import Console  # noqa: E402
from rft.grpo.train import train  # noqa: E402
from rft.models.load import load_model, load_policy  # noqa: E402
from rft.models.lora import is_lora, reference_scoring  # noqa: E402
from rft.training.sft import sft  # noqa: E402

pytestmark = pytest.mark.model  # samples or trains: CI reruns it under other CPU kernels

QUIET = Console(quiet=True)
LORA = {"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj", "up_proj"]}


def _cfg(tmp_path, model_dir, steps=4, **grpo):
    return config_from_dict({
        "name": "lora", "output_dir": str(tmp_path), "seed": 0, "threads": 2, "report_to": [],
        "model": {"path": str(model_dir), "lora": LORA},
        "data": {"task": {"digits": 1, "val_size": 8}},
        # a reward random completions sometimes earn (a digit anywhere), so the untrained model gets signal
        "grader": {"type": "regex", "pattern": "[0-9]", "mode": "search"},
        "sampling": {"num_generations": 4, "max_new_tokens": 3, "temperature": 1.3},
        "grpo": {"steps": steps, "prompts_per_step": 4, "lr": 5e-3, "beta": 0.1, **grpo},
        "eval": {"every": 2}, "checkpoint": {"every": 2, "keep_last": 1},
    })


def _logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_only_the_adapter_trains_and_the_reference_is_the_base(tiny_model_dir, tmp_path):
    cfg = _cfg(tmp_path, tiny_model_dir)
    model, _, base_path = load_policy(cfg.model)
    assert is_lora(model) and base_path == str(tiny_model_dir)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert sum(p.numel() for n, p in model.named_parameters() if n in trainable) < 0.1 * sum(
        p.numel() for p in model.parameters())
    with torch.no_grad():  # a trained adapter: B != 0, so policy and base differ
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.5)
    ids = torch.tensor([[2, 10, 5, 11, 14]])
    base = _logits(load_model(tiny_model_dir), ids)
    assert not torch.allclose(_logits(model, ids), base, atol=1e-4)
    with reference_scoring(model):
        assert torch.allclose(_logits(model, ids), base, atol=1e-5)
    assert not torch.allclose(_logits(model, ids), base, atol=1e-4), "the adapter is back on after the context"


def test_grpo_with_lora_checkpoints_the_adapter_and_leaves_the_base_alone(tiny_model_dir, tmp_path):
    result = train(_cfg(tmp_path, tiny_model_dir, steps=2), console=QUIET)
    ckpt = result.run_dir / "checkpoints" / "step_000002"
    assert (ckpt / "adapter_model.safetensors").is_file() and not (ckpt / "model.safetensors").exists()
    assert (ckpt / "optimizer.pt").is_file() and (ckpt / "tokenizer.json").is_file()
    adapter = load_file(ckpt / "adapter_model.safetensors")
    assert adapter and all("lora_" in k for k in adapter)
    assert any(k.endswith("lora_B.weight") and v.abs().max() > 0 for k, v in adapter.items()), "B left zero"
    rows = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    kl = [r["kl"] for r in rows if r["type"] == "train"]
    # step 1 scores the untouched adapter (B = 0): policy == base, KL exactly 0; after an update it is not
    assert kl[0] == pytest.approx(0.0, abs=1e-7) and kl[1] > 0
    opt = torch.load(ckpt / "optimizer.pt", weights_only=False)
    assert sum(len(g["params"]) for g in opt["param_groups"]) == len(adapter)  # adapter params only
    base_before = load_file(tiny_model_dir / "model.safetensors")
    model, _, _ = load_policy(_cfg(tmp_path, tiny_model_dir).model, str(ckpt))
    merged_free = {k.replace("base_model.model.", "").replace(".base_layer", ""): v
                   for k, v in model.state_dict().items() if "lora_" not in k}
    assert set(base_before) <= set(merged_free)
    assert all(torch.equal(merged_free[k], base_before[k]) for k in base_before)


def test_lora_resume_continues_exactly_like_the_straight_run(tiny_model_dir, tmp_path):
    straight = train(_cfg(tmp_path / "a", tiny_model_dir, steps=4), console=QUIET)
    half = _cfg(tmp_path / "b", tiny_model_dir, steps=4)
    first = train(half.model_copy(update={"grpo": half.grpo.model_copy(update={"steps": 2})}), console=QUIET)
    (first.run_dir / "config.yaml").write_text(half.to_yaml())
    resumed = train(half, resume=first.run_dir, console=QUIET)
    assert resumed.steps == 4

    def metrics(run_dir):
        drop = ("time/", "step_s", "completion_tokens_per_s", "grader/")
        return [{k: v for k, v in json.loads(line).items() if not k.startswith(drop)}
                for line in (run_dir / "metrics.jsonl").read_text().splitlines()]

    assert metrics(straight.run_dir) == metrics(resumed.run_dir)
    a = load_file(straight.run_dir / "checkpoints" / "step_000004" / "adapter_model.safetensors")
    b = load_file(resumed.run_dir / "checkpoints" / "step_000004" / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_sft_with_lora_writes_merged_weights_that_train_loads(tiny_model_dir, tmp_path):
    cfg = _cfg(tmp_path, tiny_model_dir).model_copy(update={
        "sft": config_from_dict({"sft": {"steps": 3, "batch_size": 8, "warmup_steps": 0, "eval_every": 3}}).sft})
    res = sft(cfg, console=QUIET)
    assert (res.model_dir / "model.safetensors").is_file() and not (res.model_dir / "adapter_config.json").exists()
    merged = load_file(res.model_dir / "model.safetensors")
    base = load_file(tiny_model_dir / "model.safetensors")
    assert merged.keys() == base.keys()
    q, k = "model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.k_proj.weight"
    assert not torch.equal(merged[q], base[q]) and torch.equal(merged[k], base[k])  # k_proj had no adapter
    # an SFT run directory (no checkpoints/) exports its model/
    exported = export(res.run_dir, tmp_path / "exported")
    assert exported.kind == "full" and exported.step is None
    again = load_file(tmp_path / "exported" / "model.safetensors")
    assert again.keys() == merged.keys() and all(torch.equal(again[k], merged[k]) for k in merged)


def test_bf16_base_trains_bf16_adapters_on_float32_masters(tiny_model_dir, tmp_path):
    """Adapters over a bf16 base compute in bf16 (no float32 casts of every activation); their float32
    masters live in the optimizer and travel in the checkpoint, so the small updates are not rounded away."""
    cfg = _cfg(tmp_path, tiny_model_dir, steps=2)
    cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"dtype": "bfloat16"})})
    model, _, _ = load_policy(cfg.model)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    result = train(cfg, console=QUIET)
    rows = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["type"] == "train"] == [1, 2]
    ckpt = result.run_dir / "checkpoints" / "step_000002"
    adapter = load_file(ckpt / "adapter_model.safetensors")
    assert any(k.endswith("lora_B.weight") and v.abs().max() > 0 for k, v in adapter.items())
    masters = torch.load(ckpt / "optimizer.pt", weights_only=False)["master_weights"]
    assert masters and all(m.dtype == torch.float32 for m in masters)
    assert sum(int(m.ne(0).sum()) for m in masters) > 0


def test_lora_without_peft_is_a_config_error_naming_the_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "peft" else real(name, *a))
    with pytest.raises(ConfigError, match=r"model.lora: .*pip install 'rft\[lora\]'"):
        config_from_dict({"model": {"lora": {"r": 8}}})


def test_target_modules_matching_nothing_is_a_config_error(tiny_model_dir, tmp_path):
    cfg = config_from_dict({"model": {"path": str(tiny_model_dir), "lora": {"target_modules": ["c_attn"]}}})
    with pytest.raises(ConfigError, match="model.lora.target_modules"):
        load_policy(cfg.model)
