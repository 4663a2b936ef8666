"""What every model path shares: the cache directory models are made in, the dtypes a config may
name, and the error that says how to fix a model path. Below both :mod:`rft.models.load` and
:mod:`rft.models.presets`, so that neither imports the other to reach them."""

from __future__ import annotations

import os
from pathlib import Path

import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class ModelError(ValueError):
    """The model directory is missing or not a model; the message says how to fix it."""


def cache_dir() -> Path:
    return Path(os.environ.get("RFT_CACHE", Path.home() / ".cache" / "rft"))
