"""Calls into transformers that changed between the releases rft supports (``transformers>=5.2,<6``).

transformers 5.24 renamed the forward argument ``past_key_values`` to ``cache`` and warns on every
call with the old name that it "will be removed in version 5.40.0"; 5.23 and earlier know only
``past_key_values``. :func:`cache_kwargs` names the cache the way the model's own ``forward``
signature does, so no call of ours passes a deprecated argument on either side of the rename
(the suite runs with ``-W error::FutureWarning`` on our own calls to keep it that way).
"""

from __future__ import annotations

import inspect
from functools import lru_cache
from typing import Any


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
