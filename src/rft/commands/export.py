"""``rft export``: turn a run's checkpoint into a directory that ``transformers`` loads.

- A full fine-tuning run: the weights and tokenizer (``save_pretrained``), without the optimizer,
  scheduler, RNG and trainer state that only resuming needs.
- A LoRA run: the adapter (``adapter_config.json`` + ``adapter_model.safetensors``) and tokenizer,
  with ``base_model_name_or_path`` set to the absolute path of the base model, so that
  ``AutoModelForCausalLM.from_pretrained(DIR)`` (transformers' peft integration) or
  ``peft.AutoPeftModelForCausalLM.from_pretrained(DIR)`` loads base + adapter. With ``merged`` the
  adapter is folded into the base weights (``merge_and_unload``) and a plain model is written.
- An SFT run directory (``NAME-sft``, no checkpoints): its ``model/``.

The directory is assembled beside ``out`` and renamed into place when complete; ``rft_export.json``
records which run, checkpoint and step it came from. Not covered: converting dtypes, sharding, or
formats other than safetensors (GGUF and the like).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from rft.config import ConfigError, load_config
from rft.files import atomic_directory, atomic_write_text
from rft.models.load import load_model, load_tokenizer, resolve_model_path
from rft.models.lora import ADAPTER_CONFIG, is_adapter_dir, load_adapter
from rft.training.run_dir import RunDir


@dataclass
class ExportResult:
    out: Path
    source: Path
    kind: str  # "full", "adapter" or "merged"
    step: int | None


def find_checkpoint(run: RunDir, which: str) -> Path:
    """The checkpoint directory named by ``which``: ``latest``, ``best`` or ``step_N``."""
    if which == "latest":
        ckpt = run.latest_checkpoint()
        if ckpt is None:
            raise FileNotFoundError(f"{run.path}: no complete checkpoint (checkpoints/latest is missing); "
                                    "train the run first")
        return ckpt
    if which == "best":
        name = "best"
    elif m := re.fullmatch(r"step_?(\d+)", which):
        name = f"step_{int(m.group(1)):06d}"
    else:
        raise ConfigError(f"--checkpoint {which!r}: expected best, latest or step_N (e.g. step_50)")
    ckpt = run.checkpoints_dir / name
    if not ckpt.is_dir():
        have = sorted(p.name for p in run.checkpoints_dir.glob("*") if p.is_dir() and ".tmp-" not in p.name)
        why = (" (best is written only when held-out pass@1 beats the step-0 validation, which it never did)"
               if name == "best" else "")
        raise FileNotFoundError(f"{ckpt}: no such checkpoint{why}; this run has {', '.join(have) or 'none'}")
    return ckpt


def export(run_dir: str | Path, out: str | Path, *, merged: bool = False, checkpoint: str = "latest",
           overwrite: bool = False) -> ExportResult:
    run = RunDir(run_dir)
    if not run.config_path.is_file():
        raise FileNotFoundError(f"{run.path}: no config.yaml; pass a run directory written by rft train or rft sft")
    cfg = load_config(run.config_path)
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} already exists and is not empty; pick another --out or pass --overwrite")

    if run.checkpoints_dir.is_dir():
        source = find_checkpoint(run, checkpoint)
    elif (run.path / "model" / "config.json").is_file() and checkpoint == "latest":
        source = run.path / "model"  # an SFT run: one final model, no checkpoints
    else:
        raise FileNotFoundError(f"{run.path}: no checkpoints/ (nor an SFT model/) to export")

    with atomic_directory(out) as tmp:
        kind = _write(source, tmp, cfg.model.path, cfg.model.revision, cfg.model.dtype, merged)
        state_file = source / "trainer_state.json"
        step = json.loads(state_file.read_text())["step"] if state_file.is_file() else None
        atomic_write_text(tmp / "rft_export.json", json.dumps(
            {"run": str(run.path.resolve()), "checkpoint": source.name, "step": step, "kind": kind}, indent=1))
    return ExportResult(out, source, kind, step)


def _write(source: Path, tmp: Path, base_path: str, revision: str | None, dtype: str, merged: bool) -> str:
    tokenizer = load_tokenizer(source)
    if not is_adapter_dir(source):
        load_model(source, dtype).save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        return "full"
    base = resolve_model_path(base_path, revision).resolve()
    if merged:
        model = load_adapter(load_model(base, dtype), source, trainable=False).merge_and_unload()
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        return "merged"
    for f in source.glob("adapter_model.*"):
        shutil.copy2(f, tmp / f.name)
    adapter_cfg = json.loads((source / ADAPTER_CONFIG).read_text())
    adapter_cfg["base_model_name_or_path"] = str(base)  # where the loader finds the base weights
    atomic_write_text(tmp / ADAPTER_CONFIG, json.dumps(adapter_cfg, indent=2, sort_keys=True))
    tokenizer.save_pretrained(tmp)
    return "adapter"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (rft train, or an rft sft NAME-sft directory)")
    p.add_argument("--out", required=True, help="directory to write")
    p.add_argument("--merged", action="store_true", help="LoRA runs: fold the adapter into the base weights")
    p.add_argument("--checkpoint", default="latest", help="latest (default), best or step_N")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")


def run(args: argparse.Namespace) -> int:
    res = export(args.run_dir, args.out, merged=args.merged, checkpoint=args.checkpoint, overwrite=args.overwrite)
    what = {"full": "model weights", "adapter": "LoRA adapter (loads with its base)", "merged": "merged weights"}
    step = f" (step {res.step})" if res.step is not None else ""
    print(f"exported {what[res.kind]} from {res.source}{step} to {res.out}")
    return 0
