"""Checkpoints: model + tokenizer (save_pretrained), optimizer, scheduler, RNG states and the
trainer state (step, data cursor, best validation), assembled in a temporary directory and renamed
into place only when complete (:func:`rft.files.atomic_directory`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from rft.files import atomic_directory, atomic_write_text
from rft.runs import RunDir


def save_checkpoint(
    run: RunDir, name: str, *, model: Any, tokenizer: Any, optimizer: Any, scheduler: Any,
    rng: dict[str, Any], state: dict[str, Any], latest: bool,
    model_state: dict[str, Any] | None = None, optimizer_state: dict[str, Any] | None = None,
) -> Path:
    """``model_state`` / ``optimizer_state`` replace the objects' own state dicts (FSDP gathers full
    ones from the shards: rft.distributed.Dist.checkpoint_states)."""
    final = run.checkpoints_dir / name
    with atomic_directory(final) as tmp:
        model.save_pretrained(tmp, state_dict=model_state)
        tokenizer.save_pretrained(tmp)
        torch.save(optimizer_state if optimizer_state is not None else optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        torch.save(rng, tmp / "rng.pt")
        atomic_write_text(tmp / "trainer_state.json", json.dumps(state, indent=1, sort_keys=True))
    if latest:
        run.mark_latest(name)
    return final


def load_training_state(ckpt: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(trainer_state, optimizer_state, scheduler_state, rng) of a checkpoint directory."""
    state = json.loads((ckpt / "trainer_state.json").read_text())
    opt = torch.load(ckpt / "optimizer.pt", weights_only=False)
    sched = torch.load(ckpt / "scheduler.pt", weights_only=False)
    rng = torch.load(ckpt / "rng.pt", weights_only=False)
    return state, opt, sched, rng
