"""Numerically equivalent module swaps that make a loaded model cheaper to run.

GPT-2 style models (``activation_function: gelu_new`` / ``gelu_fast``) compute the tanh GELU as five
separate elementwise ops in Python (pow, mul, add, tanh, mul), each a pass over the MLP's widest
activation that autograd also keeps for the backward. ``torch.nn.functional.gelu(x,
approximate="tanh")`` computes the same formula, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))),
in one fused pass; transformers ships it as ``GELUTanh`` ("equivalent to NewGELU and FastGELU but
much faster", equal up to float rounding). :func:`fuse_activations` swaps those modules in place.

Not covered: other activations (SiLU, exact GELU are already single ops), and models that call the
activation as a function instead of a module.
"""

from __future__ import annotations

import torch
from transformers.activations import FastGELUActivation, GELUTanh, NewGELUActivation

_TANH_GELU = (NewGELUActivation, FastGELUActivation)


def fuse_activations(model: torch.nn.Module) -> int:
    """Replace tanh-GELU modules written as Python formulas with the fused kernel; returns how many."""
    swapped = 0
    for module in model.modules():
        for name, child in list(module.named_children()):
            if isinstance(child, _TANH_GELU):
                setattr(module, name, GELUTanh())
                swapped += 1
    return swapped
