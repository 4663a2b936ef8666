"""Attribution: how much of a run's held-out gain the grader explains, measured against a control arm.

A control run (``grpo.control``, :mod:`rft.grpo.control`) is the same config trained on rewards whose
link to the completions was destroyed. Both runs start from the same model and are validated greedily
on the same held-out problems, so per problem i the paired difference of gains is
``d_i = (real_final_i - real_start_i) - (control_final_i - control_start_i)`` (each 0 or 1). The
grader explains ``mean(d)`` of the real gain; a percentile bootstrap over problems (resampling
problems, 2,000 draws by default) gives its 95 % interval. Also reported: what moved in the control
(every held-out metric both validations logged, and the held-out completions' mean length), so that a
control's gain can be read -- format drift, shorter replies, fewer extraction failures.

Not covered: variance across training seeds (the interval is over problems for these two runs; run
several seeds for that), and runs whose held-out sets differ (refused).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


class AttributionError(ValueError):
    """The two runs cannot be compared (not a control, no validations, different held-out sets)."""


@dataclass
class Attribution:
    control: str
    n: int  # held-out problems
    real_gain: float  # points (percent of problems), final minus start
    control_gain: float
    diff: float  # real_gain - control_gain
    low: float  # 95 % bootstrap interval of diff
    high: float
    moved: dict[str, tuple[float, float]] = field(default_factory=dict)  # the control's start -> final

    @property
    def verdict(self) -> str:
        interval = f"95% CI {self.low:+.1f} to {self.high:+.1f}"
        if self.low > 0 and self.control_gain <= 0:  # the control lost ground: no share of the gain is the optimizer's
            return (f"the grader explains all {self.real_gain:+.1f} points of the real gain: the {self.control} "
                    f"control moved {self.control_gain:+.1f} (real minus control {self.diff:+.1f}, {interval})")
        if self.low > 0:
            return (f"the grader explains {self.diff:.1f} of {self.real_gain:.1f} points ({interval}); "
                    f"the {self.control} control gained {self.control_gain:+.1f}")
        if self.high < 0:
            return (f"the {self.control} control gained more than the real run ({self.control_gain:+.1f} vs "
                    f"{self.real_gain:+.1f} points, {interval}): the grader's signal did not help")
        return (f"the gain is not distinguishable from the {self.control} control's ({self.real_gain:+.1f} vs "
                f"{self.control_gain:+.1f} points; difference {self.diff:+.1f}, {interval})")


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _config_control(run: Path) -> str:
    import yaml

    cfg = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8")) or {}
    return str((cfg.get("grpo") or {}).get("control", "none"))


def validations(run: Path) -> tuple[dict[str, bool], dict[str, bool], int]:
    """(passed per held-out id at step 0, at the last validation, that step) of one run."""
    files = sorted((run / "samples").glob("val_passed_step_*.jsonl"))
    if len(files) < 2 or files[0].stem != "val_passed_step_000000":
        raise AttributionError(f"{run}: needs its step-0 and a later validation's per-problem results "
                               "(samples/val_passed_step_*.jsonl, written by rft train); train it to a validation")
    first, last = ({str(r["id"]): bool(r["passed"]) for r in _jsonl(f)} for f in (files[0], files[-1]))
    return first, last, int(files[-1].stem.rsplit("_", 1)[1])


def _val_metrics(run: Path, step: int) -> dict[str, float]:
    rows = [r for r in _jsonl(run / "metrics.jsonl") if r.get("type") == "val" and r.get("step") == step]
    return {k: float(v) for k, v in (rows[-1] if rows else {}).items()
            if k.startswith("val/") and isinstance(v, (int, float)) and not isinstance(v, bool)}


def _completion_chars(run: Path, step: int) -> float | None:
    path = run / "samples" / f"val_step_{step:06d}.jsonl"
    rows = _jsonl(path) if path.is_file() else []
    return sum(len(r.get("completion", "")) for r in rows) / len(rows) if rows else None


def what_moved(run: Path, last_step: int) -> dict[str, tuple[float, float]]:
    """Held-out metrics of ``run`` that changed between step 0 and ``last_step``: (start, final)."""
    start, final = _val_metrics(run, 0), _val_metrics(run, last_step)
    moved = {k: (start[k], final[k]) for k in sorted(start.keys() & final.keys()) if start[k] != final[k]}
    a, b = _completion_chars(run, 0), _completion_chars(run, last_step)
    if a is not None and b is not None and a != b:
        moved["completion chars (mean)"] = (a, b)
    return moved


def attribute(real: str | Path, control: str | Path, draws: int = 2000, seed: int = 0) -> Attribution:
    """The real run's held-out gain, the control's, and their difference with a bootstrap 95 % interval."""
    real, control = Path(real), Path(control)
    mode = _config_control(control)
    if mode == "none":
        raise AttributionError(f"{control}: not a control run (its config.yaml has no grpo.control); "
                               "pass the real run first and its control second")
    if _config_control(real) != "none":
        raise AttributionError(f"{real}: is itself a control run ({_config_control(real)}); pass the real run first")
    r0, r1, _ = validations(real)
    c0, c1, c_step = validations(control)
    if not (r0.keys() == r1.keys() == c0.keys() == c1.keys()):
        raise AttributionError(f"{real} and {control} were validated on different held-out problems; "
                               "a control must share the real run's held-out set (same data, seed and eval.size)")
    ids = sorted(r0)
    if not ids:
        raise AttributionError(f"{real}: its validations hold no held-out problems")
    d = np.array([(r1[i] - r0[i]) - (c1[i] - c0[i]) for i in ids], dtype=np.float64)
    means = d[np.random.default_rng(seed).integers(0, len(d), size=(draws, len(d)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    real_gain = 100.0 * sum(r1[i] - r0[i] for i in ids) / len(ids)
    control_gain = 100.0 * sum(c1[i] - c0[i] for i in ids) / len(ids)
    return Attribution(mode, len(ids), real_gain, control_gain, real_gain - control_gain,
                       100.0 * float(low), 100.0 * float(high), what_moved(control, c_step))


def is_control(run: str | Path) -> bool:
    """Whether ``run`` is a control arm (its config.yaml sets grpo.control)."""
    return (Path(run) / "config.yaml").is_file() and _config_control(Path(run)) != "none"


def attribution_lines(real: str | Path, control: str | Path) -> list[str]:
    """What `rft report REAL CONTROL` and `rft train --control` print: the gains, the verdict, what
    moved in the control."""
    a = attribute(real, control)
    lines = [f"held-out gain on {a.n} problems: real {a.real_gain:+.1f} points, {a.control} control "
             f"{a.control_gain:+.1f} points", f"verdict: {a.verdict}"]
    lines += [f"  control moved: {k} {x:.4g} -> {y:.4g}" for k, (x, y) in a.moved.items()]
    return lines
