"""The vLLM rollout backend: what runs without vLLM (config checks, weight-name mapping, request
parameters, output conversion, when weights are synced) with stand-ins for the engine, and the real
engine on a CUDA machine with vllm installed (skipped otherwise)."""

import importlib.util
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest
import torch

from rft.config import ConfigError, config_from_dict
from rft.models.load import load_model, load_tokenizer
from rft.rollout.base import SamplingParams
from rft.rollout.engines import build_engine
from rft.rollout.sampler import TorchSampler
from rft.rollout.vllm import (
    VLLMEngine,
    hf_parameter_name,
    request_params,
    to_completions,
    vllm_weights,
)

HAS_VLLM = importlib.util.find_spec("vllm") is not None


@pytest.mark.skipif(HAS_VLLM, reason="vllm is installed here")
def test_vllm_backend_without_vllm_is_a_config_error_naming_the_field_and_the_fix():
    with pytest.raises(ConfigError, match=r"sampling.backend: the vllm backend needs the vllm package.*rft\[vllm\]"):
        config_from_dict({"sampling": {"backend": "vllm"}})


def test_backend_and_memory_share_are_validated():
    with pytest.raises(ConfigError, match="sampling.backend"):
        config_from_dict({"sampling": {"backend": "sglang"}})
    with pytest.raises(ConfigError, match="sampling.vllm_gpu_memory_utilization"):
        config_from_dict({"sampling": {"vllm_gpu_memory_utilization": 1.5}})


def test_the_torch_backend_builds_the_builtin_sampler(tiny_model_dir):
    tok = load_tokenizer(tiny_model_dir)
    engine = build_engine(config_from_dict({}).sampling.backend, load_model(tiny_model_dir), tok)
    assert isinstance(engine, TorchSampler) and engine.pad_id == tok.pad_token_id
    with pytest.raises(ValueError, match="sampling.backend = 'sglang': choose torch or vllm"):
        build_engine("sglang", load_model(tiny_model_dir), tok)  # type: ignore[arg-type]


@pytest.mark.parametrize("ours, hf", [
    ("model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.q_proj.weight"),  # plain model
    ("module.model.norm.weight", "model.norm.weight"),  # DDP
    ("_orig_mod.lm_head.weight", "lm_head.weight"),  # torch.compile
    ("base_model.model.model.layers.1.mlp.up_proj.base_layer.weight", "model.layers.1.mlp.up_proj.weight"),  # peft
    ("module.base_model.model.model.embed_tokens.weight", "model.embed_tokens.weight"),  # DDP around peft
    ("base_model.model.lm_head.modules_to_save.default.weight", "lm_head.weight"),  # peft modules_to_save
    ("base_model.model.model.layers.1.mlp.up_proj.lora_A.default.weight", None),  # adapter factors stay behind
    ("base_model.model.lm_head.original_module.weight", None),
])
def test_parameter_names_map_to_the_hugging_face_names_vllm_loads(ours, hf):
    assert hf_parameter_name(ours) == hf


def test_the_state_dict_of_a_real_model_maps_to_its_own_names(tiny_model_dir):
    model = load_model(tiny_model_dir)
    sent = dict(vllm_weights(model.state_dict()))
    assert sent.keys() == model.state_dict().keys()
    assert all(not t.requires_grad for t in sent.values())


def test_request_parameters_carry_one_seed_per_prompt_and_n_per_group():
    kws = request_params(SamplingParams(7, temperature=0.9, top_p=0.95, top_k=0), n=4, seeds=[11, 12], count=2, eos_id=3)
    assert [k["seed"] for k in kws] == [11, 12]
    assert all(k["n"] == 4 and k["max_tokens"] == 7 and k["top_k"] == -1 and k["stop_token_ids"] == [3] for k in kws)
    assert request_params(SamplingParams(5, top_k=20), 1, None, 1, 3)[0]["top_k"] == 20
    assert "seed" not in request_params(SamplingParams(5), 1, None, 1, 3)[0]


def test_vllm_outputs_become_completions_like_the_torch_samplers(tiny_model_dir):
    tok = load_tokenizer(tiny_model_dir)
    eos = tok.eos_token_id
    body = tok("12")["input_ids"]
    out = lambda ids, reason: SimpleNamespace(token_ids=ids, finish_reason=reason)  # noqa: E731
    groups = to_completions([
        SimpleNamespace(outputs=[out(body + [eos], "stop"), out(body, "length")]),
        SimpleNamespace(outputs=[out(body, "stop")]),  # a version that leaves the stop token out
    ], tok, eos)
    assert [len(g) for g in groups] == [2, 1]
    stopped, cut = groups[0]
    assert stopped.token_ids == body + [eos] and stopped.finish_reason == "stop" and stopped.text == tok.decode(body, skip_special_tokens=True)
    assert cut.token_ids == body and cut.finish_reason == "length"
    assert groups[1][0].token_ids == body + [eos]


@dataclass
class FakeVLLMModel:
    loads: list = field(default_factory=list)

    def load_weights(self, weights):
        self.loads.append({k: v.clone() for k, v in weights})


class FakeLLM:
    """Stands in for vllm.LLM: records the weights loaded and answers each request with n copies of
    the prompt's first token followed by EOS."""

    def __init__(self, eos):
        self.model = FakeVLLMModel()
        self.llm_engine = SimpleNamespace(model_executor=SimpleNamespace(driver_worker=SimpleNamespace(
            worker=SimpleNamespace(model_runner=SimpleNamespace(model=self.model)))))
        self.eos, self.requests, self.resets = eos, [], 0

    def reset_prefix_cache(self):
        self.resets += 1

    def generate(self, requests, sampling, use_tqdm=False):
        self.requests.append((requests, sampling))
        return [SimpleNamespace(outputs=[SimpleNamespace(token_ids=[r["prompt_token_ids"][0], self.eos],
                                                         finish_reason="stop")] * sp["n"])
                for r, sp in zip(requests, sampling)]


def test_weights_are_synced_before_the_first_generate_and_after_each_update_only(tiny_model_dir):
    model, tok = load_model(tiny_model_dir), load_tokenizer(tiny_model_dir)
    llm = FakeLLM(tok.eos_token_id)
    engine = VLLMEngine(model, tok, llm, sampling_params_cls=dict)
    prompts = [tok("1+2=")["input_ids"], tok("3+4=")["input_ids"]]
    groups = engine.generate(prompts, 3, SamplingParams(4), seeds=[5, 6])
    assert [len(g) for g in groups] == [3, 3] and groups[0][0].token_ids == [prompts[0][0], tok.eos_token_id]
    assert [sp["seed"] for sp in llm.requests[0][1]] == [5, 6]
    assert engine.syncs == 1 and llm.resets == 1
    engine.generate(prompts, 3, SamplingParams(4))
    assert engine.syncs == 1, "no update, no copy"

    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model(input_ids=torch.tensor([prompts[0]])).logits.sum().backward()
    opt.step()
    engine.generate(prompts, 1, SamplingParams(4, temperature=0.0))
    assert engine.syncs == 2
    sent = llm.model.loads[-1]
    for name, p in model.state_dict().items():
        torch.testing.assert_close(sent[name], p)  # the updated weights, not the first ones
    assert not torch.equal(llm.model.loads[0]["model.norm.weight"], sent["model.norm.weight"])


def test_seeds_must_match_the_prompts(tiny_model_dir):
    tok = load_tokenizer(tiny_model_dir)
    engine = VLLMEngine(load_model(tiny_model_dir), tok, FakeLLM(tok.eos_token_id), sampling_params_cls=dict)
    with pytest.raises(ValueError, match="one seed per prompt"):
        engine.generate([[1], [2]], 2, SamplingParams(3), seeds=[1])


# -- the real engine: a CUDA machine with `pip install 'rft[vllm]'` -----------------------------------


@pytest.mark.skipif(not (HAS_VLLM and torch.cuda.is_available()), reason="needs vllm and a CUDA GPU")
def test_real_vllm_engine_samples_seeded_groups_and_follows_the_policy(tiny_model_dir):
    cfg = config_from_dict({"model": {"path": str(tiny_model_dir), "device": "cuda"},
                            "sampling": {"backend": "vllm", "vllm_gpu_memory_utilization": 0.2}})
    model, tok = load_model(tiny_model_dir, device="cuda"), load_tokenizer(tiny_model_dir)
    engine = build_engine("vllm", model, tok, model_path=str(tiny_model_dir), seed=cfg.seed,
                          gpu_memory_utilization=cfg.sampling.vllm_gpu_memory_utilization)
    prompts = [tok("1+2=")["input_ids"], tok("3+4=")["input_ids"]]
    params = SamplingParams(6, temperature=1.0)
    a = engine.generate(prompts, 4, params, seeds=[1, 2])
    b = engine.generate(prompts[1:], 4, params, seeds=[2])
    assert [c.token_ids for c in a[1]] == [c.token_ids for c in b[0]], "a group depends on its seed alone"
    greedy_vllm = engine.generate(prompts, 1, SamplingParams(6, temperature=0.0))
    greedy_torch = TorchSampler(model, tok).generate(prompts, 1, SamplingParams(6, temperature=0.0))
    assert [g[0].token_ids for g in greedy_vllm] == [g[0].token_ids for g in greedy_torch]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    changed = engine.generate(prompts, 1, SamplingParams(6, temperature=0.0))
    assert engine.syncs == 2
    assert [g[0].token_ids for g in changed] == \
           [g[0].token_ids for g in TorchSampler(model, tok).generate(prompts, 1, SamplingParams(6, temperature=0.0))]
