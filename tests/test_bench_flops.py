"""The FLOP count of bench/rft_vs_trl_smollm2.py, against numbers worked out by hand."""

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "rft_vs_trl_smollm2.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("rft_vs_trl_smollm2", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


# hidden 4, 2 layers, 2 query heads of 2, 1 KV head, MLP 8, vocabulary 10
TOY = {"hidden_size": 4, "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
       "intermediate_size": 8, "vocab_size": 10}


def test_weights_per_layer_follow_the_llama_linears(bench):
    arch = bench.Arch.from_config(TOY)
    # q 4x4, k 4x2, v 4x2, o 4x4, gate 4x8, up 4x8, down 8x4 = 144 per layer
    assert arch.body_weights == 2 * 144
    assert arch.head_weights == 40
    # rank 1: r (in + out) per linear = 8 + 6 + 6 + 8 + 12 + 12 + 12 = 64 per layer
    assert arch.lora_weights(1) == 2 * 64


def test_smollm2_linears_plus_norms_are_its_parameter_count(bench):
    cfg = {"hidden_size": 576, "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3,
           "head_dim": 64, "intermediate_size": 1536, "vocab_size": 49152}
    arch = bench.Arch.from_config(cfg)
    norms = 576 * (2 * 30 + 1)
    assert arch.body_weights + arch.head_weights + norms == 134_515_008  # rft_model.json's n_params


def test_a_prompt_is_computed_once_per_group_and_the_last_token_is_never_fed(bench):
    # one prompt of 3 tokens, a group of two completions of 2 and 1 tokens
    prefill, decode = bench.rollout_work([3], [2, 1])
    assert prefill == bench.Work(body_tokens=3, head_tokens=1, attn_pairs=1 + 2 + 3)
    assert decode == bench.Work(body_tokens=1, head_tokens=1, attn_pairs=4)  # token 0 at position 3 sees 4
    # scoring: the prompt once, the fed-back token once; the output layer on the 3 positions that predict
    assert bench.scoring_work([3], [2, 1]) == bench.Work(body_tokens=4, head_tokens=3, attn_pairs=10)


def test_forward_flops_by_hand(bench):
    arch = bench.Arch.from_config(TOY)
    fl = bench.forward_flops(arch, bench.Work(4, 3, 10), lora_r=1)
    assert fl == {"body": 2 * 288 * 4, "head": 2 * 40 * 3, "attn": 4 * 2 * 2 * 2 * 10, "lora": 2 * 128 * 4}
    assert bench.forward_flops(arch, bench.Work(4, 3, 10))["lora"] == 0.0


def test_backward_is_twice_the_forward_for_full_fine_tuning_once_for_a_frozen_base(bench):
    fwd = {"body": 10.0, "head": 4.0, "attn": 1.0, "lora": 2.0}
    assert bench.backward_flops(fwd, train_base=True) == {"body": 20.0, "head": 8.0, "attn": 2.0, "lora": 4.0}
    assert bench.backward_flops(fwd, train_base=False) == {"body": 10.0, "head": 4.0, "attn": 2.0, "lora": 4.0}


def test_the_reference_has_no_adapters_and_the_rollout_splits_prefill_from_decode(bench):
    arch = bench.Arch.from_config(TOY)
    fl = bench.step_flops(arch, [3], [2, 1], lora_r=1, train_base=False)
    assert fl["reference"]["lora@train"] == 0.0
    assert fl["policy_forward"]["lora@train"] == 2 * 128 * 4
    assert fl["rollout"]["body@train"] == 2 * 288 * 3 and fl["rollout"]["body@decode"] == 2 * 288 * 1
    assert fl["backward"]["body@train"] == fl["policy_forward"]["body@train"]


def test_limit_charges_each_component_at_its_shape_and_dtype(bench):
    peaks = {"float32": {"body@train": 10.0, "head@train": 5.0, "lora@train": 1.0},
             "bfloat16": {"body@train": 40.0, "head@train": 20.0, "lora@train": 2.0}}
    flops = {"body@train": 80.0, "head@train": 40.0, "attn@train": 40.0, "lora@train": 2.0}
    dtypes = {"body": "bfloat16", "head": "bfloat16", "attn": "bfloat16", "lora": "float32"}
    # 80/40 + 40/20 + 40/40 (attention at the body's rate) + 2/1
    assert bench.limit_s(flops, peaks, dtypes) == pytest.approx(2 + 2 + 1 + 2)
    # at the fastest bf16 shape (40) and fp32 shape (10): 160/40 + 2/10
    assert bench.limit_s(flops, peaks, dtypes, best=True) == pytest.approx(4 + 0.2)
