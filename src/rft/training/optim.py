"""Optimizer, learning-rate schedule, seeding and RNG snapshots shared by SFT and GRPO."""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_optimizer(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW over the trainable parameters; :class:`MasterWeightAdamW` when they are bfloat16/float16
    plain tensors (a bf16 model's full fine-tuning, LoRA adapters over a bf16 base)."""
    params = [p for p in model.parameters() if p.requires_grad]
    kwargs = dict(lr=lr, weight_decay=weight_decay, betas=(0.9, 0.99), eps=1e-8)
    if params and all(p.dtype in LOW_PRECISION and type(p.data) is torch.Tensor for p in params):
        return MasterWeightAdamW(params, **kwargs)
    return torch.optim.AdamW(params, **kwargs)


LOW_PRECISION = (torch.bfloat16, torch.float16)


class MasterWeightAdamW(torch.optim.AdamW):
    """AdamW on float32 master copies of low-precision parameters (mixed-precision training as in
    Micikevicius et al. 2018, "Mixed Precision Training"): the model computes in bfloat16 -- forward,
    backward and sampling run on bfloat16 weights -- while the optimizer steps float32 copies and
    writes them back rounded after each step.

    Why: bfloat16 keeps 8 significant bits, so an update smaller than ~1/256 of a weight is rounded
    away. Measured on SmolLM2-135M in bfloat16: full fine-tuning with plain AdamW at lr 1e-5 left the
    weights bit-identical for 4 steps (KL to the start 0.0000) -- every step was lost. Kept in float32
    the small steps accumulate until they show. Gradients arrive in the parameters' dtype and are
    widened to float32 before the step; clipping and the distributed gradient sum act on them before.
    The masters are part of :meth:`state_dict`, so a resumed run continues from the exact float32
    values, not from the rounded weights in the checkpoint. Not covered: fp16 loss scaling (bfloat16
    needs none; float16 gradients can underflow), FSDP-sharded parameters (plain AdamW is used)."""

    def __init__(self, params: list[torch.nn.Parameter], **kwargs: Any) -> None:
        self.model_params = list(params)
        masters = [torch.nn.Parameter(p.detach().float().clone()) for p in self.model_params]
        super().__init__(masters, **kwargs)

    @property
    def masters(self) -> list[torch.Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    def zero_grad(self, set_to_none: bool = True) -> None:
        super().zero_grad(set_to_none)
        for p in self.model_params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        for master, p in zip(self.masters, self.model_params):
            master.grad = p.grad.float() if p.grad is not None else None
        loss = super().step(closure)
        for master, p in zip(self.masters, self.model_params):
            p.copy_(master)
        return loss

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["master_weights"] = [m.detach().clone() for m in self.masters]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        masters = state_dict.pop("master_weights", None)
        super().load_state_dict(state_dict)
        with torch.no_grad():
            for master, p, saved in zip(self.masters, self.model_params, masters or [None] * len(self.masters)):
                master.copy_(saved if saved is not None else p.float())
                p.copy_(master)


def lr_lambda(kind: str, warmup: int, total: int):
    """Linear warm-up over ``warmup`` updates, then constant / linear / cosine decay to 0 at ``total``."""

    def f(update: int) -> float:
        if warmup and update < warmup:
            return (update + 1) / warmup
        if kind == "constant":
            return 1.0
        progress = min(1.0, (update - warmup) / max(1, total - warmup))
        if kind == "linear":
            return 1.0 - progress
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return f


def make_scheduler(opt: torch.optim.Optimizer, kind: str, warmup: int, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(kind, warmup, total))


def rng_state(generator: torch.Generator | None = None) -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if generator is not None:
        state["sampler"] = generator.get_state()
    return state


def set_rng_state(state: dict[str, Any], generator: torch.Generator | None = None) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if generator is not None and "sampler" in state:
        generator.set_state(state["sampler"])
