"""LoRA adapters folded into the written-out decode step (rft.rollout.fast_decode._proj): the decode
loop runs no adapter matmuls, the folded weight is ``W + scaling * B A`` rounded once, the policy's
parameters are untouched by a rollout, and greedy completions equal peft's own forward."""

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from rft.models.compat import cache_kwargs, peft_wrapping
from rft.models.load import load_model
from rft.rollout import SamplingParams, TorchSampler
from rft.rollout.fast_decode import _proj, fast_decoder
from rft.rollout.kv_cache import decode_cache
from rft.rollout.sampler import left_pad

pytestmark = pytest.mark.model

V = 61


def _llama_dir(path):
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=V, hidden_size=48, intermediate_size=80, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                         pad_token_id=0, eos_token_id=1, bos_token_id=2))
    with torch.no_grad():  # larger weights than the default init: logits that differ by a lot per row
        for p in model.parameters():
            p.mul_(4.0) if p.dim() > 1 else p.add_(torch.randn_like(p) * 0.1)
    model.save_pretrained(path)
    return path


def _lora(model):
    """LoRA r=4 on every linear, B off zero so the adapters change the output (as rft.models.lora: adapters
    in the base's dtype)."""
    from peft import LoraConfig, get_peft_model

    with peft_wrapping():
        wrapped = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"),
                                 autocast_adapter_dtype=False).eval()
    with torch.no_grad():
        for name, p in wrapped.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.5)
    return wrapped


class _IdsTokenizer:
    eos_token_id, pad_token_id = 1, 0

    def decode(self, ids, skip_special_tokens=True):
        return " ".join(map(str, ids))


class _CountMatmuls(torch.overrides.TorchFunctionMode):
    NAMES = {"mm", "addmm", "matmul", "linear", "bmm", "__matmul__", "addmm_"}

    def __init__(self):
        super().__init__()
        self.n = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.n += getattr(func, "__name__", "") in self.NAMES
        return func(*args, **(kwargs or {}))


def _step_matmuls(model):
    ids = torch.randint(3, V, (3, 5))
    cache = decode_cache(model, 8)
    with torch.inference_mode():
        model(input_ids=ids, **cache_kwargs(model, cache), use_cache=True)
        step = fast_decoder(model, cache)
        assert step is not None
        with _CountMatmuls() as count:
            step(ids[:, -1], torch.full((3, 1), 5), None)
    return count.n


def test_the_decode_step_of_a_lora_policy_runs_no_adapter_matmuls(tmp_path):
    """As many matmuls per step as the bare base model: the adapters are in the weights, not the loop."""
    path = _llama_dir(tmp_path)
    bare = _step_matmuls(load_model(path))
    assert _step_matmuls(_lora(load_model(path))) == bare


def test_the_folded_weight_is_the_merged_weight_rounded_once(tmp_path):
    """bfloat16 base and adapters: q/k/v's fused weight is bf16(W + scaling * B A) summed in float32,
    bit for bit, and the modules' own weights are left as they were."""
    model = _lora(load_model(_llama_dir(tmp_path)).to(torch.bfloat16))
    attn = model.get_base_model().model.layers[1].self_attn
    mods = (attn.q_proj, attn.k_proj, attn.v_proj)
    before = [m.base_layer.weight.clone() for m in mods]
    folded = _proj(*mods)
    want = torch.cat([m.base_layer.weight.float() + m.scaling["default"]
                      * (m.lora_B["default"].weight.float() @ m.lora_A["default"].weight.float()) for m in mods])
    assert folded.w.dtype == torch.bfloat16
    assert torch.equal(folded.w, want.t().to(torch.bfloat16))
    assert all(torch.equal(m.base_layer.weight, w) for m, w in zip(mods, before))


def test_greedy_completions_with_folded_adapters_equal_peft_forward(tmp_path):
    """Temperature 0, float32: the folded step samples what the peft-wrapped model's own forward samples."""
    model = _lora(load_model(_llama_dir(tmp_path)))
    prompts = [torch.randint(3, V, (n,)).tolist() for n in (3, 6, 2, 5)]
    params = SamplingParams(10, temperature=0.0)
    fast = TorchSampler(model, _IdsTokenizer(), fast=True).generate(prompts, 2, params)
    plain = TorchSampler(model, _IdsTokenizer(), fast=False).generate(prompts, 2, params)
    assert [[c.token_ids for c in g] for g in fast] == [[c.token_ids for c in g] for g in plain]


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_a_rollout_leaves_the_lora_policys_parameters_bit_identical(tmp_path, temperature):
    """bfloat16 base + adapters: every parameter (base and adapter) after a rollout equals the one before,
    bit for bit (peft's merge_adapter/unmerge_adapter would not: unmerging subtracts in bf16)."""
    model = _lora(load_model(_llama_dir(tmp_path)).to(torch.bfloat16))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    prompts = [torch.randint(3, V, (n,)).tolist() for n in (3, 6)]
    TorchSampler(model, _IdsTokenizer()).generate(prompts, 3, SamplingParams(8, temperature=temperature),
                                                  seeds=[1, 2])
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_bfloat16_folded_logits_stay_within_bf16_rounding_of_peft(tmp_path):
    """One bf16 step, folded vs peft's forward over the same prefilled cache: the logits differ only by
    bf16 rounding (well under the spread of the logits)."""
    model = _lora(load_model(_llama_dir(tmp_path)).to(torch.bfloat16))
    model.get_base_model().set_attn_implementation("eager")
    ids, mask = left_pad([torch.randint(3, V, (n,)).tolist() for n in (5, 3, 5)], 0, torch.device("cpu"))
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    caches = [decode_cache(model, ids.shape[1] + 1) for _ in range(2)]
    with torch.inference_mode():
        for c in caches:
            model(input_ids=ids, attention_mask=mask, position_ids=pos, **cache_kwargs(model, c), use_cache=True)
        tok, next_pos = torch.randint(3, V, (3,)), mask.sum(-1, keepdim=True)
        step_mask = torch.cat([mask, mask.new_ones(3, 1)], -1)
        want = model(input_ids=tok[:, None], attention_mask=step_mask, position_ids=next_pos,
                     **cache_kwargs(model, caches[0]), use_cache=True).logits[:, -1].float()
        got = fast_decoder(model, caches[1])(tok, next_pos, step_mask.bool()).float()
    assert (got - want).abs().max() < 0.05 * want.std()
