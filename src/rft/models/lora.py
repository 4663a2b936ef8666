"""LoRA through peft: wrap a loaded causal LM with fresh adapters, reload adapters from a checkpoint,
and score the frozen reference as the same weights with the adapter switched off.

With ``model.lora`` set, only the adapter matrices require gradients, so the optimizer holds state
for them alone, and ``save_pretrained`` on the wrapped model writes only the adapter
(``adapter_config.json`` + ``adapter_model.safetensors``). The KL reference needs no second copy of
the weights: ``PeftModel.disable_adapter()`` runs the base model in place (the approach TRL takes
for PEFT models too). peft is imported lazily: full fine-tuning never needs it.

Each adapted linear computes ``base(x) + B(A(x)) * scaling`` in peft: a multiply over the full output
([rows, out], forward and backward) on every adapted linear. Where ``scaling`` (alpha / r) is a power of two
within 2^-24..2^24, as at the defaults (alpha = 2 r), :func:`fold_scaling` gives each layer a forward that
multiplies B's small [out, r] weight instead, ``base(x) + linear(A(x), scaling * B)``: scaling by a power of
two is exact in floating point, so outputs and gradients equal peft's bit for bit (tests). Layers it cannot
match exactly (another scaling, dropout, DoRA and other variants, biases on adapters, several adapters, merged, or
disabled for the reference) keep peft's forward, per call.

Not covered: quantised bases (QLoRA), several named adapters at once, DoRA and other peft variants.
"""

from __future__ import annotations

import math
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from types import MethodType
from typing import Any

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel

from rft.config import ConfigError, LoRAConfig
from rft.models.compat import peft_wrapping

ADAPTER_CONFIG = "adapter_config.json"


def _peft() -> Any:
    try:
        import peft
    except ImportError:
        raise ConfigError("model.lora needs the peft package, which is not installed; "
                          "`pip install 'rft[lora]'` or set model.lora to null") from None
    return peft


def is_adapter_dir(path: str | Path) -> bool:
    return (Path(path) / ADAPTER_CONFIG).is_file()


def is_lora(model: Any) -> bool:
    """Whether ``model`` is wrapped with peft adapters (False when peft is not installed)."""
    try:
        import peft
    except ImportError:
        return False
    return isinstance(model, peft.PeftModel)


def add_adapter(model: PreTrainedModel, cfg: LoRAConfig) -> PreTrainedModel:
    """Wrap ``model`` with fresh LoRA adapters (B = 0, so the wrapped model starts equal to the base);
    every base weight is frozen."""
    peft = _peft()
    spec = peft.LoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                           target_modules=cfg.target_modules, bias="none", task_type="CAUSAL_LM")
    try:
        # adapters in the base's dtype: a bf16 base computes its adapters in bf16 too (no casts of every
        # activation to float32 and back); their float32 masters live in the optimizer (MasterWeightAdamW)
        with peft_wrapping():
            wrapped = peft.get_peft_model(model, spec, autocast_adapter_dtype=False)
    except ValueError as e:  # e.g. target module names that match nothing in this architecture
        raise ConfigError(f"model.lora.target_modules={cfg.target_modules!r}: {e}; name modules of this model "
                          "(e.g. [q_proj, v_proj]) or use 'all-linear'") from None
    wrapped.eval()
    return fold_scaling(wrapped)


def load_adapter(model: PreTrainedModel, adapter_dir: str | Path, trainable: bool) -> PreTrainedModel:
    """The base ``model`` with the adapter saved in ``adapter_dir`` (a checkpoint) loaded onto it."""
    peft = _peft()
    with peft_wrapping():
        wrapped = peft.PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=trainable,
                                                 autocast_adapter_dtype=False)
    wrapped.eval()
    return fold_scaling(wrapped)


def reference_scoring(policy: Any) -> AbstractContextManager[Any]:
    """A context in which ``policy`` computes the reference log-probs: the adapter is disabled for a
    LoRA policy; for a full fine-tuning policy the reference is a separate model and this is a no-op."""
    return policy.disable_adapter() if is_lora(policy) else nullcontext()


def _power_of_two(x: float) -> bool:
    """Whether scaling by ``x`` is exact: a power of two, and within 2^-24..2^24 so that a scaled bf16/fp16
    weight or output neither underflows into subnormals nor overflows where peft's order would not."""
    return math.isfinite(x) and 2.0**-24 <= x <= 2.0**24 and math.frexp(x)[0] == 0.5


def _foldable(layer: Any) -> bool:
    """Whether ``layer`` is a peft LoRA ``Linear`` whose every adapter is plain LoRA with a power-of-two
    scaling, no dropout and no biases (what :func:`_scaled_forward` computes exactly)."""
    base = getattr(layer, "base_layer", None)
    if type(base) is not torch.nn.Linear or not hasattr(layer, "lora_A") or getattr(layer, "lora_variant", {}):
        return False
    for name in layer.lora_A:
        a, b = layer.lora_A[name], layer.lora_B[name]
        if (type(a) is not torch.nn.Linear or type(b) is not torch.nn.Linear or a.bias is not None
                or b.bias is not None or type(layer.lora_dropout[name]) is not torch.nn.Identity
                or not _power_of_two(float(layer.scaling[name]))):
            return False
    return True


def _scaled_forward(self: Any, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    """peft's vanilla LoRA forward with the scaling on B's weight (exact for a power of two); anything
    else (extra arguments, adapters off or merged, several active adapters, a cast) goes to peft's."""
    active = self.active_adapters
    name = active[0] if len(active) == 1 else None
    if (args or kwargs or self.disable_adapters or self.merged or name not in self.lora_A
            or not _power_of_two(float(self.scaling[name])) or x.dtype != self.lora_A[name].weight.dtype):
        return type(self).forward(self, x, *args, **kwargs)
    return self.base_layer(x) + F.linear(self.lora_A[name](x), self.lora_B[name].weight * self.scaling[name])


def fold_scaling(model: Any) -> Any:
    """Give every foldable LoRA linear of ``model`` :func:`_scaled_forward` (bound to the layer, so a
    ``deepcopy`` binds the copy's); returns ``model``."""
    for module in model.modules():
        if _foldable(module):
            module.forward = MethodType(_scaled_forward, module)
    return model
