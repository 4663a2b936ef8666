"""A one-line start: ``rft train --model ID_OR_DIR --dataset TASK_OR_FILE --grader SPEC_OR_TYPE
[--lora] [--steps N]``, and ``rft init-config``, which writes the same config as commented YAML.

The flags become ``--set`` overrides (:func:`flag_overrides`) applied before the user's own
``--set`` and on top of a config file when one is given too, so they are validated exactly like a
file and ``config.yaml`` in the run directory records what ran:

- ``--model``: ``model.path`` (a local directory, a hub id ``ORG/NAME``, a preset or ``embedded``);
- ``--dataset``: a built-in task name (``data.task.name``), else a data file (``data.train_file``),
  else a local dataset directory or a hub dataset name ``ORG/NAME`` (``data.dataset.path``; its
  field mapping, e.g. ``data.dataset.template``, comes from ``--set`` or the config file);
- ``--grader``: a grader type (``math`` -> ``{type: math}``), ``file.py:function`` (a TRL reward
  function, ``{type: python, function: ...}``), a spec file or inline JSON (as ``rft grade``);
- ``--lora``: ``model.lora`` with its defaults; ``--steps``: ``grpo.steps``.

Not covered: choosing a hub dataset's field mapping (``--set data.dataset.template='{question}'``), and
choosing hyperparameters for the model (the config's defaults apply; the printed config shows them).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from rft.config import Config, ConfigError, load_config
from rft.config.base import SpecError
from rft.config.graders import parse_spec


def add_start_flags(p: argparse.ArgumentParser) -> None:
    """The one-line flags, on ``rft train`` and ``rft init-config``."""
    p.add_argument("--model", help="model.path: a local directory, a hub id ORG/NAME, a preset or 'embedded'")
    p.add_argument("--dataset", help="a built-in task name (arithmetic, word_problems, sql, ...), a data file, a "
                   "dataset directory or a hub dataset name ORG/NAME (data.dataset)")
    p.add_argument("--grader", help="a grader type (math), file.py:function (a TRL reward), a spec file or JSON")
    p.add_argument("--lora", action="store_true", help="train LoRA adapters (model.lora with its defaults)")
    p.add_argument("--steps", type=int, help="grpo.steps")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``rft init-config [CONFIG] [--set ...] [one-line flags] [--out FILE] [--force]``."""
    from rft.commands.common import add_config_args

    add_config_args(p)
    add_start_flags(p)
    p.add_argument("--out", default="rft.yaml", help="file to write (default rft.yaml)")
    p.add_argument("--force", action="store_true", help="replace an existing file")


def run(args: argparse.Namespace) -> int:
    print(f"wrote {init_config(args.out, start_overrides(args), args.config, args.force)}")
    return 0


def start_overrides(args: argparse.Namespace) -> list[str]:
    return flag_overrides(args.model, args.dataset, args.grader, args.lora, args.steps) + list(args.overrides)


def grader_spec(text: str) -> dict[str, Any]:
    """``--grader``: a type name, ``file.py:function`` / ``module:function``, a spec file or inline JSON."""
    stripped = text.strip()
    if stripped.isidentifier():
        spec: dict[str, Any] = {"type": stripped}
    elif ":" in stripped and not stripped.startswith("{") and not Path(stripped).is_file():
        spec = {"type": "python", "function": stripped}
    else:
        from rft.commands.grade import InputError, load_spec

        try:
            spec = load_spec(stripped)
        except InputError as e:
            raise ConfigError(str(e)) from None
    try:
        parse_spec(spec)
    except SpecError as e:
        raise ConfigError(f"--grader {text!r}: {e}") from None
    return spec


def flag_overrides(model: str | None, dataset: str | None, grader: str | None, lora: bool,
                   steps: int | None) -> list[str]:
    """The ``--set`` overrides the one-line flags stand for (empty when none is given)."""
    sets = []
    if model is not None:
        sets.append(f"model.path={json.dumps(model)}")
    if dataset is not None:
        sets += _dataset_overrides(dataset)
    if grader is not None:
        sets.append(f"grader={json.dumps(grader_spec(grader))}")
    if lora:
        sets.append("model.lora={}")
    if steps is not None:
        sets.append(f"grpo.steps={steps}")
    return sets


def _dataset_overrides(dataset: str) -> list[str]:
    """``--dataset``: a task, a data file, or (``data.dataset``) a local directory or hub dataset name."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    from rft.tasks import TASKS

    local = Path(dataset).expanduser()
    if dataset in TASKS:
        return [f"data.task.name={dataset}", "data.train_file=null", "data.dataset=null"]
    if local.is_file():
        return ["data.task=null", "data.dataset=null", f"data.train_file={json.dumps(dataset)}"]
    try:
        if not local.is_dir():
            validate_repo_id(dataset)
    except HFValidationError:
        raise ConfigError(f"--dataset {dataset!r}: not a built-in task ({', '.join(sorted(TASKS))}), an existing "
                          "file or directory, or a hub dataset name ORG/NAME; check the spelling") from None
    return ["data.task=null", "data.train_file=null", f"data.dataset.path={json.dumps(dataset)}"]


def _commented(model: BaseModel, indent: int, lines: list[str]) -> None:
    for name, info in type(model).model_fields.items():
        value, pad = getattr(model, name), "  " * indent
        note = f"  # {info.description}" if info.description else ""
        if isinstance(value, BaseModel):
            lines.append(f"{pad}{name}:{note}")
            _commented(value, indent + 1, lines)
            continue
        dumped = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
        text = yaml.safe_dump(dumped, default_flow_style=True, width=10_000).strip()
        text = text.removesuffix("\n...").removesuffix("...").strip()
        lines.append(f"{pad}{name}: {text}{note}")


SECTIONS = ("name", "output_dir", "seed", "model", "data", "grader", "grading", "sampling", "grpo", "eval",
            "checkpoint")


def commented_yaml(cfg: Config) -> str:
    """``cfg`` as YAML with each field's description as a comment (the sections a start needs; ``rft
    config`` prints every field)."""
    lines = ["# rft config: every field with its description; `rft config --graders` lists grader types.",
             "# Train with: rft train THIS_FILE   (override any field with --set section.key=value)"]
    for name in SECTIONS:
        value, info = getattr(cfg, name), Config.model_fields[name]
        if isinstance(value, BaseModel):
            lines.append(f"{name}:  # {info.description}")
            _commented(value, 1, lines)
        else:
            text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()
            lines.append(f"{name}: {text}  # {info.description}")
    return "\n".join(lines) + "\n"


def init_config(out: str, overrides: list[str], base: str | None = None, force: bool = False) -> Path:
    """Write the commented starter YAML of ``base`` (a config file, or the defaults) with ``overrides``
    to ``out``; checked by loading it back."""
    path = Path(out)
    if path.exists() and not force:
        raise FileExistsError(f"{out} exists; choose another --out or pass --force")
    text = commented_yaml(load_config(base, overrides))
    path.write_text(text, encoding="utf-8")
    load_config(path)  # what was written loads as the config it shows
    return path
