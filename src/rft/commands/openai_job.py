"""``rft train --openai-job job.json``: the body of an OpenAI ``POST /v1/fine_tuning/jobs`` request
with ``method.type: reinforcement``, run here as an rft config.

:func:`plan_job` reads the body, maps what maps onto :class:`~rft.config.Config`, applies the
``--set`` overrides on top, fills the fields that depend on the result (steps from epochs, the
learning rate from its multiplier) and returns the validated config with one note per field it
ignored or approximated. The mapping (docs/integrations/openai_jobs.md has the table and why):

    model                               model.path: a local directory, a hub id, 'embedded' or a preset
    training_file / validation_file     data.train_file / data.val_file: local paths (relative to
                                        the working directory, else to the job file's directory)
    method.reinforcement.grader         grader: as-is (string_check, text_similarity, python, multi,
                                        score_model and label_model with a judge the user names:
                                        --set grader.judge.model=PATH or grader.judge.base_url=URL)
    batch_size (B)                      grpo.prompts_per_step = B (each prompt is sampled G times);
                                        auto: min(16, training rows)
    n_epochs (E)                        grpo.steps = E * ceil(training rows / prompts_per_step); auto: 1
    learning_rate_multiplier (m)        grpo.lr = m * base; base 3e-4 for 'embedded' or LoRA
                                        (rft's default), 1e-6 for full fine-tuning of another model
    compute_multiplier (c)              sampling.num_generations G = max(2, round(8 * c)); auto: 8
    eval_interval / eval_samples        eval.every / eval.samples
    seed / suffix                       seed / name
    reasoning_effort, response_format,  ignored, each with a note
    metadata, integrations

A derived field (steps, lr, prompts_per_step, num_generations, val_size) is filled only when no
``--set`` names it. Refused with a :class:`ConfigError` naming the field and the fix: a number that
is not finite anywhere in the body (``NaN``, ``Infinity``, ``1e400``; named by its line), a method that
is not reinforcement, an unknown key (a typo must not be ignored), a value out of OpenAI's own
range, an ``endpoint`` grader (it calls OpenAI's infrastructure), a ``score_model`` or ``label_model``
grader whose OpenAI model is not mapped to a judge the user runs (the spec's own error says how:
``rft.config.graders``), an OpenAI model name or file ID left unmapped to something local.

Not covered: OpenAI's tools for agentic RFT (Azure's ``tools``, ``max_episode_steps``), images in
the data, and ``"auto"`` as OpenAI resolves it (its choices are not published; ours are above).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rft.config import (
    Config,
    ConfigError,
    SamplingConfig,
    apply_overrides,
    config_from_dict,
)
from rft.files import InputFileError, jsonl_lines, parse_json, read_text
from rft.training.run_dir import run_name_problem

TOP_KEYS = {"model", "training_file", "validation_file", "method", "hyperparameters", "suffix", "seed", "metadata",
            "integrations"}
HYPER_KEYS = {"batch_size", "learning_rate_multiplier", "n_epochs", "eval_interval", "eval_samples",
              "compute_multiplier", "reasoning_effort"}
# (lowest, highest) of each numeric hyperparameter, from OpenAI's API reference; None: unbounded
RANGES: dict[str, tuple[float, float | None, type]] = {
    "batch_size": (1, 256, int), "n_epochs": (1, 50, int), "eval_interval": (1, None, int),
    "eval_samples": (1, None, int), "learning_rate_multiplier": (0, None, float), "compute_multiplier": (0, 10, float),
}
BASE_G = 8  # rft's default num_generations: what compute_multiplier 1 means
BASE_LR_SMALL, BASE_LR_FULL = 3e-4, 1e-6  # tiny model or LoRA adapters / full fine-tuning of a real model
AUTO_BATCH, AUTO_EPOCHS = 16, 1
REFUSED_GRADERS = {"endpoint": "calls an HTTP endpoint"}  # score_model / label_model run on the user's judge


@dataclass(frozen=True)
class JobPlan:
    config: Config
    notes: list[str]  # what was ignored or approximated, one line each


def _fail(where: str, problem: str, fix: str) -> ConfigError:
    return ConfigError(f"--openai-job: {where}: {problem}; {fix}")


def read_job(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"--openai-job {path}: no such file; give the JSON body of a fine-tuning job request")
    try:
        text = read_text(path, "--openai-job")
    except InputFileError as e:
        raise ConfigError(str(e)) from None
    body, bad = parse_json(text, finite=True)  # hyperparameters and grader numbers alike
    if bad:
        raise ConfigError(f"--openai-job {path}:{bad.line}: {bad}") from None
    if not isinstance(body, dict):
        raise ConfigError(f"--openai-job {path}: the body must be a JSON object (model, training_file, method, ...)")
    return body


def _keys(obj: Any, allowed: set[str], where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise _fail(where, f"expected an object, got {type(obj).__name__}", "see OpenAI's API reference")
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise _fail(where, f"unknown key(s) {unknown}", f"keys here are {sorted(allowed)} (check the spelling)")
    return obj


def _hyper(h: dict[str, Any], key: str) -> float | int | str | None:
    """A hyperparameter: None when absent, 'auto', or a number in OpenAI's range."""
    value = h.get(key)
    if value is None or value == "auto" or key == "reasoning_effort":
        return value
    lo, hi, kind = RANGES[key]
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (kind is float or isinstance(value, int))
    if not ok or value < lo or (kind is float and value == lo) or (hi is not None and value > hi):
        top = hi if hi is not None else "inf"
        span = f"({lo}, {top}]" if kind is float else f"[{lo}, {top}]"
        raise _fail(f"hyperparameters.{key} = {value!r}", f"expected 'auto' or a{'n integer' if kind is int else ' number'}"
                    f" in {span}", "use a value OpenAI's API accepts")
    return value


def check_grader(spec: Any, where: str = "method.reinforcement.grader") -> None:
    """Refuse graders that need OpenAI's models or the network, wherever they sit in a multi grader."""
    if not isinstance(spec, dict) or "type" not in spec:
        raise _fail(where, "a grader must be an object with a 'type'", "give one of OpenAI's grader objects")
    kind = spec["type"]
    if kind in REFUSED_GRADERS:
        model = f" ({spec['model']})" if spec.get("model") else ""
        raise _fail(where, f"a {kind} grader{model} {REFUSED_GRADERS[kind]}, and rft grades offline without an API key",
                    "replace it with a python grader, or a score_model grader on a judge you run (or drop it from "
                    "the multi grader's calculate_output)")
    if kind == "multi" and isinstance(spec.get("graders"), dict):
        for name, sub in spec["graders"].items():
            check_grader(sub, f"{where}.graders.{name}")


def _local(value: Any, job_dir: Path, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise _fail(field, f"expected a file path, got {value!r}", "give the path of a JSONL file")
    if Path(value).exists() or not (job_dir / value).exists():
        return value
    return str(job_dir / value)


def _rows(path: str, field: str) -> int:
    if not Path(path).is_file():
        fix = ("OpenAI file IDs name uploads on OpenAI's servers; give the path of the JSONL file itself"
               if re.fullmatch(r"file-[A-Za-z0-9]+", Path(path).name) else "check the path")
        raise _fail(f"{field} = {path!r}", "no such local file", f"{fix} (or --set {field}=PATH)")
    return sum(1 for _ in jsonl_lines(Path(path))) if path.endswith(".jsonl") else 0


def _get(raw: dict[str, Any], dotted: str) -> Any:
    node: Any = raw
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _put(raw: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


def plan_job(path: str | Path, overrides: list[str] | None = None) -> JobPlan:
    """The config a job body maps to, ``--set`` overrides applied, and the notes; see the module doc."""
    overrides = list(overrides or [])
    job_dir = Path(path).parent
    body = _keys(read_job(path), TOP_KEYS, "the body")
    method = _keys(body.get("method") or {"type": "supervised"}, {"type", "reinforcement", "supervised", "dpo"}, "method")
    if method.get("type") != "reinforcement":
        raise _fail(f"method.type = {method.get('type')!r}", "rft train --openai-job runs reinforcement jobs",
                    "for supervised data use rft sft; for an RFT job set method.type to 'reinforcement'")
    rl = _keys(method.get("reinforcement"), {"grader", "hyperparameters", "response_format"}, "method.reinforcement")
    if "grader" not in rl:
        raise _fail("method.reinforcement", "no grader", "add the job's grader object")
    check_grader(rl["grader"])
    hyper = dict(_keys(body.get("hyperparameters") or {}, {"batch_size", "learning_rate_multiplier", "n_epochs"},
                       "hyperparameters"))
    notes = ["hyperparameters (top level, deprecated by OpenAI): read as method.reinforcement.hyperparameters"] if hyper else []
    hyper.update(_keys(rl.get("hyperparameters") or {}, HYPER_KEYS, "method.reinforcement.hyperparameters"))
    h = {k: _hyper(hyper, k) for k in HYPER_KEYS}
    for key in ("model", "training_file"):
        if key not in body:
            raise _fail("the body", f"no '{key}'", f"add '{key}' (required by OpenAI's API too)")

    raw: dict[str, Any] = {"name": "openai-job", "model": {"path": body["model"]}, "grader": rl["grader"],
                           "data": {"train_file": _local(body["training_file"], job_dir, "data.train_file")}}
    if body.get("validation_file"):
        raw["data"]["val_file"] = _local(body["validation_file"], job_dir, "data.val_file")
    if body.get("suffix"):
        # spaces and punctuation become '-'; a path separator or NUL is kept, so the name check refuses it
        raw["name"] = re.sub(r"[^A-Za-z0-9._/\\\x00-]+", "-", str(body["suffix"])).strip("-")
        problem = run_name_problem(raw["name"])
        if problem:
            raise _fail(f"suffix = {body['suffix']!r}", f"the run's name {raw['name']!r} {problem}",
                        "give a suffix of letters, digits, '.', '_', '-' (it names the run directory)")
        notes.append(f"suffix {body['suffix']!r}: the run's name, {raw['name']!r}")
    if body.get("seed") is not None:
        raw["seed"] = body["seed"]
    if isinstance(h["eval_interval"], int):
        raw["eval"] = {"every": h["eval_interval"]}
    if isinstance(h["eval_samples"], int):
        raw.setdefault("eval", {})["samples"] = h["eval_samples"]
    if h["reasoning_effort"] not in (None, "default"):
        notes.append(f"reasoning_effort {h['reasoning_effort']!r}: ignored; it sets how long OpenAI's o-series models "
                     "reason before answering, a setting an open model here has not (the length limit is "
                     "sampling.max_new_tokens)")
    if rl.get("response_format"):
        notes.append("response_format: ignored; rft does not constrain decoding to a JSON schema (reward the schema "
                     "with a json_schema grader term instead)")
    for key, why in (("metadata", "labels for OpenAI's dashboard"), ("integrations", "set report_to: [wandb] for W&B")):
        if body.get(key):
            notes.append(f"{key}: ignored ({why})")

    set_keys = {item.partition("=")[0].strip() for item in overrides}
    raw = apply_overrides(raw, overrides)
    notes += _derive(raw, h, set_keys)
    return JobPlan(config_from_dict(raw), notes)


def _derive(raw: dict[str, Any], h: dict[str, Any], set_keys: set[str]) -> list[str]:
    """Fill the fields that depend on the config after ``--set``; returns their notes."""
    from rft.models.hub import hub_id
    from rft.models.presets import PRESETS

    notes = []
    model = str(_get(raw, "model.path"))
    if model != "embedded" and model not in PRESETS and not Path(model).is_dir() and not hub_id(model):
        raise _fail(f"model = {model!r}", "not a local model directory, a hub id ORG/NAME, 'embedded' or a preset "
                    "(OpenAI's models are not downloadable)",
                    f"--set model.path=DIR or ORG/NAME, or one of {['embedded', *sorted(PRESETS)]}")
    val_file = _get(raw, "data.val_file")
    rows = _rows(str(_get(raw, "data.train_file")), "data.train_file")
    if val_file:
        _rows(str(val_file), "data.val_file")
    elif "data.val_size" not in set_keys and rows:
        held = max(1, rows // 10)
        _put(raw, "data.val_size", held)
        notes.append(f"no validation_file: {held} of the {rows} training rows (10%) are held out for validation")
        rows -= held
    if "grpo.prompts_per_step" not in set_keys:
        batch = h["batch_size"] if isinstance(h["batch_size"], int) else min(AUTO_BATCH, max(rows, 1))
        _put(raw, "grpo.prompts_per_step", batch)
        if h["batch_size"] in (None, "auto"):
            notes.append(f"batch_size auto: {batch} prompts per step")
    if "sampling.num_generations" not in set_keys:
        c = h["compute_multiplier"]
        g = BASE_G if c in (None, "auto") else max(2, round(BASE_G * float(c)))
        _put(raw, "sampling.num_generations", g)
        if c not in (None, "auto"):
            notes.append(f"compute_multiplier {c:g}: approximated as {g} completions per prompt (G = 8 x {c:g})")
    if "grpo.steps" not in set_keys:
        epochs = h["n_epochs"] if isinstance(h["n_epochs"], int) else AUTO_EPOCHS
        per_step = int(_get(raw, "grpo.prompts_per_step"))
        if not rows:
            raise _fail(f"data.train_file = {_get(raw, 'data.train_file')!r}", "cannot count its rows (not .jsonl)",
                        "--set grpo.steps=N")
        _put(raw, "grpo.steps", epochs * math.ceil(rows / per_step))
        notes.append(f"n_epochs {h['n_epochs'] or 'auto'}: {epochs} epoch(s) of {rows} rows at {per_step} prompts per "
                     f"step = {_get(raw, 'grpo.steps')} steps")
    if "grpo.lr" not in set_keys:
        m = h["learning_rate_multiplier"]
        small = model == "embedded" or _get(raw, "model.lora") is not None
        base = BASE_LR_SMALL if small else BASE_LR_FULL
        lr = base * (1.0 if m in (None, "auto") else float(m))
        _put(raw, "grpo.lr", lr)
        notes.append(f"learning_rate_multiplier {m or 'auto'}: lr = {lr:.3g} ({'auto = 1 x ' if m in (None, 'auto') else ''}"
                     f"base {base:g}, rft's for {'the embedded model or LoRA' if small else 'full fine-tuning'})")
    if "sampling.max_new_tokens" not in set_keys and _get(raw, "sampling.max_new_tokens") is None:
        default = SamplingConfig().max_new_tokens
        notes.append(f"sampling.max_new_tokens: not in the job, rft's default {default} applies; raise it with --set for "
                     "long answers")
    return notes


def add_openai_job_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--openai-job", metavar="JOB_JSON", help="instead of CONFIG: the JSON body of an OpenAI "
                   "fine-tuning job (method.type reinforcement); mapped onto rft's config, --set applies on top, "
                   "what is ignored or approximated is printed (docs/integrations/openai_jobs.md)")


def openai_job_config(args: argparse.Namespace, stream: Any) -> Config:
    """The config of ``--openai-job``: its notes on stderr, the resolved YAML on ``stream``."""
    if args.config is not None or getattr(args, "resume", None):
        raise ConfigError("--openai-job replaces the config file: give one or the other (and start a new run; "
                          "--resume reads the run's own config.yaml)")
    plan = plan_job(args.openai_job, args.overrides)
    for note in plan.notes:
        print(f"note: {note}", file=sys.stderr)
    print(plan.config.to_yaml(), end="", file=stream, flush=True)
    return plan.config
