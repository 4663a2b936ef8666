"""``rft audit``: red-team a grader (``--grader SPEC --data FILE``) or a whole run config (``--config``: its
grader on its training examples, then, when multi-turn, its environment) before it becomes a reward.

The attacks are :mod:`rft.safety.attacks` (completions per grader family) and
:mod:`rft.safety.episode_attacks` (scripted episodes); this module runs them, prints the table of holes and
exits 1 when one is found.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from rft.graders.pool import GraderPool
from rft.safety.attacks import AuditResult, audit
from rft.safety.episode_attacks import audit_episodes


def print_audit(console: Any, result: AuditResult, threshold: float, shown: int = 30) -> None:
    """A table of attacks (tried, holes), then the first ``shown`` holes with their completions."""
    from rich.markup import escape
    from rich.table import Table

    bar = f"score > {threshold}" + (f"; > 0 on the {result.zero_bar} reasoning_gym rows" if result.zero_bar else "")
    table = Table(title=f"rft audit: {len(result.holes)} hole(s) in {result.attacks_run} attacks on "
                        f"{result.examples} examples ({bar})", title_justify="left")
    for col in ("attack", "tried", "holes"):
        table.add_column(col)
    for name, tried in result.tried.items():
        holes = result.by_attack.get(name, 0)
        table.add_row(name, str(tried), f"[bold red]{holes}[/]" if holes else "0")
    console.print(table)
    for f in result.findings:
        console.print(f"[bold yellow]judge spec[/] {escape(f)}")
    for h in result.holes[:shown]:
        console.print(f"[bold red]hole[/] {escape(h.attack)} on {escape(h.example_id)}: score {h.score:.2f} "
                      f"({escape(h.reason[:100])}); completion {escape(repr(h.completion[:120]))}")
    if len(result.holes) > shown:
        console.print(f"... and {len(result.holes) - shown} more (write them all with --out)")


def audit_command(grader: str, data: str, threshold: float = 0.5, limit: int | None = None, workers: int = -1,
                  out: str | None = None, quiet: bool = False) -> int:
    """``rft audit``: exit 1 when a hole is found or a judge spec is flagged, 0 when neither, 2 (raised) for bad
    input."""
    from pathlib import Path

    from rft.commands.grade import InputError, load_spec
    from rft.config.base import SpecError
    from rft.console import Console
    from rft.data import read_jsonl
    from rft.files import atomic_write_text
    from rft.graders.registry import build

    try:
        spec = load_spec(grader)
    except InputError as e:
        raise SpecError(str(e)) from None
    build(spec)  # a bad spec is a one-line error before anything is graded
    examples = read_jsonl(data)[:limit] if limit else read_jsonl(data)
    console = Console(quiet)
    result = audit(spec, examples, threshold, workers, console=console)
    print_audit(console, result, threshold)
    if out:
        atomic_write_text(Path(out), "".join(json.dumps(h.to_json()) + "\n" for h in result.holes))
    print(f"audit: {len(result.holes)} hole(s) in {result.attacks_run} attacks"
          + (f"; {len(result.findings)} judge spec finding(s)" if result.findings else ""))
    return 1 if result.holes or result.findings else 0


def audit_config_command(config: str, overrides: list[str], threshold: float = 0.5, limit: int | None = None,
                         workers: int = -1, out: str | None = None, quiet: bool = False) -> int:
    """``rft audit --config CONFIG``: the grader attacks on the config's training examples (its grader or
    its task's), then, when its environment is multi-turn, the episode attacks. Exit 1 on a hole."""
    from pathlib import Path

    from rft.config import ConfigError, load_config
    from rft.console import Console
    from rft.envs import build_environment
    from rft.envs.episodes import EpisodeRunner
    from rft.files import atomic_write_text
    from rft.models.load import load_tokenizer, resolve_model_path
    from rft.tasks import load_splits
    from rft.training.evaluate import encode_prompt

    cfg = load_config(config, overrides)
    train, _, task_spec = load_splits(cfg.data, cfg.seed)
    spec = cfg.grader or task_spec
    if spec is None:
        raise ConfigError("grader: the config names no grader and its task has none; add a `grader:` spec")
    examples = train[: limit or 50]
    console = Console(quiet)
    result = audit(spec, examples, threshold, workers, console=console)
    print_audit(console, result, threshold)
    holes = list(result.holes)
    if cfg.environment.turns > 1:
        env = build_environment(cfg, spec)
        tok = load_tokenizer(resolve_model_path(cfg.model.path, cfg.model.revision))
        runner = EpisodeRunner.of(env, tok)
        prompts = {e.id: encode_prompt(tok, e) for e in examples}
        with GraderPool(spec, workers, cfg.grading.timeout_s) as pool:
            found, tried = audit_episodes(runner, cfg.environment.type, examples, prompts, pool, threshold,
                                          cfg.sampling.max_new_tokens)
        console.print(f"episode attacks ({cfg.environment.type}): " +
                      ", ".join(f"{k} {sum(h.attack == k for h in found)}/{n}" for k, n in tried.items()))
        for h in found[:30]:
            console.print(f"hole {h.attack} on {h.example_id}: {h.reason}; transcript {h.completion[:200]!r}")
        holes += found
    if out:
        atomic_write_text(Path(out), "".join(json.dumps(h.to_json()) + "\n" for h in holes))
    print(f"audit: {len(holes)} hole(s)")
    return 1 if holes or result.findings else 0


def add_arguments(p: argparse.ArgumentParser) -> None:
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


def run(args: argparse.Namespace) -> int:
    if args.config is None and (args.grader is None or args.data is None):
        raise SystemExit("rft audit: give --grader SPEC and --data FILE, or --config CONFIG (its data, grader and "
                         "environment)")
    if args.config is not None:
        return audit_config_command(args.config, args.overrides, args.threshold, args.limit, args.workers, args.out,
                                    args.quiet)
    return audit_command(args.grader, args.data, args.threshold, args.limit, args.workers, args.out, args.quiet)
