"""LoRA through peft: wrap a loaded causal LM with fresh adapters, reload adapters from a checkpoint,
and score the frozen reference as the same weights with the adapter switched off.

With ``model.lora`` set, only the adapter matrices require gradients, so the optimizer holds state
for them alone, and ``save_pretrained`` on the wrapped model writes only the adapter
(``adapter_config.json`` + ``adapter_model.safetensors``). The KL reference needs no second copy of
the weights: ``PeftModel.disable_adapter()`` runs the base model in place (the approach TRL takes
for PEFT models too). peft is imported lazily: full fine-tuning never needs it.

Not covered: quantised bases (QLoRA), several named adapters at once, DoRA and other peft variants.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

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
    return wrapped


def load_adapter(model: PreTrainedModel, adapter_dir: str | Path, trainable: bool) -> PreTrainedModel:
    """The base ``model`` with the adapter saved in ``adapter_dir`` (a checkpoint) loaded onto it."""
    peft = _peft()
    with peft_wrapping():
        wrapped = peft.PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=trainable,
                                                 autocast_adapter_dtype=False)
    wrapped.eval()
    return wrapped


def reference_scoring(policy: Any) -> AbstractContextManager[Any]:
    """A context in which ``policy`` computes the reference log-probs: the adapter is disabled for a
    LoRA policy; for a full fine-tuning policy the reference is a separate model and this is a no-op."""
    return policy.disable_adapter() if is_lora(policy) else nullcontext()

