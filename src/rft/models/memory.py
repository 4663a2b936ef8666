"""Peak memory of a GRPO run, predicted before the model loads: arithmetic on the model's shape.

The shape comes from the model directory without loading a tensor (:func:`model_shape`):
``config.json`` (hidden size, layers, heads, KV heads, head size, MLP width, vocabulary, tied
embeddings) and the parameter count from the safetensors headers (8-byte length + JSON: every
tensor's shape), read, never mapped. :func:`estimate` adds, in bytes (``b`` = bytes of
``model.dtype``, ``N`` = parameters, ``n`` = trainable parameters):

- **weights** ``N b`` (+ the LoRA adapters, ``n b``: peft keeps them in the base's dtype here);
- **reference** ``N b`` when ``beta > 0`` without LoRA (a second model); LoRA scores the reference
  with the adapter switched off (:func:`rft.models.lora.reference_scoring`): no copy;
- **gradients** ``n b``, and while a low-precision model's optimizer steps, their float32 copies
  ``4 n`` (:class:`rft.training.optim.MasterWeightAdamW` widens every gradient before the step);
- **optimizer** AdamW's two float32 moments ``8 n``, plus the float32 masters ``4 n`` of
  bfloat16/float16 parameters (MasterWeightAdamW);
- **activations** what autograd keeps for the backward of one micro-batch
  (``prompts_per_step x G / gradient_accumulation_steps`` rows of ``max_new_tokens`` completion
  tokens, and each group's prompt once): per token and layer :func:`saved_per_token_layer` (a
  Llama decoder layer's saved tensors counted: two RMSNorms, q/k/v, the attention weights over
  ``prompt + max_new_tokens`` keys, the SwiGLU MLP's four widths), plus the chunked output layer's
  working logits (:class:`rft.grpo.logprobs.HeadLogprobs`), times :data:`ACTIVATION_OVERHEAD`
  (measured: what the process holds over what is counted);
- **KV cache** of the rollout, ``prompts_per_step x G`` rows of ``prompt + max_new_tokens``
  positions (``2 x layers x kv_heads x head_dim x b`` a position), and of a validation batch;
- **runtime** a fixed allowance for what the framework itself allocates once it runs (thread
  pools, kernels, allocator arenas; measured, :data:`RUNTIME_BYTES`).

The phases do not overlap in time: the peak is the persistent part (weights, reference, optimizer,
runtime) plus the largest of rollout (KV cache + decode logits), update (gradients + activations,
or gradients and their float32 copies at the optimizer step) and validation (its KV cache, prefill
and the capability guard's logits). Validated against measured peaks in BENCHMARKS.md
(``bench/doctor_fit.py``). Not covered: multi-turn environments (each turn's context grows),
FSDP and DDP (sharded or replicated state), vLLM (its own memory pool), quantised weights,
architectures far from Llama (the per-token count assumes a pre-norm decoder with a gated MLP), and
what the grading workers use (separate processes).
"""

from __future__ import annotations

import json
import math
import struct
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2, "float64": 8}
_SAFETENSORS_BYTES = {"F64": 8, "F32": 4, "BF16": 2, "F16": 2, "I64": 8, "I32": 4, "I8": 1, "U8": 1, "BOOL": 1}
GIB = 2**30
# What the framework allocates once it computes, beside the model's own tensors (oneDNN kernels and
# scratch, OpenMP pools, glibc arenas, the tokenizer and the data): the tiny demo config (0.45M
# parameters, 47 MiB of its own predicted parts) grew its peak RSS by 85-108 MiB, mean 99 MiB, over
# its RSS before loading in 9 fresh processes (bench/doctor_fit.py, AMD EPYC, torch 2.13; from one
# run, 64 MiB, until 2026-12-04). CUDA: the context, outside torch's allocator (not validated on a GPU).
RUNTIME_BYTES = {"cpu": 52 * 2**20, "cuda": 600 * 2**20}
# Measured peak RSS of the update over the saved tensors counted below: 1.50 (SmolLM2-135M LoRA) and
# 1.53 (full fine-tuning), bench/doctor_fit.py. The count leaves out the backward's own buffers (the
# gradients of activations, the softmax recomputed per chunk of the output layer), the keys and values
# repeated per row for grouped-query attention, and pages the allocator keeps after a free.
ACTIVATION_OVERHEAD = 1.5
HEAD_CHUNK_ELEMENTS = 1 << 23  # rft.grpo.logprobs.HEAD_CHUNK_ELEMENTS: logits computed at a time
CAPABILITY_LOGITS = 2**25  # rft.safety.capability.MAX_LOGITS
SAMPLED_BATCH = 128  # rft.training.evaluate.sampled_pass_at_k's prompts per batch


class ShapeError(ValueError):
    """The model directory does not say its shape (no config.json, or a field missing)."""


@dataclass(frozen=True)
class ModelShape:
    """What memory depends on, read from a model directory (:func:`model_shape`)."""

    params: int
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int

    def lora_params(self, r: int, targets: str | list[str]) -> int:
        """Adapter parameters, r x (in + out) per adapted linear layer of every decoder layer
        (Llama names; 'all-linear' adapts all seven, the output layer excluded, as peft does)."""
        H, q, kv, I = self.hidden, self.heads * self.head_dim, self.kv_heads * self.head_dim, self.intermediate
        sizes = {"q_proj": H + q, "k_proj": H + kv, "v_proj": H + kv, "o_proj": q + H,
                 "gate_proj": H + I, "up_proj": H + I, "down_proj": I + H}
        names = sizes if targets == "all-linear" else [targets] if isinstance(targets, str) else targets
        return self.layers * r * sum(sizes.get(n, H + H) for n in names)


@dataclass(frozen=True)
class RunShape:
    """What memory depends on, from the run's config (:func:`run_shape`)."""

    dtype: str = "float32"
    lora_r: int | None = None
    lora_targets: str | list[str] = "all-linear"
    beta: float = 0.0
    prompts_per_step: int = 16
    generations: int = 8
    max_new_tokens: int = 8
    prompt_tokens: int = 64
    grad_accum: int = 1
    eval_rows: int = 1
    eval_samples_rows: int = 0
    capability: bool = False
    gradient_checkpointing: bool = False  # not a config option of rft: only for the advice
    device: str = "cpu"


@dataclass(frozen=True)
class MemoryEstimate:
    """Predicted bytes per part; ``peak`` adds the persistent parts and the largest phase."""

    weights: float
    reference: float
    gradients: float
    optimizer: float
    activations: float
    kv_cache: float
    validation: float
    runtime: float
    step_transient: float  # rollout logits + the float32 gradient copies at a low-precision optimizer step

    @property
    def peak(self) -> float:
        update = self.gradients + max(self.activations, self.step_transient)
        return self.weights + self.reference + self.optimizer + self.runtime + max(update, self.kv_cache, self.validation)

    def parts(self) -> dict[str, float]:
        return {"weights": self.weights, "reference": self.reference, "gradients": self.gradients,
                "optimizer": self.optimizer, "activations": self.activations, "kv_cache": self.kv_cache,
                "validation": self.validation, "runtime": self.runtime, "peak": self.peak}

    def summary(self) -> str:
        return ", ".join(f"{k.replace('_', ' ')} {gib(v)}" for k, v in self.parts().items() if k != "peak" and v) \
            + f"; peak {gib(self.peak)}"


def gib(n: float) -> str:
    return f"{n / GIB:.2f} GiB" if n >= 0.1 * GIB else f"{n / 2**20:.0f} MiB"


# Saved for the backward per token and decoder layer, in elements of the compute dtype: two RMSNorms
# (input, float32 copy = 2 elements of bf16, normalised output: ~4 H each), q and k after RoPE and
# their pre-RoPE values (2 q + 2 kv), v (kv), the attention output (q), the MLP's gate, SiLU(gate),
# up and their product (4 I). The attention weights over S keys are added per head (float32 softmax
# and its cast: 4 + b bytes).
def saved_per_token_layer(m: ModelShape) -> int:
    q, kv = m.heads * m.head_dim, m.kv_heads * m.head_dim
    return 8 * m.hidden + 3 * q + 3 * kv + 4 * m.intermediate



def estimate(m: ModelShape, r: RunShape) -> MemoryEstimate:
    """The predicted memory of training ``m`` as ``r`` says (see the module docstring for each part)."""
    b = DTYPE_BYTES[r.dtype]
    low = b < 4
    n = m.lora_params(r.lora_r, r.lora_targets) if r.lora_r else m.params
    weights = m.params * b + (n * b if r.lora_r else 0)
    reference = m.params * b if r.beta > 0 and not r.lora_r else 0
    optimizer = n * (8 + (4 if low else 0))
    grads = n * b
    keys = r.prompt_tokens + r.max_new_tokens
    kv_pos = 2 * m.layers * m.kv_heads * m.head_dim * b  # bytes of keys and values per position
    rows = r.prompts_per_step * r.generations
    # rollout: the cache slabs, the prefill's cache before it is repeated G times, the decode step's logits
    rollout = rows * keys * kv_pos + r.prompts_per_step * r.prompt_tokens * kv_pos + 3 * rows * m.vocab * 4

    micro_groups = max(1, r.prompts_per_step // r.grad_accum)
    tokens = micro_groups * (r.generations * r.max_new_tokens + r.prompt_tokens)
    per_layer = saved_per_token_layer(m) * b + m.heads * keys * (4 + b)
    if r.gradient_checkpointing:  # only each layer's input is kept; one layer's worth recomputed at a time
        acts = tokens * (m.layers * m.hidden * b + per_layer)
    else:
        acts = tokens * m.layers * per_layer
    head = min(tokens * m.vocab, HEAD_CHUNK_ELEMENTS) * 4 * 3 + tokens * m.hidden * 4
    activations = ACTIVATION_OVERHEAD * (acts + head)
    step_transient = n * 4 if low else 0

    validation = _validation(m, r, b, kv_pos)
    return MemoryEstimate(weights, reference, grads, optimizer, activations, rollout, validation,
                          RUNTIME_BYTES.get(r.device, RUNTIME_BYTES["cpu"]), step_transient)


def _validation(m: ModelShape, r: RunShape, b: int, kv_pos: int) -> float:
    """The largest of: the greedy batch's KV cache and prefill (one layer's MLP and attention working
    set at a time), the sampled pass@k batch's cache, the capability guard's float32 logits (the
    chunk, its float copy and its log-softmax)."""
    keys = r.prompt_tokens + r.max_new_tokens
    prefill = r.eval_rows * r.prompt_tokens * (3 * m.intermediate + 2 * m.hidden) * b \
        + r.eval_rows * m.heads * r.prompt_tokens ** 2 * (4 + b)
    greedy = r.eval_rows * keys * kv_pos + prefill + r.eval_rows * m.vocab * 4
    sampled = r.eval_samples_rows * keys * kv_pos
    capability = 3 * CAPABILITY_LOGITS * 4 if r.capability else 0
    return max(greedy, sampled, capability)


# -- reading a model directory ------------------------------------------------------------------


def safetensors_params(model_dir: str | Path) -> tuple[int, str] | None:
    """(parameter count, dtype of the largest tensor) from the safetensors headers alone, or None
    when the directory has no safetensors files. Sharded checkpoints are read through their files."""
    files = sorted(Path(model_dir).glob("*.safetensors"))
    if not files:
        return None
    total, by_dtype = 0, {}
    for f in files:
        with open(f, "rb") as fh:
            (size,) = struct.unpack("<Q", fh.read(8))
            if size > 100 * 2**20:
                raise ShapeError(f"{f}: a safetensors header of {size} bytes; the file is not safetensors")
            header = json.loads(fh.read(size))
        for name, t in header.items():
            if name == "__metadata__":
                continue
            count = math.prod(t["shape"])
            total += count
            by_dtype[t["dtype"]] = by_dtype.get(t["dtype"], 0) + count
    return total, max(by_dtype, key=by_dtype.get) if by_dtype else "F32"


def model_shape(model_dir: str | Path) -> ModelShape:
    """The :class:`ModelShape` of a model directory (``config.json`` and the safetensors headers;
    without safetensors the count is computed from the shape)."""
    path = Path(model_dir) / "config.json"
    try:
        c: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ShapeError(f"{path}: cannot read the model's shape ({e})") from None
    c = {**c.get("text_config", {}), **c}

    def field(*names: str) -> int:
        for name in names:
            if isinstance(c.get(name), int) and c[name] > 0:
                return c[name]
        raise ShapeError(f"{path}: no {' / '.join(names)} field; cannot predict memory for this architecture")

    hidden, layers = field("hidden_size", "n_embd"), field("num_hidden_layers", "n_layer")
    heads, vocab = field("num_attention_heads", "n_head"), field("vocab_size")
    kv_heads = c.get("num_key_value_heads") or heads
    head_dim = c.get("head_dim") or hidden // heads
    intermediate = c.get("intermediate_size") or c.get("n_inner") or 4 * hidden
    counted = safetensors_params(model_dir)
    if counted is not None:
        params = counted[0]
    else:
        attn = hidden * heads * head_dim * 2 + hidden * kv_heads * head_dim * 2
        params = vocab * hidden * (1 if c.get("tie_word_embeddings", True) else 2) \
            + layers * (attn + 3 * hidden * intermediate + 2 * hidden) + hidden
    return ModelShape(int(params), hidden, layers, heads, kv_heads, head_dim, intermediate, vocab)


def run_shape(cfg: Any, prompt_tokens: int, n_eval: int) -> RunShape:
    """The :class:`RunShape` of an rft config (``rft.config.Config``) whose longest prompt is
    ``prompt_tokens`` tokens, validated on ``n_eval`` examples."""
    lora = cfg.model.lora
    device = "cuda" if cfg.model.device.startswith("cuda") else cfg.model.device
    return RunShape(
        dtype=cfg.model.dtype, lora_r=lora.r if lora else None, lora_targets=lora.target_modules if lora else "all-linear",
        beta=cfg.grpo.beta, prompts_per_step=cfg.grpo.prompts_per_step, generations=cfg.sampling.num_generations,
        max_new_tokens=cfg.sampling.max_new_tokens, prompt_tokens=prompt_tokens,
        grad_accum=cfg.grpo.gradient_accumulation_steps, eval_rows=min(cfg.eval.batch_size, n_eval),
        eval_samples_rows=min(SAMPLED_BATCH, cfg.eval.sampled_size, n_eval) * cfg.eval.samples,
        capability=cfg.eval.capability, device=device)


# -- what to change when it does not fit ----------------------------------------------------------


def fitting_knobs(m: ModelShape, r: RunShape, available: float) -> list[str]:
    """One line per knob: the change, the predicted peak it gives, and whether that fits in
    ``available`` bytes. Each knob is tried alone, from the current run shape."""
    tries: list[tuple[str, RunShape]] = []
    if r.lora_r is None:
        tries.append(("model.lora: {r: 16, target_modules: all-linear}", replace(r, lora_r=16)))
    if r.dtype == "float32":
        tries.append(("model.dtype: bfloat16", replace(r, dtype="bfloat16")))
    for ga in (2, 4, 8, 16):
        if r.prompts_per_step % (r.grad_accum * ga) == 0:
            tries.append((f"grpo.gradient_accumulation_steps: {r.grad_accum * ga} (micro-batch "
                          f"{r.prompts_per_step // (r.grad_accum * ga)} groups)", replace(r, grad_accum=r.grad_accum * ga)))
            break
    if r.max_new_tokens > 1:
        tries.append((f"sampling.max_new_tokens: {r.max_new_tokens // 2}", replace(r, max_new_tokens=r.max_new_tokens // 2)))
    if r.generations > 2:
        tries.append((f"sampling.num_generations: {r.generations // 2}", replace(r, generations=r.generations // 2)))
    if r.eval_rows > 16:
        tries.append((f"eval.batch_size: {r.eval_rows // 4}", replace(r, eval_rows=r.eval_rows // 4)))
    tries.append(("gradient checkpointing (not a config option of rft yet)", replace(r, gradient_checkpointing=True)))
    lines = []
    for what, shape in tries:
        peak = estimate(m, shape).peak
        lines.append(f"{what}: peak {gib(peak)} ({'fits' if peak <= available else 'still too big'})")
    return lines


def available_bytes(device: str) -> tuple[float, str]:
    """(bytes the run can still use on ``device``, where that number comes from): on the CPU
    MemAvailable of /proc/meminfo (psutil's when installed), on CUDA the free memory torch reports."""
    if device.startswith("cuda"):
        import torch  # only here: the estimate itself needs no torch

        dev = torch.device(device if ":" in device else "cuda")
        free, _ = torch.cuda.mem_get_info(dev)
        return float(free), f"{torch.cuda.get_device_properties(dev).name} free memory"
    try:
        import psutil

        return float(psutil.virtual_memory().available), "psutil available memory"
    except ImportError:
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return float(line.split()[1]) * 1024, "/proc/meminfo MemAvailable"
    except OSError:
        pass
    return math.inf, "unknown (no /proc/meminfo, no psutil)"


def peak_rss_bytes() -> float:
    """This process's peak resident memory, in bytes: ``VmHWM`` of /proc/self/status, the high-water
    mark of this address space, which starts afresh at exec. Not ``ru_maxrss`` where /proc exists: on
    Linux it survives fork and exec (the kernel keeps the old address space's peak in the process and
    reports the larger), so a process started from a big one -- a test suite that trained a model --
    reports its parent's peak (measured: 13 MiB alone, 813 MiB started from a parent holding 800 MiB).
    Without /proc (macOS), ``ru_maxrss`` as the platform gives it (bytes on macOS, KiB elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) * 1024
    except OSError:
        pass
    import resource  # POSIX only; imported here so that the estimate itself imports on any platform

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return float(peak if sys.platform == "darwin" else peak * 1024)
