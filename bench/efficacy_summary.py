"""Threshold crossings shared by the rft and TRL sides of the learning-efficacy benchmarks.

No rft import: the TRL-side script runs in TRL's own venv and imports this from ``bench/``.
"""

from __future__ import annotations

from typing import Any

THRESHOLDS = (0.5, 0.8, 0.9)


def threshold_hits(evals: list[dict[str, Any]]) -> dict[str, Any]:
    """For each threshold, the first evaluation whose held-out greedy accuracy reaches it: its step,
    training seconds and wall seconds (None when never reached)."""
    out: dict[str, Any] = {}
    for thr in THRESHOLDS:
        hit = next((e for e in evals if e["heldout_greedy_acc"] >= thr), None)
        pct = int(round(thr * 100))
        out[f"steps_to_{pct}pct"] = hit["step"] if hit else None
        out[f"train_s_to_{pct}pct"] = hit["train_s"] if hit else None
        out[f"train_wall_s_to_{pct}pct"] = hit["train_wall_s"] if hit else None
    return out
