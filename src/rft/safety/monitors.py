"""Reward-hacking monitors: pure rules over the metric records that training writes.

:class:`Monitors` reads each ``train`` record (one per GRPO step) and each validation, and returns
:class:`Alert` objects; it does no I/O. :func:`emit_alerts` prints them, appends them to
``metrics.jsonl`` as ``{"type": "alert", "step", "monitor", "message", ...values}`` and says whether
one of them is in ``monitors.stop_on``. ``start`` is the mean over the first ``window`` train steps,
``recent`` the mean over the last ``window`` (rules on trends wait for ``2 * window`` steps, so the
two never overlap). The rules, thresholds from ``MonitorsConfig``:

- ``divergence``: at a validation, train ``reward_mean`` recent - start >= ``divergence_reward_rise``
  while held-out ``val/pass@1`` gained less than ``divergence_min_val_gain`` since the first
  validation (the grader pays for something the held-out accuracy does not see);
- ``length``: recent ``completion_len_mean`` >= ``length_ratio`` x start; in a multi-turn run the
  length of one model turn, ``episode/turn_len_mean`` (more turns are not longer answers);
- ``truncation``: recent ``truncated_frac`` - start >= ``truncation_rise``;
- ``repetition``: recent ``repetition`` (repeated n-gram share, :func:`repetition_rate`) - start
  >= ``repetition_rise``;
- ``format``: start - recent format score >= ``format_drop``, where the format score is the
  ``grader/format/mean`` of a ``format`` grader or the ``grader/<kind>/format`` component of a
  ``multi`` grader with a sub-grader named ``format``;
- ``kl_spike``: one step's ``kl`` > ``kl_spike_ratio`` x the mean of the previous ``window`` steps
  and > ``kl_min``;
- ``entropy_collapse``: recent ``entropy`` <= ``entropy_ratio`` x start;
- ``zero_signal``: ``frac_zero_std_groups`` >= ``zero_signal_frac`` for ``zero_signal_steps``
  consecutive steps (groups with equal rewards carry no gradient).
- ``capability`` (at a validation, from the capability guard, :mod:`rft.safety.capability`):
  general-text NLL rose by >= ``capability_nll_rise`` of its start value, or the policy's KL to the
  reference on that text is >= ``capability_kl``.
- ``nonfinite``: the step's loss or gradient was NaN or inf and its update was skipped
  (``update_skipped_nonfinite``, :mod:`rft.grpo.update`). Unlike the rules above it fires on every
  such step, even with ``monitors.enabled: false``; :attr:`Monitors.nonfinite_run` counts them in a
  row (across a resume too), and at ``grpo.max_nonfinite_steps`` :func:`emit_alerts` logs the alert
  and raises :class:`~rft.training.checkpoint.NonFiniteError`: the run stops with one line naming the cause.

Each rule fires once when its condition becomes true and re-arms when it clears (the trend rules
after ``window`` clear steps in a row), so a lasting condition gives one alert, not one per step. Not covered: format compliance when the grader has no
format term (no metric to watch; the rule stays silent), KL when ``grpo.beta`` is 0 (no reference
model, no ``kl`` in the record).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rft.config import MonitorsConfig


@dataclass(frozen=True)
class Alert:
    step: int
    monitor: str
    message: str
    values: dict[str, float] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        return {**self.values, "type": "alert", "step": self.step, "monitor": self.monitor, "message": self.message}


def repetition_rate(token_ids: Sequence[Sequence[int]], n: int = 4) -> float:
    """Mean over completions of the share of n-grams that repeat an earlier n-gram of the same
    completion: 1 - distinct / total (0 for a completion shorter than n tokens)."""
    rates = []
    for ids in token_ids:
        grams = [tuple(ids[i : i + n]) for i in range(len(ids) - n + 1)]
        rates.append(1.0 - len(set(grams)) / len(grams) if grams else 0.0)
    return sum(rates) / len(rates) if rates else 0.0


def format_score(record: dict[str, Any]) -> float | None:
    """The step's format compliance, or None when no format grader or component is logged."""
    if "grader/format/mean" in record:
        return float(record["grader/format/mean"])
    for key, value in record.items():
        if key.startswith("grader/") and key.endswith("/format") and isinstance(value, (int, float)):
            return float(value)
    return None


# Rules on windowed means re-arm only after ``window`` clear steps in a row: a mean hovering at its
# threshold (entropy at the end of a converged run) would otherwise raise an alert every few steps.
TREND_RULES = frozenset({"length", "truncation", "repetition", "format", "entropy_collapse"})


def _mean(values: Iterable[float]) -> float:
    vals = list(values)
    return sum(vals) / len(vals) if vals else float("nan")


class Monitors:
    """Feed it records in order; it returns the alerts each one raises. ``history`` replays the
    records of a resumed run (alerts already logged are not raised again)."""

    def __init__(self, cfg: MonitorsConfig, history: Iterable[dict[str, Any]] = (),
                 max_nonfinite_steps: int = 3) -> None:
        self.cfg = cfg
        self.max_nonfinite_steps = max_nonfinite_steps  # grpo.max_nonfinite_steps: emit_alerts raises there
        self.train: list[dict[str, Any]] = []
        self.first_val: float | None = None
        self.active: set[str] = set()
        self.zero_run = 0
        self.nonfinite_run = 0  # steps in a row whose update the update gate skipped
        self.clear_run: dict[str, int] = {}  # observations since an active rule's condition last held
        for r in history:
            if r.get("type") == "train":
                self.observe_train(r)
            elif r.get("type") == "val" and "val/pass@1" in r:
                self.observe_val(int(r["step"]), r)

    # -- the rules ---------------------------------------------------------------------------
    def observe_train(self, record: dict[str, Any]) -> list[Alert]:
        self.train.append(record)
        step = int(record["step"])
        conditions: dict[str, tuple[bool, str, dict[str, float]]] = {}
        c = self.cfg
        zf = record.get("frac_zero_std_groups")
        self.zero_run = self.zero_run + 1 if zf is not None and zf >= c.zero_signal_frac else 0
        conditions["zero_signal"] = (
            self.zero_run >= c.zero_signal_steps,
            f"{self.zero_run} steps in a row with >= {c.zero_signal_frac:.0%} of groups at zero reward variance: "
            "no learning signal (raise sampling.temperature or num_generations, or pick prompts of the right difficulty)",
            {"frac_zero_std_groups": float(zf or 0.0), "consecutive_steps": float(self.zero_run)},
        )
        self._kl_rule(record, conditions)
        if len(self.train) >= 2 * c.window:
            self._trend_rules(conditions)
        return self._fire(step, conditions) + self._nonfinite(step, record)

    def _nonfinite(self, step: int, record: dict[str, Any]) -> list[Alert]:
        """The update gate's alert, on every step it skipped (not a trend: each one is an event)."""
        self.nonfinite_run = self.nonfinite_run + 1 if record.get("update_skipped_nonfinite") else 0
        if not self.nonfinite_run:
            return []
        loss, norm = (float("nan") if record.get(k) is None else float(record[k]) for k in ("loss", "grad_norm"))
        return [Alert(step, "nonfinite", f"the loss ({loss}) or gradient norm ({norm}) was not finite: the update was "
                      f"skipped, weights and optimizer state unchanged ({self.nonfinite_run} such steps in a row; "
                      "lower grpo.lr, check the model's dtype)",
                      {"loss": loss, "grad_norm": norm, "consecutive_steps": float(self.nonfinite_run)})]

    def observe_val(self, step: int, val: dict[str, Any]) -> list[Alert]:
        c = self.cfg
        conditions: dict[str, tuple[bool, str, dict[str, float]]] = {}
        if "val/cap/nll_rise" in val:
            rise, kl = float(val["val/cap/nll_rise"]), float(val.get("val/cap/kl", 0.0))
            conditions["capability"] = (
                rise >= c.capability_nll_rise or kl >= c.capability_kl,
                f"general-text NLL {rise:+.1%} since the start (alert at {c.capability_nll_rise:+.0%}), KL to the "
                f"reference {kl:.4f} nats/token (alert at {c.capability_kl}): the policy is losing general ability "
                "(lower grpo.lr, raise grpo.beta, or keep an earlier checkpoint)",
                {"cap/nll_rise": rise, "cap/kl": kl},
            )
        p1 = float(val["val/pass@1"])
        if self.first_val is None:
            self.first_val = p1
        elif len(self.train) >= 2 * c.window:
            rise = self._recent("reward_mean") - self._start("reward_mean")
            gain = p1 - self.first_val
            conditions["divergence"] = (
                rise >= c.divergence_reward_rise and gain < c.divergence_min_val_gain,
                f"train reward rose by {rise:+.3f} while held-out pass@1 moved {gain:+.3f} "
                f"({self.first_val:.3f} -> {p1:.3f}): the grader may pay for something other than correctness "
                "(audit it with `rft audit`, read the samples)",
                {"reward_rise": rise, "val_pass@1_gain": gain, "val/pass@1": p1},
            )
        return self._fire(step, conditions)

    def _kl_rule(self, record: dict[str, Any], conditions: dict[str, Any]) -> None:
        c = self.cfg
        prev = [r["kl"] for r in self.train[-c.window - 1 : -1] if r.get("kl") is not None]
        kl = record.get("kl")
        if kl is None or len(prev) < c.window:
            return
        base = _mean(prev)
        conditions["kl_spike"] = (
            kl > c.kl_min and kl > c.kl_spike_ratio * base,
            f"KL to the reference jumped to {kl:.4f} ({kl / base if base > 0 else float('inf'):.1f}x the mean "
            f"{base:.4f} of the previous {c.window} steps): the policy is moving fast (lower grpo.lr, raise grpo.beta)",
            {"kl": float(kl), "kl_prev_mean": base},
        )

    def _trend_rules(self, conditions: dict[str, Any]) -> None:
        c = self.cfg
        per_turn = "episode/turn_len_mean" in self.train[-1]
        key = "episode/turn_len_mean" if per_turn else "completion_len_mean"
        L0, L = self._start(key), self._recent(key)
        what = "model turn" if per_turn else "completion"
        conditions["length"] = (
            L0 > 0 and L >= c.length_ratio * L0,
            f"mean {what} length grew {L / L0 if L0 > 0 else float('inf'):.1f}x ({L0:.1f} -> {L:.1f} tokens): "
            "length may be what pays (check the grader for a length loophole, add an `overlong` penalty)",
            {"completion_len_start": L0, "completion_len_recent": L},
        )
        t0, t = self._start("truncated_frac"), self._recent("truncated_frac")
        conditions["truncation"] = (
            t - t0 >= c.truncation_rise,
            f"truncated completions rose from {t0:.0%} to {t:.0%}: answers run into sampling.max_new_tokens",
            {"truncated_start": t0, "truncated_recent": t},
        )
        r0, r = self._start("repetition"), self._recent("repetition")
        conditions["repetition"] = (
            r - r0 >= c.repetition_rise,
            f"repeated {c.repetition_ngram}-grams rose from {r0:.0%} to {r:.0%} of completions' n-grams: "
            "degenerate looping (add a `repetition` penalty, lower grpo.lr)",
            {"repetition_start": r0, "repetition_recent": r},
        )
        f_all = [format_score(x) for x in self.train]
        if all(f is not None for f in f_all):
            f0, f = _mean(f_all[: c.window]), _mean(f_all[-c.window :])  # type: ignore[arg-type]
            conditions["format"] = (
                f0 - f >= c.format_drop,
                f"format compliance fell from {f0:.0%} to {f:.0%}",
                {"format_start": f0, "format_recent": f},
            )
        e0, e = self._start("entropy"), self._recent("entropy")
        conditions["entropy_collapse"] = (
            e0 > 0 and e <= c.entropy_ratio * e0,
            f"policy entropy collapsed from {e0:.3f} to {e:.3f} nats/token: sampling no longer explores "
            "(raise sampling.temperature, use grpo.epsilon_high, lower grpo.lr)",
            {"entropy_start": e0, "entropy_recent": e},
        )

    # -- helpers -----------------------------------------------------------------------------
    def _values(self, key: str, rows: list[dict[str, Any]]) -> list[float]:
        return [float(r[key]) for r in rows if r.get(key) is not None]

    def _start(self, key: str) -> float:
        return _mean(self._values(key, self.train[: self.cfg.window]))

    def _recent(self, key: str) -> float:
        return _mean(self._values(key, self.train[-self.cfg.window :]))

    def _fire(self, step: int, conditions: dict[str, tuple[bool, str, dict[str, float]]]) -> list[Alert]:
        alerts = []
        for name, (holds, message, values) in conditions.items():
            holds = bool(holds) and self.cfg.enabled  # NaN comparisons (missing metric) are False
            if holds:
                self.clear_run[name] = 0
                if name not in self.active:
                    alerts.append(Alert(step, name, message, values))
                    self.active.add(name)
            elif name in self.active:
                self.clear_run[name] = self.clear_run.get(name, 0) + 1
                if name not in TREND_RULES or self.clear_run[name] >= self.cfg.window:
                    self.active.discard(name)
        return alerts

    def stops(self, alerts: list[Alert]) -> list[Alert]:
        """The alerts named in ``monitors.stop_on``."""
        return [a for a in alerts if a.monitor in self.cfg.stop_on]


def emit_alerts(alerts: list[Alert], monitors: Monitors, run: Any, console: Any) -> bool:
    """Print and log each alert; True when one of them should end the run (``monitors.stop_on``).
    Raises NonFiniteError, once they are logged, when the update gate has skipped
    ``max_nonfinite_steps`` steps in a row: the run ends with an error, not validated or checkpointed."""
    for a in alerts:
        run.log_metrics(a.record())
        console.print(f"[bold yellow]alert[/] step {a.step} [bold]{a.monitor}[/]: {a.message}")
    nonfinite = [a for a in alerts if a.monitor == "nonfinite"]
    if nonfinite and monitors.nonfinite_run >= monitors.max_nonfinite_steps:
        raise _nonfinite_stop(nonfinite[-1], monitors, run)
    stopping = monitors.stops(alerts)
    if stopping:
        console.print(f"[bold red]stopping[/]: {', '.join(a.monitor for a in stopping)} is in monitors.stop_on; "
                      "the run is validated and checkpointed (best by validation in checkpoints/best)")
    return bool(stopping)


def _nonfinite_stop(alert: Alert, monitors: Monitors, run: Any) -> Exception:
    """The one-line error that ends a run whose last updates were all skipped as non-finite."""
    from rft.training.checkpoint import NonFiniteError

    run.close()  # flush the metric sinks: the loop does not get to
    v, n = alert.values, monitors.nonfinite_run
    return NonFiniteError(
        f"step {alert.step}: the loss or gradient was NaN or inf in {n} steps in a row (loss {v['loss']}, grad norm "
        f"{v['grad_norm']}; grpo.max_nonfinite_steps = {monitors.max_nonfinite_steps}): their updates were skipped "
        f"and the run stopped; the last good checkpoint is {run.latest_checkpoint() or 'none yet'}. Lower grpo.lr, "
        "or train in model.dtype float32")
