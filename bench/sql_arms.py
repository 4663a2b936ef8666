#!/usr/bin/env python
"""What GRPO adds to an SFT warm start on the SQL demo (issue 23), on equal wall time and seeds.

Three arms per seed, all from the demo's config (``src/rft/configs/demo_sql_smollm2.yaml``):

(c) SFT then 3-turn GRPO: the demo itself (:func:`rft.commands.demo_sql.run_sql_demo`, what
    ``rft demo --task sql --model MODEL --minutes M --seed S`` runs). Its SFT and its GRPO wall times
    (each from the call's start: loading, validations and checkpoints count) set the others' budgets.
(b) SFT then 1-turn GRPO: (c)'s own warm start (same config and seed, so the same model) trained by
    ``train`` with ``environment.max_turns: 1`` for (c)'s GRPO wall time (``grpo.steps`` uncapped: the
    clock ends it, so (b) takes more, cheaper steps). ``max_turns: 1`` rather than the single-turn
    ``sql`` grader because it keeps everything else identical -- the environment class, the prompt,
    the reward (the sql grader on the turn's query), the sampler path, the validations -- so the one
    difference between (b) and (c) is whether an error earns a second turn.
(a) SFT only: ``sft`` from the base model for (c)'s SFT + GRPO wall time (``sft.steps`` uncapped).

Then every final model and the warm start go through ``rft eval`` with the same multi-turn
environment (the config's ``environment`` section, 3 turns, for every arm, so the rows compare): greedy
success at turn 1 and within 3 turns on the held-out questions (the run's validation set, ``eval.size``)
and on the unseen intents (``unseen_templates.jsonl`` as the demo writes it); the general-text NLL of
each (the capability guard's text; the base model's NLL is the reference of ``rise``). Prints one
Markdown table, writes every number and the transcripts where a final model changed its query after
an error (passed or not) to ``--json-out``. Hold the shared CPU lock for the whole batch:

    flock /tmp/rft-cpu.lock .venv/bin/python bench/sql_arms.py --seeds 0 1 2 --ab-seeds 0 --minutes 14 \\
        --json-out /tmp/sql_arms.json

``--smoke`` runs the same code on a tiny random chat model for a few steps (seconds; numbers meaningless).
Not covered: several seeds of the warm start within one seed's (b) and (c) (they share it by design).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ("{% for m in messages %}{{ m['role'][0] }}:{{ m['content'] }}\n{% endfor %}"
            "{% if add_generation_prompt %}a:{% endif %}")
SMOKE = ["model.dtype=float32", "model.lora={r: 4, alpha: 8, target_modules: all-linear}",
         "data.task.val_size=4", "data.task.train_size=16", "environment.max_observation_tokens=32",
         "sampling.max_new_tokens=8", "sampling.num_generations=2", "grpo.steps=2", "grpo.prompts_per_step=2",
         "eval.size=4", "eval.every=1", "eval.capability=false", "eval.capability_max_tokens=32", "checkpoint.every=1",
         "sft.steps=2", "sft.batch_size=2", "sft.eval_every=2", "sft.warmup_steps=0", "report_to=[]"]
UNCAPPED = 100_000  # steps of the arms the clock ends
TRANSCRIPTS = 4  # of each kind, per arm and question set


def smoke_model(work: Path) -> str:
    """A tiny random model with a minimal chat template (the SQL prompts are chats)."""
    from rft.models.load import load_tokenizer
    from rft.models.tiny import init_tiny_model

    path = init_tiny_model(work / "tiny-chat", seed=1)
    tok = load_tokenizer(path)
    tok.chat_template = TEMPLATE
    tok.save_pretrained(path)
    return str(path)


def retries(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Episodes where the model got an error: changed its query and passed (``fixed``), changed it and
    failed (``changed``), or wrote the same query again (``repeated``)."""
    out: dict[str, list[dict[str, Any]]] = {"fixed": [], "changed": [], "repeated": []}
    for r in rows:
        turns = r.get("transcript") or []
        errored = [turns[i]["text"] for i in range(len(turns) - 1)
                   if turns[i]["role"] == "assistant" and turns[i + 1]["text"].startswith("Error:")]
        if not errored:
            continue
        last = [t["text"] for t in turns if t["role"] == "assistant"][-1]
        kind = "repeated" if last.strip() == errored[-1].strip() else "fixed" if r["passed"] else "changed"
        out[kind].append({"id": r["id"], "question": r["prompt"][-1]["content"] if isinstance(r["prompt"], list)
                          else r["prompt"], "transcript": turns, "passed": r["passed"]})
    return out


def general_nll(cfg: Any, targets: dict[str, str]) -> dict[str, float]:
    """General-text NLL of each model (loaded as ``rft eval`` loads it: a run's latest checkpoint, an
    SFT run's model/) on the capability guard's text (``eval.capability_file``, cut to
    ``eval.capability_max_tokens``), one model in memory at a time."""
    from rft.commands.eval import _device, load_target, resolve_target
    from rft.models.load import context_length
    from rft.safety.capability import CapabilityGuard

    guard, out = None, {}
    for name, path in targets.items():
        model, tok = load_target(resolve_target(path, None), cfg.model.dtype, _device("auto"))
        guard = guard or CapabilityGuard.from_config(tok, cfg.eval.capability_file, min(
            cfg.eval.capability_max_tokens, context_length(model)), model.config.vocab_size)
        out[name] = guard.measure(model)["cap/nll"]
        del model
        gc.collect()
    return out


def evaluate_arms(cfg: Any, targets: dict[str, str], val_path: Path, unseen_path: Path, work: Path) -> dict[str, Any]:
    """``rft eval`` of every target with the same multi-turn environment on both question sets."""
    from rft.commands.eval import eval_command

    env = json.dumps({k: v for k, v in cfg.environment.model_dump().items() if v is not None}, separators=(",", ":"))
    out: dict[str, Any] = {}
    for label, data in (("held_out", val_path), ("unseen", unseen_path)):
        res_path = work / f"eval_{label}.json"
        eval_command(list(targets.values()), str(data), environment=env, out=str(res_path), threads=cfg.threads,
                     quiet=True)
        models = json.loads(res_path.read_text())["models"]
        out[label] = {name: {"metrics": m["metrics"], "retries": retries(m["rows"])}
                      for name, m in zip(targets, models)}
    return out


def one_seed(model: str, seed: int, minutes: float | None, work: Path, extra: list[str], ab: bool) -> dict[str, Any]:
    from rft.commands.common import demo_config_path
    from rft.commands.demo_sql import SQL_CONFIG, run_sql_demo
    from rft.config import load_config
    from rft.console import Console
    from rft.data import write_jsonl
    from rft.grpo.train import train
    from rft.tasks import TASKS
    from rft.training.sft import sft

    out = work / f"s{seed}"
    sets = [f"model.path={model}", f"seed={seed}", f"output_dir={out}", *extra]
    console = Console(quiet=True)
    t0 = time.perf_counter()
    demo = run_sql_demo(model, sets[1:], minutes, console)  # arm (c)
    result: dict[str, Any] = {"seed": seed, "demo_wall_s": time.perf_counter() - t0, "demo": demo}
    c_wall = demo["sft_wall_s"] + demo["grpo_wall_s"]
    cfg = load_config(demo_config_path(SQL_CONFIG), sets)
    targets = {"warm start": demo["sft_run_dir"], "c": demo["run_dir"]}
    arms: dict[str, dict[str, Any]] = {"c": {"wall_s": c_wall, "sft_steps": demo["sft_steps"], "grpo_steps": demo["steps"]}}
    if ab:
        b_cfg = load_config(demo_config_path(SQL_CONFIG), [*sets, f"model.path={Path(demo['sft_run_dir']) / 'model'}",
                                                           "environment.max_turns=1", f"grpo.steps={UNCAPPED}",
                                                           f"name={cfg.name}-grpo1turn"])
        t = time.perf_counter()
        b = train(b_cfg, overwrite=True, console=console, time_limit_s=demo["grpo_wall_s"])
        arms["b"] = {"wall_s": demo["sft_wall_s"] + time.perf_counter() - t, "sft_steps": demo["sft_steps"],
                     "grpo_steps": b.steps}
        a_cfg = load_config(demo_config_path(SQL_CONFIG), [*sets, f"sft.steps={UNCAPPED}", f"name={cfg.name}-sftonly"])
        t = time.perf_counter()
        a = sft(a_cfg, overwrite=True, console=console, time_limit_s=c_wall)
        arms["a"] = {"wall_s": time.perf_counter() - t, "sft_steps": a.steps, "grpo_steps": 0}
        targets.update({"a": str(a.run_dir), "b": str(b.run_dir)})
    val_path = out / "held_out.jsonl"
    write_jsonl(val_path, TASKS["sql"](cfg.data.task, seed)[1][: cfg.eval.size or None])
    result["eval"] = evaluate_arms(cfg, targets, val_path, Path(demo["unseen_path"]), out)
    result["nll"] = general_nll(cfg, {"base": cfg.model.path, **targets})
    result["arms"] = arms
    return result


def _cell(m: dict[str, float], K: int) -> str:
    return f"{m['episode/success_by_turn_1']:.1%} / {m[f'episode/success_by_turn_{K}']:.1%}"


def table(results: list[dict[str, Any]], K: int) -> str:
    names = {"warm start": "SFT warm start (start of b, c)", "a": "(a) SFT only", "b": "(b) SFT + 1-turn GRPO",
             "c": "(c) SFT + 3-turn GRPO (demo)"}
    head = (f"| seed | arm | SFT / GRPO steps | training wall | held-out, turn 1 / within {K} | unseen intents, "
            f"turn 1 / within {K} | fixed after an error (held-out + unseen) | general-text NLL (vs base) |")
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for r in results:
        base = r["nll"]["base"]
        for name in ("warm start", "a", "b", "c"):
            if name not in r["eval"]["held_out"]:
                continue
            ho, un = r["eval"]["held_out"][name], r["eval"]["unseen"][name]
            arm = r["arms"].get(name)
            steps = f"{arm['sft_steps']} / {arm['grpo_steps']}" if arm else f"{r['demo']['sft_steps']} / 0"
            wall = f"{arm['wall_s']:.0f} s" if arm else f"{r['demo']['sft_wall_s']:.0f} s"
            fixed = f"{len(ho['retries']['fixed'])} + {len(un['retries']['fixed'])}"
            nll = r["nll"][name]
            lines.append(f"| {r['seed']} | {names[name]} | {steps} | {wall} | {_cell(ho['metrics'], K)} | "
                         f"{_cell(un['metrics'], K)} | {fixed} | {nll:.3f} ({(nll - base) / base:+.1%}) |")
    return "\n".join(lines)


def trimmed(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The JSON: every number, and up to TRANSCRIPTS episodes of each retry kind per arm and set."""
    for r in results:
        for per_set in r["eval"].values():
            for arm in per_set.values():
                arm["retry_counts"] = {k: len(v) for k, v in arm["retries"].items()}
                arm["retries"] = {k: v[:TRANSCRIPTS] for k, v in arm["retries"].items()}
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds of arm (c), the demo")
    p.add_argument("--ab-seeds", type=int, nargs="*", help="seeds that also run arms (a) and (b) (default: all)")
    p.add_argument("--minutes", type=float, default=14.0, help="the demo's --minutes (arm c; the others match it)")
    p.add_argument("--work", default="/tmp/rft-sql-arms")
    p.add_argument("--set", dest="extra", action="append", default=[], metavar="KEY=VALUE",
                   help="a config override for every arm (e.g. environment.on_success=show)")
    p.add_argument("--json-out")
    p.add_argument("--smoke", action="store_true", help="a tiny random chat model, a few steps (seconds)")
    args = p.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    model, extra, minutes = args.model, args.extra, args.minutes
    if args.smoke:
        model, extra, minutes = smoke_model(work), [*SMOKE, *args.extra], None
    ab = set(args.seeds if args.ab_seeds is None else args.ab_seeds)
    results = []
    for seed in args.seeds:
        results.append(one_seed(model, seed, minutes, work, extra, seed in ab))
        print(json.dumps({k: v for k, v in results[-1].items() if k != "eval"}, default=str), flush=True)
    K = max(int(k.rsplit("_", 1)[1]) for k in results[0]["eval"]["held_out"]["c"]["metrics"]
            if k.startswith("episode/success_by_turn_"))
    print(table(results, K))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(trimmed(results), indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
