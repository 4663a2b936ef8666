"""The written-out decode steps compute what the models' own forwards compute."""

import pytest
import torch
from transformers import (GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, MistralConfig,
                          MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM)

from rft.models.load import load_model, load_tokenizer
from rft.rollout import SamplingParams, TorchSampler
from rft.rollout.fast_decode import fast_decoder
from rft.rollout.kv_cache import decode_cache
from rft.rollout.sampler import left_pad

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
    model = load_model(_save(ARCHS[arch], tmp_path)).eval()
    lens = [7, 4, 7, 2] if padded else [5, 5, 5, 5]
    prompts = [torch.randint(3, V, (n,)).tolist() for n in lens]
    ids, mask = left_pad(prompts, 0, torch.device("cpu"))
    steps, width = 6, ids.shape[1]
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    caches = [decode_cache(model, width + steps) for _ in range(2)]
    with torch.inference_mode():
        for cache in caches:
            model(input_ids=ids, attention_mask=mask if padded else None, position_ids=pos, past_key_values=cache,
                  use_cache=True)
        fast = fast_decoder(model, caches[1])
        assert fast is not None, f"{arch}: no written-out decode step"
        full = torch.cat([mask, mask.new_ones(4, steps)], -1)
        next_pos = mask.sum(-1, keepdim=True)
        tok = torch.randint(3, V, (4,))
        for t in range(steps):
            step_mask = full[:, : width + t + 1]
            want = model(input_ids=tok[:, None], attention_mask=step_mask if padded else None, position_ids=next_pos,
                         past_key_values=caches[0], use_cache=True).logits[:, -1]
            got = fast(tok, next_pos, step_mask.bool() if padded else None)
            assert torch.allclose(got, want, atol=2e-5, rtol=1e-5), f"{arch} step {t}: {(got - want).abs().max()}"
            assert want.std() > 0.2  # the comparison is not between two near-constant outputs
            tok, next_pos = want.argmax(-1), next_pos + 1
        for a, b in zip(caches[0].layers, caches[1].layers):
            assert torch.allclose(a.keys, b.keys, atol=1e-5) and torch.allclose(a.values, b.values, atol=1e-5)


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
            model(input_ids=ids, past_key_values=cache, use_cache=True)
        return cache

    assert fast_decoder(llama, prefilled(llama)) is not None
    lora = get_peft_model(llama, LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    assert fast_decoder(lora, prefilled(lora)) is None  # the wrapper: the adapter would be skipped
    assert fast_decoder(lora.base_model.model, prefilled(lora)) is None  # lora.Linear layers inside
    torch.manual_seed(0)
    sliding = MistralForCausalLM(MistralConfig(**SMALL, num_key_value_heads=2, sliding_window=4)).eval()
    assert fast_decoder(sliding, prefilled(sliding)) is None  # not a slab cache
    unprefilled = decode_cache(llama, 10)
    assert fast_decoder(llama, unprefilled) is None
