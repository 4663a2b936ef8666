"""Metric sinks: where each record of ``metrics.jsonl`` is also sent (TensorBoard, W&B, JSON lines).

:class:`rft.training.run_dir.RunDir` stays the source of truth: it appends every record to ``metrics.jsonl`` and
then hands the same dict to each sink's ``log``. A sink turns a record into its own format:

- :class:`TensorBoardSink` writes event files into the run directory (``tensorboard --logdir runs/``).
  Tags: ``train/<key>`` for train records, the key itself for validation keys (already ``val/...``),
  ``alert/<monitor>`` text for alerts. The writer is opened on the first record, with
  ``purge_step`` = that record's step, so a resumed run hides the events of the steps it redoes.
- :class:`WandbSink` logs to Weights & Biases; only built when ``report_to`` names ``wandb``, and in
  ``offline`` mode unless the user set ``WANDB_MODE`` (nothing leaves the machine by default).
- :class:`JsonLinesSink` prints each record as one JSON line (``rft train --json``).

Sinks flush after every record so that what TensorBoard shows keeps up with ``metrics.jsonl``.
Not covered: histograms, images or text samples in TensorBoard (the HTML report shows samples);
W&B artifacts or model upload.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Protocol, TextIO


class MetricsSink(Protocol):
    def log(self, record: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


def scalars(record: dict[str, Any]) -> dict[str, float]:
    """The record's finite numeric values under their TensorBoard tags (``type`` and ``step`` dropped)."""
    kind = record.get("type", "train")
    out: dict[str, float] = {}
    for key, value in record.items():
        if key in ("type", "step") or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if not math.isfinite(value):
            continue
        out[key if key.startswith(f"{kind}/") else f"{kind}/{key}"] = float(value)
    return out


class TensorBoardSink:
    def __init__(self, log_dir: str | Path) -> None:
        self.log_dir = Path(log_dir)
        self._writer: Any = None

    def log(self, record: dict[str, Any]) -> None:
        step = int(record.get("step", 0))
        if self._writer is None:
            from torch.utils.tensorboard import (
                SummaryWriter,  # imported late: tensorboard is slow to import
            )

            self._writer = SummaryWriter(str(self.log_dir), purge_step=step)
        if record.get("type") == "alert":
            self._writer.add_text(f"alert/{record.get('monitor', 'alert')}", str(record.get("message", "")), step)
        else:
            for tag, value in scalars(record).items():
                self._writer.add_scalar(tag, value, step)
        self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class WandbSink:
    """Weights & Biases, offline unless ``WANDB_MODE`` says otherwise; the run is started on first use."""

    def __init__(self, run_dir: str | Path, name: str, config: dict[str, Any]) -> None:
        self.run_dir, self.name, self.config = Path(run_dir), name, config
        self._run: Any = None

    def log(self, record: dict[str, Any]) -> None:
        if self._run is None:
            import wandb

            self._run = wandb.init(project="rft", name=self.name, dir=str(self.run_dir), config=self.config,
                                   mode=os.environ.get("WANDB_MODE", "offline"))
        if record.get("type") == "alert":
            self._run.log({f"alert/{record.get('monitor', 'alert')}": str(record.get("message", ""))},
                          step=int(record.get("step", 0)))
        else:
            self._run.log(scalars(record), step=int(record.get("step", 0)))

    def close(self) -> None:
        if self._run is not None:
            self._run.finish()
            self._run = None


class JsonLinesSink:
    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def log(self, record: dict[str, Any]) -> None:
        stream = self.stream or sys.stdout
        stream.write(json.dumps(record, sort_keys=True, allow_nan=False, default=str) + "\n")
        stream.flush()

    def close(self) -> None:
        pass


def open_sinks(report_to: list[str], run_dir: str | Path, name: str, config: dict[str, Any],
               json_lines: bool = False) -> list[MetricsSink]:
    """The sinks for one run directory, as ``report_to`` names them (validated by the config)."""
    sinks: list[MetricsSink] = []
    if "tensorboard" in report_to:
        sinks.append(TensorBoardSink(run_dir))
    if "wandb" in report_to:
        sinks.append(WandbSink(run_dir, name, config))
    if json_lines:
        sinks.append(JsonLinesSink())
    return sinks


def run_sinks(cfg: Any, run_dir: str | Path, json_lines: bool = False) -> list[MetricsSink]:
    """The sinks a training run's config asks for (``cfg.report_to``), plus JSON lines for ``--json``."""
    return open_sinks(cfg.report_to, run_dir, cfg.name, cfg.model_dump(mode="json"), json_lines)
