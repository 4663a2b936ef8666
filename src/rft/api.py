"""The Python API: ``rft.train``, ``rft.training.evaluate`` and ``rft.commands.grade``, the commands as functions.

``config`` is a YAML path, a dict of sections or a :class:`~rft.config.Config` (``None``: the
defaults). On top of it, in this order: ``overrides`` (``--set``-style ``"grpo.steps=50"`` strings,
or a dict ``{"grpo.steps": 50}``), then keyword sections (``grpo={"steps": 50}`` merges into the
``grpo`` section; ``name="x"`` sets a top-level field). The result is validated once, exactly like
a file (:class:`~rft.config.ConfigError` names the field).

``grader`` may be a spec dict or a Python callable (:mod:`rft.graders.callables`: ``reward(completion,
example) -> float | Grade`` or TRL's ``f(prompts, completions, **kw) -> list[float]``). A callable
is graded in this process (``grading.workers`` becomes 0) through the same ``safe_grade`` path as
every grader; ``config.yaml`` records its ``module:qualname``.

Not covered: several reward callables at once (combine them in one function, or give a ``multi``
spec of ``function:`` references), ``torchrun`` (use the CLI), resuming a callable grader from
``config.yaml`` unless it is importable by its recorded name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from rft.config import (
    Config,
    ConfigError,
    apply_overrides,
    config_from_dict,
    load_config,
)
from rft.console import Console

GraderArg = dict[str, Any] | Callable[..., Any] | None


@dataclass
class TrainResult:
    """What ``rft.train`` returns: where the run is and how it ended."""

    run_dir: Path
    metrics: dict[str, float]  # the last held-out validation (val/pass@1, ...)
    first_metrics: dict[str, float]  # the validation before step 1
    best_pass_at_1: float
    steps: int
    best_checkpoint: Path | None = None  # checkpoints/best: saved when a validation beat the one before step 1
    checkpoint: Path | None = None  # the last complete checkpoint (checkpoints/latest names it)
    config: Config | None = field(default=None, repr=False)


def _merge(raw: dict[str, Any], sections: dict[str, Any]) -> dict[str, Any]:
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            _merge(raw[key], value)
        else:
            raw[key] = value
    return raw


def _grader_spec(grader: GraderArg) -> tuple[dict[str, Any] | None, bool]:
    """(spec, whether it names an in-process callable)."""
    from rft.graders.callables import register

    if grader is None or isinstance(grader, dict):
        return grader, False
    return register(grader), True


def build_config(config: str | Path | dict[str, Any] | Config | None = None,
                 overrides: list[str] | dict[str, Any] | None = None, *, grader: GraderArg = None,
                 **sections: Any) -> Config:
    """The validated :class:`Config` from ``config``, ``overrides``, a grader and keyword sections."""
    if isinstance(config, Config):
        raw = config.model_dump(mode="json", exclude_unset=True)
    elif isinstance(config, dict):
        raw = json.loads(json.dumps(config))  # a copy; the caller's dict is not changed
    elif config is None:
        raw = {}
    else:
        raw = load_config(config).model_dump(mode="json", exclude_unset=True)
    if isinstance(overrides, dict):
        overrides = [f"{k}={json.dumps(v)}" for k, v in overrides.items()]  # JSON is YAML
    elif isinstance(overrides, str):
        raise ConfigError(f"overrides={overrides!r}: pass a list of 'key=value' strings or a dict")
    raw = apply_overrides(raw, list(overrides or []))
    _merge(raw, sections)
    spec, in_process = _grader_spec(grader)
    if spec is not None:
        raw["grader"] = spec
    if in_process:
        _merge(raw, {"grading": {"workers": 0}})  # the callable exists in this process only
    return config_from_dict(raw)


def train(config: str | Path | dict[str, Any] | Config | None = None,
          overrides: list[str] | dict[str, Any] | None = None, *, grader: GraderArg = None,
          resume: str | Path | None = None, overwrite: bool = False, quiet: bool = False,
          **sections: Any) -> TrainResult:
    """GRPO training, as ``rft train``; returns a :class:`TrainResult`. See the module doc for the arguments."""
    from rft.grpo.train import train as run_train

    cfg = build_config(config, overrides, grader=grader, **sections)
    r = run_train(cfg, resume=resume, overwrite=overwrite, console=Console(quiet))
    ckpts = r.run_dir.resolve() / "checkpoints"
    best, latest = ckpts / "best", ckpts / "latest"
    last = ckpts / latest.read_text().strip() if latest.is_file() else None
    return TrainResult(r.run_dir.resolve(), r.last_val, r.first_val, r.best_val, r.steps,
                       best if best.is_dir() else None, last, cfg)


def evaluate(models: str | list[str], data: str, *, grader: GraderArg = None, samples: int = 0,
             max_new_tokens: int | None = None, quiet: bool = True, **settings: Any) -> list[Any]:
    """Held-out greedy pass@1 (and pass@k with ``samples``) of models or run directories on ``data``,
    as ``rft eval``; returns one :class:`rft.commands.eval.ModelResult` per model. ``settings`` are
    ``eval_command``'s other keywords (``checkpoint``, ``temperature``, ``device``, ``out``, ...)."""
    from rft.commands.eval import eval_command

    spec, in_process = _grader_spec(grader)
    if in_process:
        settings["workers"] = 0
    return eval_command([models] if isinstance(models, str) else list(models), data,
                        grader=None if spec is None else json.dumps(spec), samples=samples,
                        max_new_tokens=max_new_tokens, quiet=quiet, **settings)


def grade(grader: dict[str, Any] | Callable[..., Any], completions: list[str],
          examples: list[dict[str, Any]], workers: int = 0) -> list[Any]:
    """One :class:`~rft.graders.base.Grade` per (completion, example row), as ``rft grade`` scores
    them. A row is a dict with ``prompt`` (and ``id``) plus the grader's fields."""
    from rft.data import Example
    from rft.graders.pool import GraderPool
    from rft.graders.registry import check_specs

    if len(completions) != len(examples):
        raise ValueError(f"grade: {len(completions)} completions for {len(examples)} examples; give one per example")
    spec, in_process = _grader_spec(grader)
    rows = []
    for i, row in enumerate(examples):
        fields = {k: v for k, v in row.items() if k not in ("id", "prompt", "grader")}
        rows.append(Example(str(row.get("id", i)), row.get("prompt", ""), fields, row.get("grader")))
    check_specs(spec, rows, flag="grader")
    with GraderPool(spec, workers=0 if in_process else workers) as pool:
        return pool.grade(list(completions), rows)
