"""The one builder of sampling engines: every command that samples (train, SFT's evaluation, doctor, demo,
eval) gets its engine here, so ``sampling.backend`` applies everywhere.

``torch``: :class:`rft.rollout.sampler.TorchSampler` on the policy itself. ``vllm``: a colocated vLLM engine
(:mod:`rft.rollout.vllm`) that syncs the policy's weights before each call; needs CUDA and ``rft[vllm]``.
"""

from __future__ import annotations

from typing import Literal

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from rft.rollout.base import RolloutEngine

Backend = Literal["torch", "vllm"]


def build_engine(backend: Backend, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, *,
                 model_path: str | None = None, dtype: str = "float32", seed: int = 0,
                 gpu_memory_utilization: float = 0.3) -> RolloutEngine:
    """The engine ``backend`` names, sampling from ``model`` (vLLM also loads ``model_path``)."""
    if backend == "vllm":
        from rft.rollout.vllm import VLLMEngine

        return VLLMEngine.create(model_path or str(getattr(model, "name_or_path", "")), model, tokenizer, dtype=dtype,
                                 seed=seed, gpu_memory_utilization=gpu_memory_utilization)
    if backend != "torch":
        raise ValueError(f"sampling.backend = {backend!r}: choose torch or vllm")
    from rft.rollout.sampler import TorchSampler

    return TorchSampler(model, tokenizer)
