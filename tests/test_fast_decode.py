"""The written-out decode steps compute what the models' own forwards compute."""

import pytest
import torch
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from rft.models.compat import cache_kwargs, peft_wrapping
from rft.models.load import load_model, load_tokenizer
from rft.rollout import SamplingParams, TorchSampler
from rft.rollout.fast_decode import fast_decoder
from rft.rollout.kv_cache import decode_cache
from rft.rollout.sampler import left_pad

pytestmark = pytest.mark.model  # samples or trains: CI reruns it under other CPU kernels

V = 61
SMALL = dict(vocab_size=V, hidden_size=48, intermediate_size=80, num_hidden_layers=2, num_attention_heads=4,
             max_position_embeddings=64, pad_token_id=0, eos_token_id=1, bos_token_id=2)
ARCHS = {
    "gpt2": lambda: GPT2LMHeadModel(GPT2Config(vocab_size=V, n_embd=48, n_layer=2, n_head=4, n_positions=64)),
    "gpt2-erf-gelu": lambda: GPT2LMHeadModel(GPT2Config(vocab_size=V, n_embd=48, n_layer=2, n_head=4, n_positions=64,
                                                        activation_function="gelu")),
    "llama-gqa": lambda: LlamaForCausalLM(LlamaConfig(**SMALL, num_key_value_heads=2, mlp_bias=True)),
    "qwen2-bias-gqa": lambda: Qwen2ForCausalLM(Qwen2Config(**SMALL, num_key_value_heads=1)),
    "mistral": lambda: MistralForCausalLM(MistralConfig(**SMALL, num_key_value_heads=2, sliding_window=None)),
}


def _save(make, path, seed=0):
    torch.manual_seed(seed)
    model = make()
    with torch.no_grad():  # larger weights than the default init: logits that differ by a lot per row
        for p in model.parameters():
            p.mul_(4.0) if p.dim() > 1 else p.add_(torch.randn_like(p) * 0.1)
    model.save_pretrained(path)
    return path


@pytest.mark.parametrize("arch", sorted(ARCHS))
@pytest.mark.parametrize("padded", [False, True])
def test_fast_step_matches_the_models_forward(arch, padded, tmp_path):
    torch.manual_seed(1)
    _compare_steps(load_model(_save(ARCHS[arch], tmp_path)).eval(), arch, padded)


def _lora(model, **kw):
    """peft LoRA on every projection, with B moved off zero so that the adapters change the output."""
    from peft import LoraConfig, get_peft_model

    with peft_wrapping():
        wrapped = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", **kw)).eval()
    with torch.no_grad():
        for name, p in wrapped.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.5)
    return wrapped


@pytest.mark.parametrize("arch", ["llama-gqa", "qwen2-bias-gqa"])
def test_fast_step_with_lora_adapters_matches_the_peft_forward(arch, tmp_path):
    """A LoRA policy samples through the written-out step: adapters folded into its weight copies compute
    what peft's forward computes (float32: to rounding), with the adapters on and off (the KL reference)."""
    torch.manual_seed(1)
    model = _lora(load_model(_save(ARCHS[arch], tmp_path)))
    _compare_steps(model, arch, padded=True)
    with model.disable_adapter():
        _compare_steps(model, arch, padded=True)


@pytest.mark.parametrize("arch", ["llama-gqa", "qwen2-bias-gqa", "gpt2"])
def test_bfloat16_fast_step_is_as_close_to_float32_as_the_models_own_bfloat16_forward(arch, tmp_path):
    """In bfloat16 the written-out step and the model's forward round differently (fused matmuls, a
    float32 softmax), so neither is the reference: the float32 model is. Over 6 decode steps the
    step's largest logit error against it stays within twice the model's own bfloat16 forward's
    (LoRA adapters in bfloat16 over the bfloat16 base, as rft.models.lora makes them, for the
    Llama-style models)."""
    import copy

    torch.manual_seed(1)
    m32 = load_model(_save(ARCHS[arch], tmp_path))
    if arch != "gpt2":
        m32 = _lora(m32)
    m16 = copy.deepcopy(m32).to(torch.bfloat16)
    (m16.get_base_model() if arch != "gpt2" else m16).set_attn_implementation("eager")  # as load_model in bf16
    prompts = [torch.randint(3, V, (n,)).tolist() for n in (7, 4, 7, 2)]
    ids, mask = left_pad(prompts, 0, torch.device("cpu"))
    steps, width = 6, ids.shape[1]
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    caches = {k: decode_cache(m, width + steps) for k, m in (("32", m32), ("16", m16), ("fast", m16))}
    with torch.inference_mode():
        for k, m in (("32", m32), ("16", m16), ("fast", m16)):
            m(input_ids=ids, attention_mask=mask, position_ids=pos, **cache_kwargs(m, caches[k]), use_cache=True)
        fast = fast_decoder(m16, caches["fast"])
        assert fast is not None
        full = torch.cat([mask, mask.new_ones(4, steps)], -1)
        next_pos, tok = mask.sum(-1, keepdim=True), torch.randint(3, V, (4,))
        worst_model = worst_fast = 0.0
        for t in range(steps):
            step_mask = full[:, : width + t + 1]
            truth = m32(input_ids=tok[:, None], attention_mask=step_mask, position_ids=next_pos,
                        **cache_kwargs(m32, caches["32"]), use_cache=True).logits[:, -1]
            own = m16(input_ids=tok[:, None], attention_mask=step_mask, position_ids=next_pos,
                      **cache_kwargs(m16, caches["16"]), use_cache=True).logits[:, -1].float()
            ours = fast(tok, next_pos, step_mask.bool()).float()
            worst_model = max(worst_model, float((own - truth).abs().max()))
            worst_fast = max(worst_fast, float((ours - truth).abs().max()))
            tok, next_pos = truth.argmax(-1), next_pos + 1
    assert worst_model > 0  # bfloat16 rounds: the comparison has a scale
    assert worst_fast <= 2 * worst_model, (worst_fast, worst_model)


def _compare_steps(model, arch, padded, atol=2e-5):
    """Prefill two caches, then decode 6 steps with the model's forward and with the written-out
    step; logits (to ``atol``, relative 1e-5) and caches agree."""
    lens = [7, 4, 7, 2] if padded else [5, 5, 5, 5]
    prompts = [torch.randint(3, V, (n,)).tolist() for n in lens]
    ids, mask = left_pad(prompts, 0, torch.device("cpu"))
    steps, width = 6, ids.shape[1]
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    caches = [decode_cache(model, width + steps) for _ in range(2)]
    with torch.inference_mode():
        for cache in caches:
            model(input_ids=ids, attention_mask=mask if padded else None, position_ids=pos,
                  **cache_kwargs(model, cache), use_cache=True)
        fast = fast_decoder(model, caches[1])
        assert fast is not None, f"{arch}: no written-out decode step"
        full = torch.cat([mask, mask.new_ones(4, steps)], -1)
        next_pos = mask.sum(-1, keepdim=True)
        tok = torch.randint(3, V, (4,))
        for t in range(steps):
            step_mask = full[:, : width + t + 1]
            want = model(input_ids=tok[:, None], attention_mask=step_mask if padded else None, position_ids=next_pos,
                         **cache_kwargs(model, caches[0]), use_cache=True).logits[:, -1]
            got = fast(tok, next_pos, step_mask.bool() if padded else None)
            assert torch.allclose(got, want, atol=atol, rtol=1e-5), f"{arch} step {t}: {(got - want).abs().max()}"
            assert want.std() > 0.2  # the comparison is not between two near-constant outputs
            tok, next_pos = want.argmax(-1), next_pos + 1
        for a, b in zip(caches[0].layers, caches[1].layers):
            assert torch.allclose(a.keys, b.keys, atol=atol / 2) and torch.allclose(a.values, b.values, atol=atol / 2)


class _IdsTokenizer:  # the random models have no tokenizer; the sampler needs ids and a decode
    eos_token_id, pad_token_id = 1, 0

    def decode(self, ids, skip_special_tokens=True):
        return " ".join(map(str, ids))


@pytest.mark.parametrize("arch", ["gpt2", "llama-gqa"])
def test_sampler_with_and_without_the_fast_step_gives_the_same_completions(arch, tmp_path):
    path = _save(ARCHS[arch], tmp_path, seed=3)
    model = load_model(path)
    prompts = [torch.randint(3, V, (n,)).tolist() for n in (3, 6, 2, 5)]
    params = SamplingParams(10, temperature=1.0)
    fast, plain = TorchSampler(model, _IdsTokenizer(), fast=True), TorchSampler(model, _IdsTokenizer(), fast=False)
    a = fast.generate(prompts, 4, params, seeds=[11, 12, 13, 14])
    b = plain.generate(prompts, 4, params, seeds=[11, 12, 13, 14])
    ids_a = [[c.token_ids for c in g] for g in a]
    assert ids_a == [[c.token_ids for c in g] for g in b]
    flat = [len(t) for g in ids_a for t in g]
    assert min(flat) < 10 == max(flat), "some rows should stop early (EOS) and some run to the limit"


def test_greedy_with_the_fast_step_matches_generate(varied_model_dir, monkeypatch):
    import rft.rollout.sampler as sampler_mod

    calls = []

    def counting(model, cache):  # the written-out step, counted: the test must run through it
        step = fast_decoder(model, cache)
        assert step is not None
        return lambda *args: (calls.append(1), step(*args))[1]

    monkeypatch.setattr(sampler_mod, "fast_decoder", counting)
    model, tok = load_model(varied_model_dir), load_tokenizer(varied_model_dir)
    prompts = [tok(p)["input_ids"] for p in ["1+2=", "47+38=", "123+4=", "9=", "99+99="]]
    ours = [g[0].token_ids for g in TorchSampler(model, tok).generate(prompts, 1, SamplingParams(12, temperature=0.0))]
    assert len(calls) >= 5
    for p, got in zip(prompts, ours):
        out = model.generate(torch.tensor([p]), max_new_tokens=12, do_sample=False, eos_token_id=tok.eos_token_id,
                             pad_token_id=tok.pad_token_id)[0, len(p):].tolist()
        assert got == (out[: out.index(tok.eos_token_id) + 1] if tok.eos_token_id in out else out)


def test_models_it_does_not_write_out_get_the_models_forward(tmp_path):
    from peft import LoraConfig, get_peft_model

    llama = load_model(_save(ARCHS["llama-gqa"], tmp_path / "llama"))
    ids = torch.randint(3, V, (2, 4))

    def prefilled(model):
        cache = decode_cache(model, 10)
        with torch.inference_mode():
            model(input_ids=ids, **cache_kwargs(model, cache), use_cache=True)
        return cache

    assert fast_decoder(llama, prefilled(llama)) is not None
    with peft_wrapping():
        dora = get_peft_model(llama, LoraConfig(r=2, target_modules=["q_proj", "v_proj"], use_dora=True))
    assert fast_decoder(dora, prefilled(dora)) is None  # DoRA's magnitude vector is not computed here
    dora.merge_adapter()
    assert fast_decoder(dora, prefilled(dora)) is None  # merged adapters: peft's own bookkeeping
    with peft_wrapping():
        gpt2 = get_peft_model(load_model(_save(ARCHS["gpt2"], tmp_path / "gpt2")),
                              LoraConfig(r=2, target_modules=["c_attn"], fan_in_fan_out=True))  # Conv1D: [in, out]
    assert fast_decoder(gpt2, prefilled(gpt2)) is None  # LoRA on GPT-2's Conv1D layers is not written out
    torch.manual_seed(0)
    sliding = MistralForCausalLM(MistralConfig(**SMALL, num_key_value_heads=2, sliding_window=4)).eval()
    assert fast_decoder(sliding, prefilled(sliding)) is None  # not a slab cache
    unprefilled = decode_cache(llama, 10)
    assert fast_decoder(llama, unprefilled) is None
