"""Calls into transformers and peft that changed between the releases rft supports
(``transformers>=5.0,<6``, pyproject.toml; CI tests 5.0 and the newest release).

* :func:`cache_kwargs` -- transformers 5.24 renamed the forward argument ``past_key_values`` to
  ``cache`` and warns on every call with the old name that it "will be removed in version
  5.40.0"; 5.23 and earlier know only ``past_key_values``. The cache is named the way the model's
  own ``forward`` signature names it, so no call of ours passes a deprecated argument on either
  side of the rename.
* :func:`peft_wrapping` -- peft reads a property transformers 5.23 deprecated; the one warning that
  causes is silenced around peft's wrap, not globally.
* :func:`gguf_dense_kwargs` -- ``GgufConfig`` exists from transformers 5.17 on.

The suite runs with FutureWarnings as errors (pyproject's ``filterwarnings``) to keep it that way.
"""

from __future__ import annotations

import inspect
import warnings
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, Iterator


@lru_cache(maxsize=None)
def _cache_arg(forward_owner: type) -> str:
    params = inspect.signature(forward_owner.forward).parameters  # follows the deprecation wrapper
    return "cache" if "cache" in params else "past_key_values"


def cache_kwargs(module: Any, cache: Any) -> dict[str, Any]:
    """``{"cache": cache}`` or ``{"past_key_values": cache}``, whichever ``module.forward`` takes.
    A peft wrapper forwards keyword arguments to its base model, whose signature decides."""
    owner = module
    get_base = getattr(module, "get_base_model", None)
    if callable(get_base):
        owner = get_base()
    return {_cache_arg(type(owner)): cache}


@contextmanager
def peft_wrapping() -> Iterator[None]:
    """Around the construction of a peft model (``get_peft_model``, ``PeftModel.from_pretrained``).

    peft (0.21.2, the newest) reads ``model.is_gradient_checkpointing`` while it wraps a model, and
    transformers 5.23 deprecated that property for ``is_activation_checkpointing`` with a
    FutureWarning on every read. The read is peft's, not ours, so that one warning -- that message,
    raised in ``transformers.modeling_utils`` -- is ignored here, for the duration of the wrap only;
    any other warning still shows (and fails the tests, which turn FutureWarnings into errors).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated",
                                category=FutureWarning, module=r"transformers\.modeling_utils")
        yield


def gguf_dense_kwargs() -> dict[str, Any]:
    """``from_pretrained`` keyword arguments that load a GGUF file dequantized into dense weights.

    transformers 5.17 added ``GgufConfig`` and, with it, the option of keeping the weights in GGUF
    blocks; rft asks for dense ones with ``GgufConfig(dequantize=True)``. Earlier releases have no
    ``GgufConfig`` and always dequantize, so there the plain call is the same load.
    """
    try:
        from transformers import GgufConfig
    except ImportError:
        return {}
    return {"quantization_config": GgufConfig(dequantize=True)}
