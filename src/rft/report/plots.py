"""The report's plots: pure functions from metric records to panel data, and one renderer to PNG.

:func:`build_panels` reads the records of one or more runs (``metrics.jsonl`` as lists of dicts) and
returns :class:`Panel` objects -- the numbers to draw, no matplotlib involved -- so the data path is
tested with hand-made records. :func:`render_png` draws one panel with matplotlib's Agg backend.

Panels (each drawn only when some run recorded its metric): train reward mean with a +-std band;
held-out metrics (``val/pass@*``, ``val/maj@*``, ``val/match_<field>``, ``val/mean_reward``); completion length mean and max;
truncated share; KL; entropy; per-grader mean score (``grader/<type>/mean``); zero-variance group
share; seconds per phase (``time/<phase>``); loss, gradient norm and learning
rate. Several runs overlay on the same axes: the run picks the colour, the metric the line style.
Monitor alerts (records with ``"type": "alert"``) are dashed vertical lines at their step on every
panel of their run. Not covered: smoothing, log scales, x-axes other than the step.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from typing import Any

RunRecords = tuple[str, list[dict[str, Any]]]  # (run label, its metrics.jsonl records)


@dataclass
class Series:
    label: str
    run: int  # index of the run: picks the colour
    style: int  # index of the metric within the panel: picks the line style
    x: list[float]
    y: list[float]
    band: tuple[list[float], list[float]] | None = None  # (low, high) per point


@dataclass
class Panel:
    key: str
    title: str
    ylabel: str
    series: list[Series] = field(default_factory=list)
    alerts: list[tuple[int, float, str]] = field(default_factory=list)  # (run, step, "monitor: message")


# (key, title, y label, record type, metric names or a prefix/suffix rule)
_PANELS: list[tuple[str, str, str, str, list[str]]] = [
    ("reward", "Train reward (mean ± std)", "reward", "train", ["reward_mean"]),
    ("val", "Held-out metrics", "share", "val", ["val/pass@*", "val/maj@*", "val/match_*", "val/mean_reward"]),
    ("val_sampled", "Held-out sampled pass@k (unbiased) and maj@k", "share", "val",
     ["val/sampled/pass@*", "val/sampled/maj@*"]),
    ("val_graders", "Held-out mean reward per grader", "score", "val", ["val/reward/*"]),
    ("capability", "Capability guard: general text vs the start", "relative NLL rise / KL", "val",
     ["val/cap/nll_rise", "val/cap/kl"]),
    ("length", "Completion length", "tokens", "train", ["completion_len_mean", "completion_len_max"]),
    ("episodes", "Episodes: turns, and success within k turns (train)", "turns / share", "train",
     ["episode/turns_mean", "episode/success_by_turn_*"]),
    ("val_episodes", "Held-out episodes: turns, and success within k turns", "turns / share", "val",
     ["val/episode/turns_mean", "val/episode/success_by_turn_*"]),
    ("episode_tokens", "Episode tokens by role", "tokens", "train",
     ["episode/model_tokens_mean", "episode/observation_tokens_mean", "episode/turn_len_mean"]),
    ("episode_end", "Why episodes ended", "share", "train", ["episode/end/*"]),
    ("truncation", "Truncated completions", "share", "train", ["truncated_frac"]),
    ("kl", "KL to the reference", "KL", "train", ["kl"]),
    ("entropy", "Policy entropy", "nats / token", "train", ["entropy"]),
    ("graders", "Per-grader mean score", "score", "train", ["grader/*/mean"]),
    ("zero_std", "Groups with zero reward variance", "share", "train", ["frac_zero_std_groups"]),
    ("dynamic", "Dynamic sampling: groups sampled and kept per step", "groups", "train", ["dynamic/*"]),
    ("time", "Seconds per phase", "seconds", "train", ["time/*"]),
    ("loss", "Loss", "loss", "train", ["loss"]),
    ("grad_norm", "Gradient norm", "norm", "train", ["grad_norm"]),
    ("lr", "Learning rate", "lr", "train", ["lr"]),
]


def _matches(pattern: str, key: str) -> bool:
    if "*" not in pattern:
        return key == pattern
    head, _, tail = pattern.partition("*")
    return key.startswith(head) and key.endswith(tail) and len(key) > len(head) + len(tail)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def metric_keys(records: list[dict[str, Any]], kind: str, patterns: list[str]) -> list[str]:
    """Keys of ``kind`` records matching ``patterns``, in the order the patterns list, then first seen."""
    seen: dict[str, None] = {}
    for pattern in patterns:
        for r in records:
            if r.get("type", "train") != kind:
                continue
            for k in r:
                if _matches(pattern, k) and _number(r[k]) is not None:
                    seen.setdefault(k, None)
    return list(seen)


def series_of(records: list[dict[str, Any]], kind: str, key: str) -> tuple[list[float], list[float]]:
    """(steps, values) of ``key`` in ``kind`` records, sorted by step; missing or non-finite values skipped.
    A step logged twice (a resumed run) keeps its last value."""
    points: dict[float, float] = {}
    for r in records:
        if r.get("type", "train") == kind and "step" in r and (v := _number(r.get(key))) is not None:
            points[float(r["step"])] = v
    steps = sorted(points)
    return steps, [points[s] for s in steps]


def alerts_of(records: list[dict[str, Any]]) -> list[tuple[float, str]]:
    return [(float(r.get("step", 0)), f"{r.get('monitor', 'alert')}: {r.get('message', '')}")
            for r in records if r.get("type") == "alert"]


def _label(run: str, metric: str, n_runs: int, n_metrics: int) -> str:
    if n_runs == 1:
        return metric
    return run if n_metrics == 1 else f"{run}: {metric}"


def build_panels(runs: list[RunRecords]) -> list[Panel]:
    """One :class:`Panel` per plot that has data in at least one run, in a fixed order."""
    panels = []
    for key, title, ylabel, kind, patterns in _PANELS:
        panel = Panel(key, title, ylabel)
        keys_per_run = [metric_keys(records, kind, patterns) for _, records in runs]
        all_keys = list(dict.fromkeys(k for ks in keys_per_run for k in ks))
        for i, ((name, records), keys) in enumerate(zip(runs, keys_per_run)):
            for k in keys:
                x, y = series_of(records, kind, k)
                band = None
                if key == "reward":
                    std = dict(zip(*series_of(records, kind, "reward_std")))
                    band = ([v - std.get(s, 0.0) for s, v in zip(x, y)], [v + std.get(s, 0.0) for s, v in zip(x, y)])
                panel.series.append(Series(_label(name, k, len(runs), len(all_keys)), i, all_keys.index(k), x, y, band))
            if keys:
                panel.alerts += [(i, step, text) for step, text in alerts_of(records)]
        if panel.series:
            panels.append(panel)
    return panels


# Panels of multi-turn runs only: a single-turn run's report does not list them as missing.
_EPISODE_PANELS = {"episodes", "val_episodes", "episode_tokens", "episode_end"}


def missing_panels(panels: list[Panel]) -> list[str]:
    """Titles of the plots no run had data for (e.g. KL when ``grpo.beta`` is 0)."""
    have = {p.key for p in panels}
    return [title for key, title, *_ in _PANELS if key not in have and key not in _EPISODE_PANELS]


_STYLES = ["-", "--", ":", "-."]


def render_png(panel: Panel, width_in: float = 6.0, height_in: float = 3.4, dpi: int = 100) -> bytes:
    """Draw one panel to PNG bytes (Agg backend; no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(width_in, height_in), dpi=dpi)
    ax = fig.add_subplot()
    colors = [f"C{i % 10}" for i in range(10)]
    for s in panel.series:
        color = colors[s.run % 10] if len({t.run for t in panel.series}) > 1 else colors[s.style % 10]
        style = _STYLES[s.style % len(_STYLES)] if len({t.run for t in panel.series}) > 1 else "-"
        ax.plot(s.x, s.y, style, color=color, label=s.label, marker="o" if len(s.x) < 30 else None, markersize=3)
        if s.band is not None:
            ax.fill_between(s.x, s.band[0], s.band[1], color=color, alpha=0.2, linewidth=0)
    for run, step, text in panel.alerts:
        ax.axvline(step, color="red", linestyle="--", linewidth=1, alpha=0.8)
        ax.annotate("!", (step, 0.98), xycoords=("data", "axes fraction"), color="red", ha="left", va="top",
                    fontweight="bold")
    ax.set_title(panel.title, fontsize=10)
    ax.set_xlabel("step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(panel.ylabel)
    ax.grid(True, alpha=0.3)
    if len(panel.series) > 1:
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
