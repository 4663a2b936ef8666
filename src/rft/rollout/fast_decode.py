"""One-token decode steps written out for the common architectures, reading the slab cache directly.

A decode step feeds one token per row. Through transformers' forward that is a stack of Python
modules (cache objects, mask builders, output dataclasses, hooks) around a few small matmuls: on the
CPU the calls cost about as much as the arithmetic (GPT-2 anchor, 64 rows: 7.1 ms per step through
the model, 5.7 ms written out, same tokens). :func:`fast_decoder` returns a step function for

- GPT-2 (``GPT2LMHeadModel``: learned positions, LayerNorm, fused QKV ``Conv1D``, GELU MLP), and
- Llama-style models (``LlamaForCausalLM``, ``Qwen2ForCausalLM``, ``MistralForCausalLM``: RMSNorm,
  rotary positions from the model's own ``rotary_emb`` (so every rope scaling the model supports),
  grouped-query attention, optional q/k/v biases (Qwen2), gated MLP),

with the q/k/v and gate/up projections concatenated into one matmul each for the call, and peft LoRA
adapters on any of the Llama-style projections folded into that concatenated copy of the weights
(``W + scaling * B A`` in float32, rounded once to the base's dtype): the decode loop runs plain
matmuls, no adapter matmuls, and the model's own parameters are never written (nothing to unmerge;
peft's ``merge_adapter``/``unmerge_adapter`` would round the bf16 base twice and not restore it).
The folded step equals peft's forward to the rounding of the base dtype (float32: ~1e-6; bfloat16:
no further from the float32 model than the model's own bfloat16 forward, see the tests); measured on
SmolLM2-135M with r=16 on every linear in BENCHMARKS.md. It computes
the same function as the model's forward (the tests compare logits with the model's and greedy
tokens with ``generate``). Anything else -- other architectures, merged or DoRA adapters, LoRA on
GPT-2, FSDP-sharded
parameters, sliding-window caches, cross-attention, an activation it does not know -- gets ``None``
and the sampler uses the model's own forward; nothing is approximated.

Prefill stays on the model's forward (one call per rollout), which fills the same slab cache.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from rft.rollout.kv_cache import SlabLayer

# step(tokens [N], positions [N, 1], attend [N, L] bool or None) -> logits [N, V]; L = filled cache + 1
DecodeStep = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None"], torch.Tensor]

_TANH_GELU = {"gelu_new", "gelu_fast", "gelu_pytorch_tanh", "gelu_python_tanh"}


def _plain(*modules: nn.Module, kinds: tuple[type, ...] = (nn.Linear,)) -> bool:
    """True when every module is exactly a stock layer (a LoRA or quantised wrapper is not)."""
    return all(type(m) in kinds for m in modules)


def _plain_tensors(model: nn.Module) -> bool:
    return all(type(p) is nn.Parameter and p.is_floating_point() for p in model.parameters())


def _attend(q_NHD: torch.Tensor, k_NHLD: torch.Tensor, v_NHLD: torch.Tensor, attend_NL: torch.Tensor | None,
            scale: float, gqa: bool) -> torch.Tensor:
    """One query per row against the cache. In float32 through SDPA; in bfloat16/float16 on the CPU
    as two batched matmuls with a float32 softmax, the query heads of one key/value head stacked as
    rows: torch 2.13's CPU SDPA kernel took 319 vs 179 us (32 rows, 9/3 heads, 60 positions) and
    ~2.7 ms per call for 200 rows, a quarter of a SmolLM2 validation."""
    if q_NHD.dtype == torch.float32 or q_NHD.device.type != "cpu":
        mask = attend_NL[:, None, None, :] if attend_NL is not None else None
        return F.scaled_dot_product_attention(q_NHD.unsqueeze(2), k_NHLD, v_NHLD, attn_mask=mask, scale=scale,
                                              enable_gqa=gqa).squeeze(2)
    N, H, D = q_NHD.shape
    H_kv = k_NHLD.shape[1]
    q = q_NHD.view(N, H_kv, H // H_kv, D)  # GQA: query heads grouped under their key/value head
    scores = torch.matmul(q, k_NHLD.transpose(-1, -2)).float().mul_(scale)  # [N, H_kv, group, L]
    if attend_NL is not None:
        scores.masked_fill_(~attend_NL[:, None, None, :], float("-inf"))
    return torch.matmul(scores.softmax(-1).to(v_NHLD.dtype), v_NHLD).view(N, H, D)


def _write(layer: SlabLayer, k_NHD: torch.Tensor, v_NHD: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Append one position to a slab layer (its own ``update``); the filled keys and values."""
    return layer.update(k_NHD.unsqueeze(2), v_NHD.unsqueeze(2))


def _gpt2(model: nn.Module, layers: list[SlabLayer]) -> DecodeStep | None:
    from transformers.pytorch_utils import Conv1D

    cfg = model.config
    tr = model.transformer
    if cfg.add_cross_attention or cfg.activation_function not in _TANH_GELU | {"gelu"}:
        return None
    if cfg.scale_attn_by_inverse_layer_idx or cfg.reorder_and_upcast_attn:
        return None  # rare variants with their own attention arithmetic
    blocks = list(tr.h)
    if not all(_plain(b.attn.c_attn, b.attn.c_proj, b.mlp.c_fc, b.mlp.c_proj, kinds=(Conv1D,)) for b in blocks):
        return None
    if not _plain(tr.wte, tr.wpe, kinds=(nn.Embedding,)) or not _plain(model.lm_head):
        return None
    H, d = cfg.n_head, cfg.n_embd
    D = d // H
    act = _tanh_gelu if cfg.activation_function in _TANH_GELU else F.gelu
    scale = D**-0.5 if cfg.scale_attn_weights else 1.0
    # the tensors each step reads, looked up once: module attribute access costs ~1 us a time
    weights = [(b.ln_1.weight, b.ln_1.bias, b.ln_1.eps, b.attn.c_attn.weight, b.attn.c_attn.bias,
                b.attn.c_proj.weight, b.attn.c_proj.bias, b.ln_2.weight, b.ln_2.bias, b.ln_2.eps,
                b.mlp.c_fc.weight, b.mlp.c_fc.bias, b.mlp.c_proj.weight, b.mlp.c_proj.bias) for b in blocks]
    wte, wpe, lnf = tr.wte.weight, tr.wpe.weight, (tr.ln_f.weight, tr.ln_f.bias, tr.ln_f.eps)
    head_w, head_b = model.lm_head.weight, model.lm_head.bias

    def step(tok_N: torch.Tensor, pos_N1: torch.Tensor, attend_NL: torch.Tensor | None) -> torch.Tensor:
        N = tok_N.shape[0]
        x = wte[tok_N] + wpe[pos_N1[:, 0]]
        for (l1w, l1b, e1, w_qkv, b_qkv, w_o, b_o, l2w, l2b, e2, w_fc, b_fc, w_p, b_p), layer in zip(weights, layers):
            qkv = torch.addmm(b_qkv, F.layer_norm(x, (d,), l1w, l1b, e1), w_qkv).view(N, 3, H, D)
            k, v = _write(layer, qkv[:, 1], qkv[:, 2])
            a = _attend(qkv[:, 0], k, v, attend_NL, scale, False).reshape(N, d)
            x = torch.addmm(b_o, a, w_o).add_(x)
            h = act(torch.addmm(b_fc, F.layer_norm(x, (d,), l2w, l2b, e2), w_fc))
            x = torch.addmm(b_p, h, w_p).add_(x)
        return F.linear(F.layer_norm(x, (d,), *lnf), head_w, head_b)

    return step


_GELU_C1 = 2.0 * math.sqrt(2.0 / math.pi)
_GELU_C3 = _GELU_C1 * 0.044715


def _tanh_gelu(x: torch.Tensor) -> torch.Tensor:
    """0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) as x sigmoid(2 sqrt(2/pi) (x + 0.044715 x^3)), the
    same function (0.5 (1 + tanh z) = sigmoid(2z)) in one buffer: tanh is slow on this CPU (64 x 1024:
    69 us vs 120 us for ``F.gelu(approximate="tanh")``, within 1e-6 of it in float64 terms)."""
    u = x * x
    return u.mul_(_GELU_C3).add_(_GELU_C1).mul_(x).sigmoid_().mul_(x)


def _rms(x: torch.Tensor, norm: nn.Module) -> torch.Tensor:
    """The Llama RMSNorm exactly as transformers computes it (in fp32, weight applied after the cast)."""
    eps = getattr(norm, "variance_epsilon", None) or getattr(norm, "eps")
    if x.dtype == torch.float32:
        return F.rms_norm(x, (x.shape[-1],), norm.weight, eps)
    x32 = x.float()
    return norm.weight * (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)


def _rotate(x_NHD: torch.Tensor, cos_N1D: torch.Tensor, sin_N1D: torch.Tensor) -> torch.Tensor:
    half = x_NHD.shape[-1] // 2
    rotated = torch.cat((-x_NHD[..., half:], x_NHD[..., :half]), dim=-1)
    return x_NHD * cos_N1D + rotated * sin_N1D


@dataclass
class _Proj:
    """One or several linear layers of the same input as one matmul (weights concatenated along the
    output, LoRA adapters folded in by :func:`_proj`)."""

    w: torch.Tensor                      # [in, out] (addmm/mm without a transpose)
    b: torch.Tensor | None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.b, x, self.w) if self.b is not None else x @ self.w


def _lora_parts(module: nn.Module) -> tuple[nn.Linear, list[tuple[torch.Tensor, torch.Tensor, float]]] | None:
    """(the plain linear, its active vanilla LoRA adapters as (A, B, scaling)) of ``module``, or None
    when it is neither a plain ``nn.Linear`` nor a peft ``lora.Linear`` computed as above (merged,
    DoRA and other variants, adapter dropout in training mode, biases on adapters, ...)."""
    if type(module) is nn.Linear:
        return module, []
    if type(module).__name__ != "Linear" or not type(module).__module__.startswith("peft.tuners.lora"):
        return None
    base = module.base_layer
    if type(base) is not nn.Linear or module.merged:
        return None
    if module.disable_adapters:
        return base, []
    loras = []
    for name in module.active_adapters:
        if name not in module.lora_A:
            continue
        a, b, drop = module.lora_A[name], module.lora_B[name], module.lora_dropout[name]
        if name in getattr(module, "lora_variant", {}) or not _plain(a, b) or a.bias is not None or b.bias is not None:
            return None
        if not (type(drop) is nn.Identity or (isinstance(drop, nn.Dropout) and not drop.training)):
            return None
        loras.append((a.weight, b.weight, module.scaling[name]))
    return base, loras


def _proj(*modules: nn.Module) -> _Proj | None:
    """A :class:`_Proj` for linears of one input; biases absent count as 0. Each active LoRA adapter
    is folded into its projection's slice of the concatenated weight: ``W^T + scaling * A^T B^T``,
    summed in float32 and rounded once to the base's dtype (a fresh tensor: the modules' parameters
    are only read)."""
    parts = [_lora_parts(m) for m in modules]
    if any(p is None for p in parts):
        return None
    linears = [lin for lin, _ in parts]
    b = None
    if any(lin.bias is not None for lin in linears):
        b = torch.cat([lin.bias if lin.bias is not None else lin.weight.new_zeros(lin.out_features)
                       for lin in linears])
    if not any(ls for _, ls in parts):
        return _Proj(torch.cat([lin.weight for lin in linears]).t().contiguous(), b)
    base_dtype = linears[0].weight.dtype
    w = torch.cat([lin.weight for lin in linears]).t().float()  # [in, out], a float32 copy
    for start, (lin, ls) in zip(_starts(linears), parts):
        for a, bw, scale in ls:  # A [r, in], B [out, r]
            w[:, start : start + lin.out_features].addmm_(a.t().float(), bw.t().float(), alpha=scale)
    return _Proj(w.to(base_dtype).contiguous(), b)


def _starts(linears: list[nn.Linear]) -> list[int]:
    out, start = [], 0
    for lin in linears:
        out.append(start)
        start += lin.out_features
    return out


def _llama(model: nn.Module, layers: list[SlabLayer]) -> DecodeStep | None:
    cfg = model.config
    inner = model.model
    if getattr(cfg, "hidden_act", None) != "silu" or getattr(cfg, "pretraining_tp", 1) != 1:
        return None
    if any(t != "full_attention" for t in (getattr(cfg, "layer_types", None) or [])):
        return None
    blocks = list(inner.layers)
    weights = []
    for b in blocks:
        at, mlp = b.self_attn, b.mlp
        if set(dict(at.named_children())) - {"q_proj", "k_proj", "v_proj", "o_proj"}:
            return None  # extra attention parts (e.g. q/k norms) this step does not compute
        # per layer, looked up once: norms, fused q/k/v, o_proj, fused gate/up, down_proj, the width of gate
        projs = (_proj(at.q_proj, at.k_proj, at.v_proj), _proj(at.o_proj), _proj(mlp.gate_proj, mlp.up_proj),
                 _proj(mlp.down_proj))
        if any(p is None for p in projs):
            return None
        qkv, o, gu, down = projs
        weights.append((b.input_layernorm, qkv, o, b.post_attention_layernorm, gu, down,
                        mlp.gate_proj.out_features, at.scaling))
    if not _plain(inner.embed_tokens, kinds=(nn.Embedding,)) or not _plain(model.lm_head):
        return None
    H, H_kv = cfg.num_attention_heads, cfg.num_key_value_heads
    D = getattr(cfg, "head_dim", None) or cfg.hidden_size // H
    embed, rotary, norm = inner.embed_tokens.weight, inner.rotary_emb, inner.norm
    head_w, head_b = model.lm_head.weight, model.lm_head.bias
    q_end, k_end, gqa = H * D, (H + H_kv) * D, H != H_kv

    def step(tok_N: torch.Tensor, pos_N1: torch.Tensor, attend_NL: torch.Tensor | None) -> torch.Tensor:
        N = tok_N.shape[0]
        x = embed[tok_N]
        cos, sin = rotary(x.unsqueeze(1), pos_N1)  # [N, 1, D], in the model's dtype
        for (n1, qkv, o, n2, gu, down, inter, scale), layer in zip(weights, layers):
            proj = qkv(_rms(x, n1))
            q = _rotate(proj[:, :q_end].view(N, H, D), cos, sin)
            k, v = _write(layer, _rotate(proj[:, q_end:k_end].view(N, H_kv, D), cos, sin),
                          proj[:, k_end:].view(N, H_kv, D))
            x = x + o(_attend(q, k, v, attend_NL, scale, gqa).reshape(N, q_end))
            h = gu(_rms(x, n2))
            x = x + down(F.silu(h[:, :inter]) * h[:, inter:])
        return F.linear(_rms(x, norm), head_w, head_b)

    return step


_BUILDERS = {"GPT2LMHeadModel": _gpt2, "LlamaForCausalLM": _llama, "Qwen2ForCausalLM": _llama,
             "MistralForCausalLM": _llama}


def fast_decoder(model: nn.Module, cache) -> DecodeStep | None:
    """A decode step for ``model`` over ``cache`` (already prefilled), or ``None`` when the model is not
    one this module writes out exactly (the caller then uses the model's forward). A peft-wrapped
    model is written out through its base model, adapters included (Llama-style models only)."""
    if callable(getattr(model, "get_base_model", None)):
        model = model.get_base_model()
    build = _BUILDERS.get(type(model).__name__)
    if build is None or type(model).__module__.split(".")[0] != "transformers" or not _plain_tensors(model):
        return None
    layers = getattr(cache, "layers", None)
    if not layers or not all(type(layer) is SlabLayer and layer.is_initialized for layer in layers):
        return None
    return build(model, layers)
