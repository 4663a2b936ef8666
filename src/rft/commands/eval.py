"""``rft eval``: held-out greedy pass@1 (and sampled pass@k, maj@k) of models and run checkpoints on
a data file, with the prompt rendering and grading that training validates with.

    rft eval MODEL_OR_RUN_DIR [MODEL_OR_RUN_DIR ...] --data FILE [--grader SPEC] [--samples K] [--out FILE]

Each positional argument is one row of the table:

- a model: anything ``model.path`` accepts (:func:`rft.models.load.resolve_model_path`: a directory
  written by ``save_pretrained``, ``embedded``), or a LoRA adapter directory written by
  ``rft export`` (loaded onto the base its ``adapter_config.json`` names);
- a run directory (it has ``config.yaml``): of an ``rft train`` run, the checkpoint ``--checkpoint``
  names -- ``latest`` by default (what ``rft export`` writes by default), ``best`` or ``step_N``;
  a LoRA checkpoint is the base named by the run's ``model.path`` plus the saved adapter, as
  resuming and ``rft export`` load it. Of an ``rft sft`` ``NAME-sft`` directory, its ``model/``.

What is shared with validation during training (``rft.grpo.train.validate``): prompts encoded by
:func:`rft.training.evaluate.encode_prompt` (chat messages through the tokenizer's chat template), greedy
decoding on the built-in sampler, grading through a :class:`GraderPool` (rows that name their own
grader keep it; the default grader grades the others), and the metrics of
:func:`rft.training.evaluate.evaluate` and :func:`rft.training.evaluate.sampled_pass_at_k`, called as validation calls
them (its sampling seed and batching). So on a run's own held-out rows, with the run's settings,
device and dtype, ``rft eval`` reproduces the ``val/*`` numbers the run logged for that checkpoint.

Episodes: a run trained with a multi-turn environment (``environment:`` in its config; or any model
with ``--environment``, a type name such as ``sql_retry`` or the section as inline YAML/JSON or a
file) is evaluated through that environment, as validation runs it (:class:`rft.envs.episodes.EpisodeRunner`):
``pass@1`` is the greedy episode's success, ``episode/success_by_turn_k`` the share that passed with
the answer found by turn k (:meth:`rft.envs.episodes.EpisodeRunner.metrics`; the table shows turn 1
and within the last turn), and each row keeps its transcript.
``--environment single`` evaluates one turn.

One set of settings applies to every model, so that rows compare: a flag when given, else the first
run directory's ``config.yaml`` (grader -- its ``grader`` or its task's --, ``sampling``
max_new_tokens / temperature / top_p / top_k, ``eval.batch_size``, ``grading``, ``model.dtype``,
``seed``), else the config defaults with 256 new tokens.

Not covered: the vLLM backend and several GPUs (one process, the built-in sampler); per-model
settings within one command; per-sample rows of the sampled metrics (rows are greedy).
"""

from __future__ import annotations

import argparse
import gc
import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from rich import box
from rich.markup import escape
from rich.table import Table

from rft.commands.export import find_checkpoint
from rft.commands.grade import InputError, load_spec
from rft.config import Config, ConfigError, load_config
from rft.console import Console
from rft.data import DataError, Example, read_dataset, require_chat_template
from rft.files import atomic_write_text
from rft.graders.pool import GraderPool
from rft.graders.registry import check_specs
from rft.models.load import (
    ModelError,
    context_length,
    load_model,
    load_tokenizer,
    resolve_device,
    resolve_model_path,
)
from rft.models.lora import ADAPTER_CONFIG, is_adapter_dir, load_adapter
from rft.rollout.base import SamplingParams
from rft.rollout.engines import build_engine
from rft.training.evaluate import encode_prompt, evaluate, sampled_pass_at_k
from rft.training.run_dir import RunDir

DEFAULT_MAX_NEW_TOKENS = 256  # without a run's config: room for a short reasoned answer
# grpo.train.validate seeds its sampled pass@k with seed + this; the same stream reproduces its numbers
VALIDATION_SEED_OFFSET = 104_729


@dataclass(frozen=True)
class Target:
    """What one positional argument names: where the weights and tokenizer load from."""

    arg: str
    source: Path  # model directory, checkpoint, SFT model/ or adapter directory
    base: Path | None = None  # the base model under a LoRA adapter
    checkpoint: str | None = None  # checkpoint directory name, for a run directory
    step: int | None = None
    cfg: Config | None = None  # the run's config, for a run directory


@dataclass(frozen=True)
class Settings:
    grader: dict[str, Any] | None  # the default grader; None: every row names its own
    max_new_tokens: int
    samples: int
    temperature: float
    top_p: float
    top_k: int
    batch_size: int
    seed: int
    dtype: str
    device: str
    workers: int
    timeout_s: float
    backend: str = "torch"  # sampling.backend: torch or vllm
    gpu_memory_utilization: float = 0.3
    environment: dict[str, Any] | None = None  # the environment section; None: one turn


@dataclass
class ModelResult:
    target: Target
    metrics: dict[str, float]
    seconds: float  # decoding and grading, model loading excluded
    rows: list[dict[str, Any]] = field(default_factory=list)


# -- what to evaluate ------------------------------------------------------------------------


def resolve_target(arg: str, checkpoint: str | None) -> Target:
    path = Path(arg).expanduser()
    if (path / "config.yaml").is_file():
        return _run_target(arg, RunDir(path), checkpoint or "latest")
    if is_adapter_dir(path) and not (path / "config.json").is_file():  # `rft export` of a LoRA run
        base = json.loads((path / ADAPTER_CONFIG).read_text()).get("base_model_name_or_path")
        if not base:
            raise ModelError(f"{arg}: a LoRA adapter without base_model_name_or_path in {ADAPTER_CONFIG}; "
                             "pass the run directory instead, or write merged weights with `rft export --merged`")
        return Target(arg, path, base=resolve_model_path(base))
    try:
        return Target(arg, resolve_model_path(arg))
    except ModelError as e:
        raise ModelError(f"{arg!r} is neither a run directory (no config.yaml) nor a model: {e}") from None


def _run_target(arg: str, run: RunDir, which: str) -> Target:
    cfg = load_config(run.config_path)
    if run.checkpoints_dir.is_dir():
        source = find_checkpoint(run, which)
        state = source / "trainer_state.json"
        step = json.loads(state.read_text())["step"] if state.is_file() else None
    elif (run.path / "model" / "config.json").is_file():  # an SFT run: one final model, no checkpoints
        if which != "latest":
            raise ConfigError(f"--checkpoint {which}: {run.path} is an SFT run with one final model (model/) and no "
                              "checkpoints; drop --checkpoint")
        source = run.path / "model"
        meta = source / "rft_sft.json"
        step = json.loads(meta.read_text()).get("steps") if meta.is_file() else None
    else:
        raise FileNotFoundError(f"{run.path}: no checkpoints/ (nor an SFT model/) to evaluate; train the run first, "
                                "or pass a model directory")
    # a LoRA checkpoint holds the adapter alone: the base is the run's model.path, as resuming loads it
    base = resolve_model_path(cfg.model.path, cfg.model.revision) if is_adapter_dir(source) else None
    return Target(arg, source, base, source.name, step, cfg)


def load_target(t: Target, dtype: str, device: str) -> tuple[Any, Any]:
    """(model, tokenizer) the way ``rft export`` loads a checkpoint: the adapter onto its base."""
    if t.base is not None:
        model = load_adapter(load_model(t.base, dtype, device), t.source, trainable=False)
    else:
        model = load_model(t.source, dtype, device)
    return model, load_tokenizer(t.source)


# -- settings and grader ---------------------------------------------------------------------


def run_grader(cfg: Config) -> dict[str, Any] | None:
    """The grader a run trained with: its ``grader``, else its built-in task's own spec."""
    if cfg.grader is not None or cfg.data.task is None:
        return cfg.grader
    from rft.tasks import TASKS

    return TASKS[cfg.data.task.name](cfg.data.task, cfg.seed)[2]  # the task brings its spec; ~0.1 s to make


def resolve_environment(flag: str | None, run_cfg: Config | None) -> dict[str, Any] | None:
    """The environment section episodes run in: ``--environment`` (a type name, inline YAML/JSON or a
    file), else the run's; None for one turn."""
    from rft.config import config_from_dict

    if flag is None:
        env = run_cfg.environment if run_cfg is not None else None
        return env.model_dump() if env is not None and env.type != "single" else None
    text = Path(flag).read_text() if Path(flag).is_file() else flag
    try:
        data = yaml.safe_load(text)
        env = config_from_dict({"environment": {"type": data} if isinstance(data, str) else data}).environment
    except (yaml.YAMLError, ConfigError) as e:
        why = str(e).splitlines()[0].removeprefix("invalid config: ")
        raise ConfigError(f"--environment {flag[:80]!r}: {why}; give a type (sql_retry, code_retry, single) or the "
                          "environment section, e.g. '{type: sql_retry, max_turns: 3}'") from None
    return env.model_dump() if env.type != "single" else None


def episode_runner(st: Settings, tokenizer: Any) -> Any:
    """The EpisodeRunner of ``st.environment`` (None: one turn), built as a run builds its own."""
    if st.environment is None:
        return None
    from rft.envs import build_environment
    from rft.envs.episodes import EpisodeRunner

    cfg = Config.model_validate({"environment": st.environment, "sampling": {"max_new_tokens": st.max_new_tokens}})
    return EpisodeRunner.of(build_environment(cfg, st.grader), tokenizer)


def resolve_settings(targets: list[Target], grader: str | None, max_new_tokens: int | None, samples: int,
                     temperature: float | None, batch_size: int | None, seed: int | None, dtype: str | None,
                     device: str, workers: int | None, backend: str | None = None,
                     environment: str | None = None) -> Settings:
    run_cfg = next((t.cfg for t in targets if t.cfg is not None), None)
    cfg = run_cfg or Config()
    for flag, value, low in (("--max-new-tokens", max_new_tokens, 1), ("--samples", samples, 0),
                             ("--batch-size", batch_size, 1), ("--workers", workers, -1)):
        if value is not None and value < low:
            raise ConfigError(f"{flag} {value}: must be >= {low}")
    if temperature is not None and temperature <= 0:
        raise ConfigError(f"--temperature {temperature}: must be > 0 (greedy pass@1 is always reported)")
    if seed is not None and not 0 <= seed < 2**63:
        raise ConfigError(f"--seed {seed}: must be in [0, 2**63), like the config's seed")
    if grader is not None:
        try:
            spec = load_spec(grader)
        except InputError as e:
            raise ConfigError(str(e)) from None
    else:
        spec = run_grader(run_cfg) if run_cfg is not None else None
    sc = cfg.sampling
    return Settings(
        grader=spec,
        max_new_tokens=max_new_tokens or (sc.max_new_tokens if run_cfg else DEFAULT_MAX_NEW_TOKENS),
        samples=samples, temperature=temperature or sc.temperature, top_p=sc.top_p, top_k=sc.top_k,
        batch_size=batch_size or cfg.eval.batch_size, seed=cfg.seed if seed is None else seed,
        dtype=dtype or cfg.model.dtype, device=_device(device),
        workers=cfg.grading.workers if workers is None else workers, timeout_s=cfg.grading.timeout_s,
        backend=backend or sc.backend, gpu_memory_utilization=sc.vllm_gpu_memory_utilization,
        environment=resolve_environment(environment, run_cfg),
    )


def _device(name: str) -> str:
    try:
        return str(resolve_device(name))
    except RuntimeError:
        raise ConfigError(f"--device {name!r}: not a device; use cpu, cuda, cuda:N or auto") from None


def check_graders(spec: dict[str, Any] | None, examples: list[Example], data: str) -> None:
    """Every row has a grader, and every distinct spec builds, before any model is loaded."""
    bare = [e for e in examples if e.grader is None]
    if spec is None and bare:
        raise ConfigError(f"no grader: --grader is not given, no run directory names one, and {len(bare)} row(s) "
                          f"of {data} name none (e.g. {bare[0].where}); pass --grader SPEC (a JSON/YAML file, or "
                          "inline JSON such as '{\"type\": \"math\"}')")
    check_specs(spec, examples)  # a SpecError names the flag or the row


def check_prompts(tokenizer: Any, model: Any, examples: list[Example], max_new_tokens: int, arg: str,
                  episodes: Any = None) -> None:
    """Chat rows need a chat template, and every prompt plus the new tokens (an episode's tokens with
    an environment) fits the context (as ``open_session`` checks for training), and the environment
    can run on every row, so a bad row fails before decoding starts."""
    require_chat_template(tokenizer, examples)
    ctx = context_length(model)
    after = episodes.env.limits.max_tokens if episodes is not None else max_new_tokens
    what = "the environment's max_tokens" if episodes is not None else "max_new_tokens"
    for e in examples:
        n = len(encode_prompt(tokenizer, e))
        if n + after > ctx:
            raise DataError(f"{e.where}: prompt is {n} tokens + {what}={after} > the context of "
                            f"{arg} ({ctx}); lower --max-new-tokens, shorten the prompt or drop the row")
    if episodes is not None:
        from rft.training.session import check_rows

        check_rows(episodes.env, examples)


# -- evaluation ------------------------------------------------------------------------------


def evaluate_target(t: Target, examples: list[Example], st: Settings, pool: GraderPool) -> ModelResult:
    """Greedy pass@1 (and sampled pass@k / maj@k) of one model, as ``validate`` computes them."""
    model, tok = load_target(t, st.dtype, st.device)
    episodes = episode_runner(st, tok)
    check_prompts(tok, model, examples, st.max_new_tokens, t.arg, episodes)
    sampler = build_engine(st.backend, model, tok, model_path=str(t.base or t.source), dtype=st.dtype, seed=st.seed,  # type: ignore[arg-type]
                           gpu_memory_utilization=st.gpu_memory_utilization)
    t0 = time.perf_counter()
    res = evaluate(sampler, tok, pool, examples, st.max_new_tokens, st.batch_size, episodes=episodes)
    metrics = {**res.metrics, **pool.pop_stats().metrics()}
    if st.samples:
        params = SamplingParams(st.max_new_tokens, st.temperature, st.top_p, st.top_k)
        gen = torch.Generator().manual_seed(st.seed + VALIDATION_SEED_OFFSET)
        sampled = sampled_pass_at_k(sampler, tok, pool, examples, st.samples, params, gen,
                                    max(1, st.batch_size // st.samples), episodes)
        metrics.update({f"sampled/{k}": v for k, v in {**sampled, **pool.pop_stats().metrics()}.items()})
    seconds = time.perf_counter() - t0
    del sampler, model  # one model in memory at a time
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return ModelResult(t, metrics, seconds, res.rows)


def summary(results: list[ModelResult], st: Settings, data: str, n: int, rows: bool) -> dict[str, Any]:
    settings = {k: v for k, v in asdict(st).items() if k not in ("workers", "timeout_s")}
    models = []
    for r in results:
        entry: dict[str, Any] = {"model": r.target.arg, "path": str(r.target.source),
                                 "base": str(r.target.base) if r.target.base else None,
                                 "checkpoint": r.target.checkpoint, "step": r.target.step,
                                 "seconds": round(r.seconds, 3), "metrics": r.metrics}
        if rows:
            entry["rows"] = r.rows
        models.append(entry)
    return {"data": data, "examples": n, "settings": settings, "models": models}


def render(console: Console, results: list[ModelResult], st: Settings, n: int) -> None:
    """One row per model. Narrow terminals wrap the model name, never a number."""
    sampled = f"; pass@k and maj@k from {st.samples} samples at temperature {st.temperature:g}" if st.samples else ""
    table = Table(title=f"rft eval: {n} examples, up to {st.max_new_tokens} new tokens{sampled}",
                  title_justify="left", box=box.SIMPLE_HEAD, collapse_padding=True)
    ks = sorted(int(k.split("@")[1]) for k in results[0].metrics if k.startswith("sampled/pass@"))
    table.add_column("model", overflow="fold", min_width=12)
    table.add_column("checkpoint", overflow="fold", min_width=10)
    heads = ["greedy\npass@1", "mean\nreward", *[f"{'sampled' if k == 1 else ''}\npass@{k}" for k in ks]]
    heads += [f"\nmaj@{st.samples}"] if st.samples else []
    K = max((int(k.rsplit("_", 1)[1]) for k in results[0].metrics if k.startswith("episode/success_by_turn_")), default=0)
    heads += ["turn 1\n", f"within\n{K} turns"] if K else []
    for head in [*heads, "\nseconds"]:
        table.add_column(head, justify="right", no_wrap=True)
    for r in results:
        m = r.metrics
        cells = [m["pass@1"], m["mean_reward"], *[m[f"sampled/pass@{k}"] for k in ks]]
        cells += [m[f"sampled/maj@{st.samples}"]] if st.samples else []
        cells += [m["episode/success_by_turn_1"], m[f"episode/success_by_turn_{K}"]] if K else []
        checkpoint = re.sub(r"^step_0*(?=\d)", "step_", r.target.checkpoint or "-")  # step_000050 -> step_50
        table.add_row(escape(r.target.arg), checkpoint, *[f"{c:.3f}" for c in cells], f"{r.seconds:.1f}")
    console.print(table)


def eval_command(models: list[str], data: str, *, grader: str | None = None, checkpoint: str | None = None,
                 samples: int = 0, max_new_tokens: int | None = None, temperature: float | None = None,
                 batch_size: int | None = None, seed: int | None = None, dtype: str | None = None,
                 device: str = "auto", workers: int | None = None, threads: int | None = None,
                 out: str | None = None, json_line: bool = False, quiet: bool = False,
                 backend: str | None = None, environment: str | None = None) -> list[ModelResult]:
    """Run ``rft eval``: every input is checked before the first model loads; bad input raises the
    errors :func:`rft.cli.user_errors` reports as one line with exit status 2."""
    console = Console(quiet, json_lines=json_line)
    targets = [resolve_target(m, checkpoint) for m in models]
    st = resolve_settings(targets, grader, max_new_tokens, samples, temperature, batch_size, seed, dtype, device,
                          workers, backend, environment)
    if not Path(data).exists():  # read_dataset's own message names the config fields, not the flag
        raise DataError(f"--data {data}: no such file or directory")
    examples = read_dataset(data)
    check_graders(st.grader, examples, data)
    if threads:
        torch.set_num_threads(threads)
    results = []
    with GraderPool(st.grader, st.workers, st.timeout_s) as pool:
        for t in targets:
            which = f" ({t.checkpoint}, step {t.step})" if t.checkpoint else ""
            console.print(f"evaluating {escape(t.arg)}{which} on {len(examples)} examples")
            results.append(evaluate_target(t, examples, st, pool))
    render(console, results, st, len(examples))
    if out is not None:
        text = json.dumps(summary(results, st, data, len(examples), rows=True), ensure_ascii=False, default=str)
        atomic_write_text(Path(out), text + "\n")
        console.print(f"wrote the summary and {len(examples)} rows per model to {out}")
    if json_line:
        print(json.dumps(summary(results, st, data, len(examples), rows=False), default=str), flush=True)
    return results


DESCRIPTION = ("Greedy pass@1 and mean reward (and, with --samples K, pass@k and maj@k) of each model on --data, "
               "with training's prompt rendering and grading. One row per MODEL_OR_RUN_DIR; every row uses the same "
               "settings: a flag when given, else the first run directory's config.yaml, else defaults.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("models", nargs="+", metavar="MODEL_OR_RUN_DIR",
                   help="a model directory or name (as model.path takes, e.g. embedded), an adapter written by rft "
                   "export, or a run directory (rft train: its --checkpoint; rft sft NAME-sft: its model/)")
    p.add_argument("--data", required=True, help="examples: .jsonl (prompt or chat messages rows), .json, .parquet, "
                   ".csv or a save_to_disk directory")
    p.add_argument("--grader", help="default grader: spec file (JSON/YAML) or inline JSON (default: the run's grader, "
                   "else each row's own 'grader'); rows that name their own keep it")
    p.add_argument("--checkpoint", help="for run directories: latest (default, as rft export), best or step_N")
    p.add_argument("--samples", type=int, default=0, metavar="K",
                   help="also sample K completions per example for pass@1..K and maj@K (default 0: greedy only)")
    p.add_argument("--max-new-tokens", type=int, help="default: the run's sampling.max_new_tokens, else 256")
    p.add_argument("--temperature", type=float, help="for --samples (default: the run's sampling.temperature, "
                   "else 1.0; top_p and top_k come from the run)")
    p.add_argument("--batch-size", type=int, help="prompts per greedy batch (default: the run's eval.batch_size, 512)")
    p.add_argument("--seed", type=int, help="sampling seed (default: the run's seed, else 0)")
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"],
                   help="default: the run's model.dtype, else float32")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: cuda when there is one)")
    p.add_argument("--workers", type=int, help="grader worker processes (-1: one per core, 0: in-process; default: "
                   "the run's grading.workers, else 0)")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default torch's choice)")
    p.add_argument("--environment", help="run episodes in this environment: a type (sql_retry, code_retry; single: "
                   "one turn) or the environment section as inline YAML/JSON or a file (default: the run's); reports "
                   "success at turn 1 and within k turns")
    p.add_argument("--backend", choices=["torch", "vllm"], help="sampling engine (default: the run's "
                   "sampling.backend, else torch)")
    p.add_argument("--out", help="write a JSON file: the summary (data, settings, per-model metrics) with each "
                   "model's per-example greedy rows (id, prompt, completion, score, passed, reason)")
    p.add_argument("--json", action="store_true", help="print the summary (without rows) as one JSON line instead "
                   "of the table")
    p.add_argument("--quiet", action="store_true")


def run(args: argparse.Namespace) -> int:
    eval_command(args.models, args.data, grader=args.grader, checkpoint=args.checkpoint, samples=args.samples,
                 max_new_tokens=args.max_new_tokens, temperature=args.temperature, batch_size=args.batch_size,
                 seed=args.seed, dtype=args.dtype, device=args.device, workers=args.workers, threads=args.threads,
                 out=args.out, json_line=args.json, quiet=args.quiet, backend=args.backend,
                 environment=args.environment)
    return 0
