"""Checkpoints: model + tokenizer (save_pretrained), optimizer, scheduler, RNG states and the
trainer state (step, data cursor, best validation), assembled in a temporary directory and renamed
into place only when complete (:func:`rft.files.atomic_directory`).

A checkpoint is never written from a model holding NaN or inf: the caller checks
:func:`nonfinite_parameters` first (:func:`rft.training.distributed.save_checkpoint_on_main`, every rank) and
raises :class:`NonFiniteError`, so ``checkpoints/latest`` keeps naming the last good one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from rft.files import atomic_directory, atomic_write_text
from rft.training.run_dir import RunDir


class NonFiniteError(RuntimeError):
    """Training met a NaN or inf it cannot go past: a model that is no longer finite, or the loss or
    gradient non-finite for ``grpo.max_nonfinite_steps`` steps in a row. The message is one line
    naming the cause; ``rft train`` exits with status 2 and the last checkpoint is intact."""


def nonfinite_parameters(model: Any, limit: int = 3) -> list[str]:
    """The names of (at most ``limit``) parameters of ``model`` that hold a NaN or inf."""
    bad = []
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not bool(torch.isfinite(p).all()):
                bad.append(name)
                if len(bad) >= limit:
                    break
    return bad


def save_checkpoint(
    run: RunDir, name: str, *, model: Any, tokenizer: Any, optimizer: Any, scheduler: Any,
    rng: dict[str, Any], state: dict[str, Any], latest: bool,
    model_state: dict[str, Any] | None = None, optimizer_state: dict[str, Any] | None = None,
) -> Path:
    """``model_state`` / ``optimizer_state`` replace the objects' own state dicts (FSDP gathers full
    ones from the shards: rft.training.distributed.Dist.checkpoint_states)."""
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
