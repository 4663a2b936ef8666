"""``rft doctor CONFIG``: a pre-flight checklist run before spending compute on GRPO.

Loads the data, model and grader exactly as training does (:func:`rft.training.session.open_session`) and
checks, each line with a verdict ``ok`` / ``warn`` / ``block`` / ``skip``:

- **data**: the dataset parses (a bad JSONL line is reported with its number by ``read_jsonl``) and
  the train and validation splits share no prompt;
- **memory**: before the model loads, its predicted peak memory (weights, reference, gradients,
  optimizer state, activations, KV cache, validation; :mod:`rft.models.memory`, from ``config.json``
  and the safetensors headers) against the device's available memory; over it blocks, names the
  knobs that fit it with the peak each gives, and the model is not loaded;
- **load**: the model, tokenizer and grader load and every prompt fits the context;
- **grader**: the same completions (the model's greedy answers, plus the rows' ``reference`` /
  ``answer`` fields when present) graded twice give the same scores; wall-clock ms per grade; and
  for the ``math`` grader, whether it could read an answer in most greedy samples at all -- if not,
  the advice names ``extract: auto`` / ``last_number`` (:func:`extraction_advice`);
- **baseline**: on ``n`` validation examples, greedy pass@1, and with the training sampler ``k``
  samples each: pass@k, the per-sample pass rate, the mean and best score and the share of groups
  with zero reward variance. No pass and no positive score blocks ("nothing to amplify": GRPO needs
  some reward to amplify); about 10-30% of the reward earned is the sweet spot; above 90% there is
  little to gain; groups that all score alike carry no signal (rules in :func:`baseline_verdict`);
- **cost**: real GRPO steps (``rft.grpo.train.train`` in a temporary run directory that is deleted
  afterwards), 3 to 20 of them (:func:`probe_done`: a model whose steps take 5 s or more runs 3, the
  tiny demo's 70 ms steps 20): seconds and completion tokens per step, scaled to the configured steps
  plus the validations (timed on the baseline's greedy pass), the lower median of steps 2.. taken
  (:func:`probe_step`) and split into rollout, reference and update seconds, the price when
  ``model.price_per_hour`` is set, and peak memory (the process's ``VmHWM``;
  ``torch.cuda.max_memory_allocated`` on a GPU).

The overall verdict is the worst line; ``doctor.json`` (atomic) records every line in the run
directory, which holds nothing else, so training can still start there. Not covered: the time of
checkpoint writes, grader non-determinism that needs more than two tries to show, and whether the
grader can be fooled (that is ``rft audit``).
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from rich.table import Table

from rft.commands.common import add_config_args
from rft.config import Config, ConfigError, load_config
from rft.config.base import SpecError
from rft.config.graders import FREE_TEXT_MODES, parse_spec
from rft.console import Console
from rft.data import DataError, Example
from rft.files import atomic_write_text
from rft.graders.judge_doctor import judge_report
from rft.models.load import ModelError
from rft.rollout import SamplingParams
from rft.tasks import load_splits
from rft.training.evaluate import encode_prompt, evaluate, sampled_pass_at_k
from rft.training.run_dir import RunDir
from rft.training.session import Session, open_session

Verdict = Literal["ok", "warn", "block", "skip"]
_RANK = {"skip": 0, "ok": 1, "warn": 2, "block": 3}
DOCTOR_FILE = "doctor.json"
PROBE_STEPS = 3  # the fewest GRPO steps the cost check runs: step 1 pays warm-up, 2 and 3 are timed
PROBE_MAX_STEPS = 20  # the most
PROBE_BUDGET_S = 10.0  # seconds of timed steps (2..) after which the probe stops


@dataclass
class Check:
    name: str
    verdict: Verdict
    summary: str
    advice: str = ""
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class DoctorReport:
    checks: list[Check]

    @property
    def verdict(self) -> Verdict:
        worst = max((c.verdict for c in self.checks), key=_RANK.__getitem__, default="ok")
        return "ok" if worst == "skip" else worst

    @property
    def blocked(self) -> bool:
        return self.verdict == "block"

    def to_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "checks": [asdict(c) for c in self.checks]}


# Shares of the reward already earned (``level`` in baseline_verdict) at which the verdict changes.
HARD_BELOW, SWEET_UP_TO, SATURATED_ABOVE = 0.10, 0.30, 0.90


def baseline_verdict(sampled: dict[str, float], k: int) -> tuple[Verdict, str]:
    """Whether the base model leaves GRPO something to amplify, from :func:`sampled_pass_at_k` with
    ``k`` samples per prompt. GRPO learns from the *scores* within a group, so the scores decide,
    not only the passes (:func:`passed_of`). With

        level = max(per-sample pass rate, mean reward)

    (the two are equal for a 0/1 grader; for partial credit the mean reward is the share of the
    credit earned; a shaping penalty pulls the mean below the pass rate, hence the max), the first
    rule that holds gives the verdict:

    1. block  no sample passed (pass@k = 0) and none scored above 0 (``max_reward <= 0``): no right
              answer and no partial credit; at most penalties vary ("nothing to amplify");
    2. warn   level > 0.90: little to gain (a model at 0.99 on every sample lands here, whether or
              not 0.99 counts as a pass);
    3. warn   every group of k scores alike (``frac_zero_std_groups = 1``): every advantage is 0,
              no signal at this temperature and group size;
    4. warn   level < 0.10: hard, few groups will carry signal;
    5. ok     level <= 0.30: the sweet spot; otherwise ok, learnable.

    The thresholds assume correctness scores in [0, 1]. Not covered: a grader whose full score is
    not 1 and that gives no verdict (set ``pass_threshold`` on its spec)."""
    pass_rate, mean, best = sampled["pass@1"], sampled["mean_reward"], sampled["max_reward"]
    level = max(pass_rate, mean)
    if sampled[f"pass@{k}"] == 0 and best <= 0:
        return "block", (f"nothing to amplify: no sample of {k} per prompt passed or scored above 0; "
                         "warm up with SFT first (`rft sft`)")
    if level > SATURATED_ABOVE:
        return "warn", "little to gain: the model already earns most of the reward; use harder prompts"
    if sampled["frac_zero_std_groups"] == 1:
        return "warn", (f"no signal: in every group of {k} samples the scores are equal, so every advantage is 0; "
                        "raise sampling.temperature or num_generations, or use a grader with partial credit")
    if level < HARD_BELOW:
        hint = "; no sample passed: partial credit is all GRPO can climb" if sampled[f"pass@{k}"] == 0 else ""
        return "warn", f"hard for the model: few groups will carry signal{hint}; consider an SFT warm start or easier prompts"
    if level <= SWEET_UP_TO:
        return "ok", "the sweet spot for GRPO (about 10-30% of the reward earned)"
    return "ok", "learnable: better and worse samples mix"


# -- the checks -------------------------------------------------------------------------------


def check_data(cfg: Config) -> Check:
    try:
        train, val, _ = load_splits(cfg.data, cfg.seed)
    except DataError as e:
        return Check("data", "block", "the dataset does not load", str(e))
    shared = {e.prompt_key() for e in train} & {e.prompt_key() for e in val}
    if shared:
        return Check("data", "block", f"{len(shared)} prompt(s) in both train and validation",
                     "remove them from one split: validation must be held out", {"shared_prompts": len(shared)})
    return Check("data", "ok", f"{len(train)} train / {len(val)} validation examples, no shared prompt",
                 values={"train": len(train), "val": len(val)})


def check_grader(s: Session, pool: Any, rows: list[dict[str, Any]], examples: list[Example]) -> Check:
    """Grade the greedy completions again (and the rows' reference answers twice) and compare."""
    texts = [r["completion"] for r in rows]
    first = [r["score"] for r in rows]
    refs = [(str(e.get(f)), e) for e in examples for f in ("reference", "answer") if e.get(f) is not None]
    ref_texts, ref_examples = [t for t, _ in refs], [e for _, e in refs]
    first += [g.score for g in pool.grade(ref_texts, ref_examples)]
    t0 = time.perf_counter()
    again = pool.grade(texts + ref_texts, examples + ref_examples)
    ms = 1000 * (time.perf_counter() - t0) / max(len(again), 1)
    pool.pop_stats()
    differ = sum(a != b.score for a, b in zip(first, again))
    errors = sum(g.errored for g in again)
    values = {"graded_twice": len(again), "differing": differ, "errors": errors, "ms_per_grade": ms}
    if differ:
        return Check("grader", "warn", f"not deterministic: {differ} of {len(again)} scores changed on a second grading",
                     "a reward that is not a function of the completion is noise to GRPO; fix the grader", values)
    if errors == len(again):
        return Check("grader", "warn", f"every grade errored ({again[0].reason})", "check the grader spec", values)
    advice = extraction_advice(s.grader_spec, examples, again[: len(texts)])
    values["no_answer_extracted"] = advice[0]
    if advice[1]:
        return Check("grader", "warn", f"deterministic, but {advice[0]:.0%} of the model's answers have no final answer "
                     "the grader can read", advice[1], values)
    return Check("grader", "ok", f"deterministic over {len(again)} grades; {ms:.2f} ms per grade", values=values)


def extraction_advice(spec: dict[str, Any] | None, examples: list[Example], grades: list[Any]) -> tuple[float, str]:
    """(share of the model's answers from which a ``math`` grader extracted nothing, advice or "").

    More than half without an answer read means the grader looks for a marker the model does not
    write (``extract: boxed`` on an instruct model that answers in sentences): every such sample
    scores 0 whatever its arithmetic, and GRPO has nothing to learn from. The advice names the
    free-text modes of :mod:`rft.graders.math`."""
    math = [(e.grader or spec, g) for e, g in zip(examples, grades) if (e.grader or spec or {}).get("type") == "math"]
    if not math:
        return 0.0, ""
    share = sum("extracted" in g.details and g.details["extracted"] is None for _, g in math) / len(math)
    mode = parse_spec(math[0][0]).extract  # the spec's own default when it names none
    if share <= 0.5 or mode in FREE_TEXT_MODES:
        return share, ""
    return share, (f"the math grader (extract: {mode}) found no answer in most greedy samples; for answers written "
                   "in sentences set `extract: auto` (math-verify's own final answer) or, for plain numbers "
                   "(GSM8K style), `extract: last_number`")


def check_baseline(s: Session, pool: Any, n: int, k: int) -> tuple[Check, Check, dict[str, Any]]:
    """(grader check, baseline check, timings) from a greedy and a sampled pass over n examples."""
    cfg = s.cfg
    examples = s.val[:n]
    sampler = s.engine()
    t0 = time.perf_counter()
    greedy = evaluate(sampler, s.tokenizer, pool, examples, cfg.sampling.max_new_tokens, cfg.eval.batch_size,
                      episodes=s.episodes)  # a multi-turn config's baseline: its episodes
    greedy_s = time.perf_counter() - t0
    grader = check_grader(s, pool, greedy.rows, examples)
    params = SamplingParams.of(cfg.sampling)
    sampled = sampled_pass_at_k(sampler, s.tokenizer, pool, examples, k, params,
                                torch.Generator().manual_seed(cfg.seed + 11), episodes=s.episodes)
    pool.pop_stats()
    verdict, advice = baseline_verdict(sampled, k)
    values = {"n": len(examples), "k": k, "pass@1_greedy": greedy.metrics["pass@1"], **sampled}
    summary = (f"greedy pass@1 {greedy.metrics['pass@1']:.1%}, pass@{k} {sampled[f'pass@{k}']:.1%}, "
               f"right samples {sampled['pass@1']:.1%}, mean reward {sampled['mean_reward']:.3f}, "
               f"zero-variance groups of {k} {sampled['frac_zero_std_groups']:.1%} (n={len(examples)})")
    timing = {"greedy_s_per_example": greedy_s / len(examples), "n_val": len(s.eval_examples)}
    return grader, Check("baseline", verdict, summary, advice, values), timing


def check_memory(cfg: Config) -> Check:
    """The predicted peak memory of the run against the device's available memory, before loading."""
    from rft.models.load import load_tokenizer, resolve_model_path
    from rft.models.memory import (
        GIB,
        ShapeError,
        available_bytes,
        estimate,
        fitting_knobs,
        gib,
        model_shape,
        run_shape,
    )

    try:
        model_dir = resolve_model_path(cfg.model.path, cfg.model.revision)
        shape, tokenizer = model_shape(model_dir), load_tokenizer(model_dir)
        train, val, _ = load_splits(cfg.data, cfg.seed)
        prompt = max(len(encode_prompt(tokenizer, e)) for e in train[:2000] + val[:2000])
    except (ModelError, ShapeError, DataError, OSError, ValueError) as e:
        return Check("memory", "skip", f"no prediction: {e}")
    run = run_shape(cfg, prompt, len(val[: cfg.eval.size] if cfg.eval.size else val))
    est, (available, source) = estimate(shape, run), available_bytes(cfg.model.device)
    values = {**{f"{k}_gib": v / GIB for k, v in est.parts().items()}, "available_gib": available / GIB,
              "params": shape.params, "prompt_tokens": prompt}
    if est.peak > available:
        return Check("memory", "block", f"predicted peak {gib(est.peak)} > {gib(available)} available ({source}): "
                     f"{est.summary()}", "does not fit; each alone: " + "; ".join(fitting_knobs(shape, run, available)),
                     values)
    return Check("memory", "ok", f"{est.summary()} of {gib(available)} available ({source})", values=values)


def peak_memory() -> dict[str, float]:
    """Peak resident memory of this process (:func:`rft.models.memory.peak_rss_bytes`) and of CUDA
    allocations, in GiB."""
    from rft.models.memory import GIB, peak_rss_bytes

    out = {"peak_rss_gib": peak_rss_bytes() / GIB}
    if torch.cuda.is_available():
        out["peak_cuda_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return out


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def probe_done(step_s: list[float]) -> bool:
    """Whether the cost check's probe has stepped enough, given its steps' ``step_s`` so far: at least
    :data:`PROBE_STEPS`, then until the timed steps (2..) add up to :data:`PROBE_BUDGET_S` or
    :data:`PROBE_MAX_STEPS` steps ran. SmolLM2-135M's 8-12 s steps stop at 3; the tiny demo's 70 ms
    steps run 20, because two or three of them are no measure: one full garbage collection of Python's
    objects (~200 ms, once, early in a process; a real run pays it during its first validation, the
    probe's validates one example) fell in the probe's step 3 or 5, and step 2 once ran 25 % over the
    steps after it (BENCHMARKS.md, "rft doctor")."""
    return len(step_s) >= PROBE_STEPS and (sum(step_s[1:]) >= PROBE_BUDGET_S or len(step_s) >= PROBE_MAX_STEPS)


def probe_step(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """The probe's step that stands for every step: the lower median by ``step_s`` of steps 2.. (step 1
    pays one-off warm-up) -- of two, the faster: a hiccup of a shared machine in one step (one was 2.3x
    its neighbours) or a garbage collection moves neither. A run stopped after one step: that one."""
    timed = sorted(steps[1:] or steps, key=lambda r: r["step_s"])
    return timed[(len(timed) - 1) // 2]


def check_cost(cfg: Config, greedy_s_per_example: float, n_val: int) -> Check:
    """Real GRPO steps in a throwaway run directory until :func:`probe_done`, scaled to the configured
    run: :func:`probe_step` is the step time."""
    from rft.grpo.train import (
        train,  # the trainer itself: what is timed is what will run
    )

    tmp = Path(tempfile.mkdtemp(prefix="rft-doctor-"))
    trial = cfg.model_copy(update={
        "name": "cost", "output_dir": str(tmp),
        "grpo": cfg.grpo.model_copy(update={"steps": PROBE_MAX_STEPS}),
        "eval": cfg.eval.model_copy(update={"size": 1}),
        "monitors": cfg.monitors.model_copy(update={"enabled": False, "stop_on": []}),
        "checkpoint": cfg.checkpoint.model_copy(update={"every": PROBE_MAX_STEPS}),  # the last step's only
    })
    seen: list[float] = []

    def until(step_s: float) -> bool:  # the trainer hands over each step's time
        seen.append(step_s)
        return probe_done(seen)

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    try:
        result = train(trial, console=Console(quiet=True), until=until)
        steps = [r for r in RunDir(result.run_dir).read_metrics() if r.get("type") == "train"]
    except (RuntimeError, ConfigError, DataError, ModelError, SpecError) as e:  # e.g. out of memory
        return Check("cost", "block", "the probe's GRPO steps failed", f"{type(e).__name__}: {e}", peak_memory())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    g, G = cfg.grpo, cfg.sampling.num_generations
    probe = probe_step(steps)
    step_s = probe["step_s"]
    tokens = probe["completion_len_mean"] * g.prompts_per_step * G
    val_s = greedy_s_per_example * n_val * (g.steps // cfg.eval.every + 1)
    total_s = step_s * g.steps + val_s
    phases = {p: probe.get(f"time/{p}", 0.0) for p in ("rollout", "ref_logprobs", "update")}
    values = {"step_s": [r["step_s"] for r in steps], "probe_step_s": step_s, "completion_tokens_per_step": tokens,
              "steps": g.steps, "validation_s": val_s, "estimated_total_s": total_s,
              **{f"{p}_s": v for p, v in phases.items()}, **peak_memory()}
    mem = ", ".join(f"{k.removeprefix('peak_').replace('_gib', '')} {v:.2f} GiB" for k, v in peak_memory().items())
    price = ""
    if cfg.model.price_per_hour is not None:  # the device doctor timed: one process, one device
        values["estimated_cost"] = total_s / 3600 * cfg.model.price_per_hour
        price = f", {values['estimated_cost']:.2f} at {cfg.model.price_per_hour:g} per device-hour"
    split = ", ".join(f"{p.replace('_logprobs', '')} {v:.2f}" for p, v in phases.items())
    return Check("cost", "ok", f"{step_s:.2f} s ({split}) and {tokens:.0f} completion tokens per step x {g.steps} steps "
                 f"+ validation {val_s:.0f} s = about {_duration(total_s)}{price}; peak memory {mem}", values=values)


# -- the whole checklist ----------------------------------------------------------------------

_STYLE = {"ok": "green", "warn": "yellow", "block": "bold red", "skip": "dim"}


def print_checklist(console: Console, title: str, report: DoctorReport) -> None:
    table = Table(title=title, title_justify="left")
    for col in ("check", "verdict", "found", "advice"):
        table.add_column(col, overflow="fold")
    for c in report.checks:
        table.add_row(c.name, f"[{_STYLE[c.verdict]}]{c.verdict}[/]", c.summary, c.advice)
    console.print(table)
    console.print(f"overall: [{_STYLE[report.verdict]}]{report.verdict}[/]")


def doctor(cfg: Config, n: int = 32, k: int | None = None, console: Console | None = None) -> DoctorReport:
    """Run every check, print the checklist, write ``doctor.json`` into ``cfg.run_dir``."""
    console = console or Console()
    k = k or cfg.sampling.num_generations
    if n < 1 or k < 1:
        raise ConfigError(f"doctor: --n {n} / --k {k}: both must be at least 1")
    with console.progress(5, "doctor") as bar:  # data, memory, load, grader + baseline, cost
        bar.update(0, now="data")
        checks = [check_data(cfg)]
        bar.update(1, now="predicting memory")
        if checks[0].verdict != "block":
            checks.append(check_memory(cfg))
        bar.update(1, now="loading model and data")
        if checks[-1].verdict != "block":
            try:
                s = open_session(cfg)
                checks.append(Check("load", "ok", f"model {s.model_path}, grader and prompts load as in training"))
            except (ConfigError, DataError, ModelError, SpecError) as e:
                checks.append(Check("load", "block", "training would fail to start", str(e)))
        bar.update(1, now=f"baseline: {n} examples x {k} samples")
        if checks[-1].verdict != "block":
            with s.pool() as pool:
                grader, baseline, timing = check_baseline(s, pool, n, k)
                judges = judge_report(s.grader_spec, pool, s.val, cfg.grpo.prompts_per_step * cfg.sampling.num_generations)
            checks += [grader, baseline] + [Check("judge", *r) for r in judges]
            del s  # free the model before the trial steps load their own
            gc.collect()
            bar.update(1, now=f"cost: timing {PROBE_STEPS}-{PROBE_MAX_STEPS} GRPO steps")
            checks.append(check_cost(cfg, timing["greedy_s_per_example"], timing["n_val"]))
        bar.update(1, now="done")
    done = {c.name for c in checks}
    checks += [Check(name, "skip", "not run: an earlier check blocks") for name in
               ("memory", "load", "grader", "baseline", "cost") if name not in done]
    report = DoctorReport(checks)
    atomic_write_text(cfg.run_dir / DOCTOR_FILE, json.dumps(report.to_json(), indent=2, default=float) + "\n")
    print_checklist(console, f"rft doctor: {cfg.run_dir}", report)
    return report


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_config_args(p)
    p.add_argument("--n", type=int, default=32, help="validation examples for the baseline (default 32)")
    p.add_argument("--k", type=int, help="samples per example for pass@k (default sampling.num_generations)")
    p.add_argument("--quiet", action="store_true")


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, args.overrides)
    report = doctor(cfg, n=args.n, k=args.k, console=Console(args.quiet))
    print(f"doctor: {report.verdict}; details in {cfg.run_dir / DOCTOR_FILE}")
    return 1 if report.blocked else 0
