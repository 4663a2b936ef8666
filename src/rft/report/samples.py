"""Which sampled completions the report shows: a few logged steps, and in each the best and the
worst completion of a few groups, side by side.

Reads ``samples/step_N.jsonl`` (train rows: ``group``, ``prompt``, ``completion``, ``score``,
``reason``, ``advantage``). Steps are spread evenly over training (first, last and between); in a
step, groups whose scores differ come first (they carry the learning signal), then the rest.
Not covered: validation samples (``val_step_N.jsonl``), searching for specific failure modes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rft.files import jsonl_lines


@dataclass
class GroupPair:
    step: int
    group: int
    prompt: str
    best: dict[str, Any]
    worst: dict[str, Any]
    scores: list[float]


def spread(items: list[Any], n: int) -> list[Any]:
    """Up to ``n`` items evenly spaced, always including the first and the last."""
    if len(items) <= n:
        return list(items)
    if n == 1:
        return [items[-1]]
    return [items[round(i * (len(items) - 1) / (n - 1))] for i in range(n)]


def pick_pairs(rows: list[dict[str, Any]], step: int, n_groups: int) -> list[GroupPair]:
    """Best and worst completion of up to ``n_groups`` groups; groups with mixed scores first."""
    groups: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(int(r.get("group", 0)), []).append(r)
    pairs = []
    for g, members in groups.items():
        ranked = sorted(members, key=lambda r: float(r.get("score") or 0.0))
        pairs.append(GroupPair(step, g, str(members[0].get("prompt", "")), ranked[-1], ranked[0],
                               [float(r.get("score") or 0.0) for r in members]))
    pairs.sort(key=lambda p: (max(p.scores) == min(p.scores), p.group))
    return pairs[:n_groups]


def sample_steps(run_dir: Path) -> list[tuple[int, Path]]:
    out = []
    for path in (run_dir / "samples").glob("step_*.jsonl"):
        m = re.fullmatch(r"step_(\d+)\.jsonl", path.name)
        if m:
            out.append((int(m.group(1)), path))
    return sorted(out)


def read_rows(path: Path) -> list[dict[str, Any]]:
    rows = []
    for _, row, torn in jsonl_lines(path):
        if torn:
            break  # a torn last line: the rows before it
        rows.append(row)
    return rows


def report_samples(run_dir: Path, n_steps: int = 4, n_groups: int = 2) -> list[GroupPair]:
    """The pairs the report shows for one run, over ``n_steps`` logged steps spread across training."""
    pairs = []
    for step, path in spread(sample_steps(run_dir), n_steps):
        pairs += pick_pairs(read_rows(path), step, n_groups)
    return pairs
