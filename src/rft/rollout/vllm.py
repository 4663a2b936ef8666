"""Rollout through a colocated vLLM engine (``sampling.backend: vllm``; ``pip install 'rft[vllm]'``, CUDA).

The engine runs in the training process on the same GPU ("colocate" mode, as TRL's GRPO trainer
does it): ``vllm.LLM(..., distributed_executor_backend="external_launcher")`` keeps the model in
this process (one engine per torchrun rank), limited to ``sampling.vllm_gpu_memory_utilization`` of
the GPU memory. It implements :class:`rft.rollout.base.RolloutEngine`:

* **n = G per prompt**: one request per prompt with ``SamplingParams(n=G)``, so the G samples share
  one prefill (with prefix caching) as in the built-in sampler.
* **per-group seeds**: ``SamplingParams(seed=seeds[i])`` gives each request its own generator, so a
  group does not depend on the rest of the batch (the contract of ``seeds``). The streams differ
  from the torch sampler's: the two backends sample different completions from the same seed.
* **weight sync**: before generating, the policy's weights are copied into vLLM's model when they
  changed since the last sync (tensor version counters, bumped by every in-place optimizer step).
  API relied on (TRL ``GRPOTrainer._move_model_to_vllm``, colocate mode; verl's vLLM sharding
  manager): ``llm.llm_engine.model_executor.driver_worker.worker.model_runner.model.load_weights(
  iterable of (hf_name, tensor))``; vLLM's ``load_weights`` takes Hugging Face parameter names and
  fuses them itself (q/k/v -> qkv_proj, gate/up -> gate_up_proj). :func:`vllm_weights` maps our
  names (DDP ``module.``, torch.compile ``_orig_mod.``, peft ``base_model.model.`` / ``.base_layer``)
  to those and merges LoRA adapters into the weights sent.

Not covered (and not run in CI: no GPU there): FSDP-sharded policies (a ConfigError), tensor-parallel
vLLM, sleep mode (offloading vLLM between rollouts), and importance-sampling correction of the small
mismatch between vLLM's and the trainer's log-probs (TIS); the loss scores tokens with the
trainer's own forward pass, as with the torch backend.
"""

from __future__ import annotations

import os
import socket
from typing import Any, Callable, Iterator

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from rft.config import ConfigError
from rft.rollout.base import Completion, SamplingParams

# prefixes wrappers put before the Hugging Face parameter names: DDP, torch.compile, peft
_PREFIXES = ("module.", "_orig_mod.", "base_model.model.")


def hf_parameter_name(name: str) -> str | None:
    """The Hugging Face name vLLM's ``load_weights`` expects for one of our state-dict names, or None
    for entries that are not model weights (LoRA factors, peft's saved copy of the original module)."""
    if "lora_" in name or ".original_module." in name:
        return None
    changed = True
    while changed:
        changed = False
        for prefix in _PREFIXES:
            if name.startswith(prefix):
                name, changed = name[len(prefix):], True
    return name.replace(".base_layer.", ".").replace(".modules_to_save.default.", ".")


def vllm_weights(state_dict: dict[str, torch.Tensor]) -> Iterator[tuple[str, torch.Tensor]]:
    """(hf_name, tensor) pairs for vLLM's ``load_weights``; tied weights are sent once per name."""
    for name, tensor in state_dict.items():
        hf = hf_parameter_name(name)
        if hf is not None:
            yield hf, tensor.detach()


def request_params(params: SamplingParams, n: int, seeds: list[int] | None, count: int, eos_id: int) -> list[dict[str, Any]]:
    """Keyword arguments of ``vllm.SamplingParams`` for each of ``count`` prompts. Our ``top_k=0``
    (off) is vLLM's -1; EOS is never ignored and nothing but EOS and the length limit stops a row,
    as in the torch sampler."""
    out = []
    for i in range(count):
        kw: dict[str, Any] = {
            "n": n, "max_tokens": params.max_new_tokens, "temperature": params.temperature,
            "top_p": params.top_p, "top_k": params.top_k if params.top_k > 0 else -1,
            "ignore_eos": False, "skip_special_tokens": True, "stop_token_ids": [eos_id],
        }
        if seeds is not None:
            kw["seed"] = int(seeds[i])
        out.append(kw)
    return out


def to_completions(request_outputs: list[Any], tokenizer: PreTrainedTokenizerBase, eos_id: int) -> list[list[Completion]]:
    """vLLM ``RequestOutput``s (``.outputs``: ``CompletionOutput`` with ``token_ids`` and
    ``finish_reason``) as our groups. ``token_ids`` end with EOS when the row stopped (vLLM keeps the
    stop token in ``token_ids``; it is added when a version leaves it out), and the text is decoded
    by our tokenizer without it, exactly as the torch sampler does."""
    groups = []
    for req in request_outputs:
        group = []
        for out in req.outputs:
            ids = [int(t) for t in out.token_ids]
            stopped = out.finish_reason == "stop"
            if stopped and (not ids or ids[-1] != eos_id):
                ids.append(eos_id)
            text = tokenizer.decode(ids[:-1] if stopped else ids, skip_special_tokens=True)
            group.append(Completion(ids, text, "stop" if stopped else "length"))
        groups.append(group)
    return groups


def _weights_version(model: torch.nn.Module) -> int:
    """Changes whenever a parameter is modified in place (optimizer steps, load_state_dict)."""
    return sum(p._version for p in model.parameters())


class VLLMEngine:
    """Implements :class:`rft.rollout.base.RolloutEngine` with a colocated ``vllm.LLM``. Built by
    :meth:`create`; the constructor takes the engine and the ``SamplingParams`` class, so that the
    conversion and sync logic can be exercised with stand-ins."""

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, llm: Any,
                 sampling_params_cls: Callable[..., Any]) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.llm = llm
        self._sampling_params_cls = sampling_params_cls
        self.eos_id = tokenizer.eos_token_id
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_id
        self._synced_version: int | None = None
        self.syncs = 0  # weight syncs so far (logged by tests and benchmarks)

    @classmethod
    def create(cls, model_path: str, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, *,
               dtype: str, seed: int, gpu_memory_utilization: float) -> "VLLMEngine":
        try:
            import vllm
        except ImportError as e:
            raise ConfigError(f"sampling.backend=vllm: vllm cannot be imported ({e}); `pip install 'rft[vllm]'` "
                              "on a CUDA machine, or set sampling.backend to torch") from None
        if not torch.cuda.is_available():
            raise ConfigError("sampling.backend=vllm needs a CUDA GPU and none is visible; "
                              "set sampling.backend to torch on this machine")
        # external_launcher: the engine lives in this process, one per torchrun rank (TRL colocate mode);
        # it needs the torch.distributed rendezvous variables, which torchrun sets and one process lacks.
        for key, value in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1"), ("MASTER_ADDR", "localhost")):
            os.environ.setdefault(key, value)
        os.environ.setdefault("MASTER_PORT", str(_free_port()))
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # engine core in-process: its model is reachable
        llm = vllm.LLM(
            model=model_path, tokenizer=model_path, dtype=dtype, seed=seed,
            gpu_memory_utilization=gpu_memory_utilization,
            distributed_executor_backend="external_launcher", tensor_parallel_size=1,
            enable_prefix_caching=True,
        )
        return cls(model, tokenizer, llm, vllm.SamplingParams)

    def _vllm_model(self) -> Any:
        return self.llm.llm_engine.model_executor.driver_worker.worker.model_runner.model

    def sync_weights(self) -> None:
        """Copy the policy's weights into vLLM if they changed since the last sync."""
        version = _weights_version(self.model)
        if version == self._synced_version:
            return
        model: Any = self.model
        merge = getattr(model, "merge_adapter", None)  # peft: send base + adapter as plain weights
        if merge is not None:
            merge()
        try:
            with torch.no_grad():
                self._vllm_model().load_weights(vllm_weights(model.state_dict()))
        finally:
            if merge is not None:
                model.unmerge_adapter()
        self._synced_version = _weights_version(self.model)  # merge/unmerge bumped the counters
        self.syncs += 1
        reset = getattr(self.llm, "reset_prefix_cache", None)
        if reset is not None:  # cached KV blocks were computed with the old weights
            reset()

    def generate(self, prompts: list[list[int]], n: int, params: SamplingParams,
                 generator: torch.Generator | None = None, seeds: list[int] | None = None) -> list[list[Completion]]:
        """``n`` completions per prompt. ``generator`` is not used (vLLM has its own RNG); pass
        ``seeds`` for reproducible groups."""
        if seeds is not None and len(seeds) != len(prompts):
            raise ValueError(f"seeds: got {len(seeds)} seeds for {len(prompts)} prompts; pass one seed per prompt")
        self.sync_weights()
        sampling = [self._sampling_params_cls(**kw) for kw in request_params(params, n, seeds, len(prompts), self.eos_id)]
        requests = [{"prompt_token_ids": list(p)} for p in prompts]
        outputs = self.llm.generate(requests, sampling, use_tqdm=False)
        return to_completions(outputs, self.tokenizer, self.eos_id)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return int(s.getsockname()[1])
