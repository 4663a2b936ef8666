#!/usr/bin/env python
"""Learning efficacy on the 3-digit warm start: rft GRPO on exactly the problem of TRL's anchor.

The anchor is ``../shared/bench/trl/`` (``sft_warmstart.py`` makes the warm start, greedy held-out
accuracy 15.0 %, pass@8 48.6 %; ``trl_grpo_learn.py`` trains it with TRL: best of ten
configurations 19.6 % after 300 steps). This script puts rft on the same footing:

- the same 500 held-out problems and the same training prompts (4,096 pairs from seed 2, held-out
  pairs skipped), both taken from the anchor's ``addition_task.py`` and exported to JSONL;
- the same reward: the completion up to its first non-digit equals the sum. rft grades it with a
  ``regex`` grader (fullmatch of ``0*SUM(\\D.*)?``, DOTALL, one pattern per row), whose
  equivalence with the anchor's ``is_correct`` is checked by ``check-grader``;
- the same budget: 8 prompts x 8 generations, at most 8 new tokens, temperature 1.0, 300 steps;
  greedy held-out accuracy before step 1 and every 25 steps (``bench/configs/efficacy_add3.yaml``).

Sub-commands (run torch work under ``flock /tmp/rft-cpu.lock`` on the shared machine):

    python bench/efficacy_add3.py data DATA_DIR                  # export train/val JSONL
    python bench/efficacy_add3.py check-grader DATA_DIR [--model WARM_DIR]
    python bench/efficacy_add3.py passk WARM_DIR DATA_DIR [--k 8 64]
    python bench/efficacy_add3.py run WARM_DIR DATA_DIR [--set grpo.lr=1e-4 ...] [--json-out F]

``run`` prints one JSON line per evaluation and a summary line with the same keys as the anchor's.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_TRL_BENCH = HERE.parent.parent / "shared" / "bench" / "trl"
CONFIG = HERE / "configs" / "efficacy_add3.yaml"
NUM_TRAIN_PROMPTS = 4096
PROMPT_SEED = 2


def addition_task(trl_bench: Path):
    sys.path.insert(0, str(trl_bench))
    import addition_task  # the anchor's own module: problems, streams and the reward

    return addition_task


def sum_pattern(total: int) -> str:
    """The anchor's reward as an RE2 fullmatch: the leading digit run is SUM (leading zeros allowed,
    int('0123') == 123), then either the end or a non-digit followed by anything."""
    return f"0*{total}(\\D.*)?"


GRADER_SPEC = {"type": "regex", "pattern_field": "pattern", "mode": "fullmatch", "flags": ["DOTALL"]}


def rows(pairs: list[tuple[int, int]], prefix: str, task) -> list[dict]:
    return [{"id": f"{prefix}-{i}", "prompt": task.prompt_of(a, b), "answer": a + b, "pattern": sum_pattern(a + b)}
            for i, (a, b) in enumerate(pairs)]


def cmd_data(args) -> int:
    task = addition_task(args.trl_bench)
    heldout = task.heldout_problems()
    stream = task.TrainStream(PROMPT_SEED, set(heldout))
    train = stream.take(NUM_TRAIN_PROMPTS)
    assert not set(train) & set(heldout), "a training pair is a held-out pair"
    out = Path(args.data_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, pairs, prefix in (("train.jsonl", train, "train"), ("val.jsonl", heldout, "heldout")):
        (out / name).write_text("".join(json.dumps(r) + "\n" for r in rows(pairs, prefix, task)))
    info = {"heldout_sha256": task.problems_sha256(heldout), "train_sha256": task.problems_sha256(train),
            "train_prompts": len(train), "heldout": len(heldout), "prompt_seed": PROMPT_SEED,
            "train_stream_skipped_heldout": stream.skipped}
    (out / "info.json").write_text(json.dumps(info, indent=2))
    print(json.dumps(info))
    return 0


def probe_completions(sums: list[int], rng: random.Random) -> list[tuple[str, int]]:
    """Hand-made edge cases around each sum plus random strings over the tokenizer's characters."""
    alphabet = "0123456789+-*= abcxyzABC.,!?\n"
    cases = []
    for s in sums:
        t = str(s)
        cases += [(t, s), (t + "+1", s), ("0" + t, s), ("00" + t + "=", s), (t + "5", s), (t[:-1], s), ("", s),
                  (" " + t, s), ("-" + t, s), (t + "\n7", s), (t + " ", s), (str(s + 1), s), (t + "a" + t, s)]
        for _ in range(20):
            body = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))
            cases.append((rng.choice(["", t, t[:2], "0" + t]) + body, s))
    return cases


def cmd_check_grader(args) -> int:
    """The regex grader agrees with the anchor's is_correct on probes and, optionally, on completions
    sampled from the warm start with rft's sampler."""
    from rft.data import Example
    from rft.graders.registry import build

    task = addition_task(args.trl_bench)
    grader = build(GRADER_SPEC)
    rng = random.Random(0)
    heldout = task.heldout_problems()
    sums = [a + b for a, b in heldout[:100]]
    cases = probe_completions(sums, rng)
    source = {"probes": len(cases)}
    if args.model:
        import torch

        from rft.models.load import load_model, load_tokenizer
        from rft.rollout import SamplingParams, TorchSampler

        torch.set_num_threads(2)
        tok = load_tokenizer(args.model)
        sampler = TorchSampler(load_model(args.model), tok)
        prompts = [list(tok(task.prompt_of(a, b))["input_ids"]) for a, b in heldout]
        groups = sampler.generate(prompts, 8, SamplingParams(8, 1.0), torch.Generator().manual_seed(0))
        sampled = [(c.text, a + b) for grp, (a, b) in zip(groups, heldout) for c in grp]
        cases += sampled
        source["sampled"] = len(sampled)
    mismatches, right = [], 0
    for text, s in cases:
        ex = Example("x", "p", {"answer": s, "pattern": sum_pattern(s)})
        ours, theirs = bool(grader(text, ex).passed), task.is_correct(text, s)
        right += theirs
        if ours != theirs:
            mismatches.append({"completion": text, "sum": s, "rft": ours, "anchor": theirs})
    print(json.dumps({"cases": len(cases), **source, "anchor_right": right, "mismatches": len(mismatches),
                      "examples": mismatches[:10]}))
    return 1 if mismatches else 0


def cmd_passk(args) -> int:
    """pass@k of the warm start on the held-out set with rft's sampler: the ceiling of sharpening."""
    import torch

    from rft.config import load_config
    from rft.evaluate import sampled_pass_at_k
    from rft.rollout import SamplingParams, TorchSampler
    from rft.session import open_session

    cfg = load_config(CONFIG, data_overrides(args.model_dir, args.data_dir))
    s = open_session(cfg)
    sampler = TorchSampler(s.model, s.tokenizer)
    params = SamplingParams(cfg.sampling.max_new_tokens, 1.0)
    out = {}
    with s.pool() as pool:
        for k in args.k:
            res = sampled_pass_at_k(sampler, s.tokenizer, pool, s.eval_examples, k, params,
                                    torch.Generator().manual_seed(7), batch_size=max(1, 4096 // k))
            out[f"pass@{k}"] = res[f"pass@{k}"]
            out[f"pass_rate_k{k}"] = res["pass@1"]
            out[f"frac_zero_std_groups_k{k}"] = res["frac_zero_std_groups"]
    print(json.dumps(out))
    return 0


def data_overrides(model_dir: str, data_dir: str) -> list[str]:
    d = Path(data_dir).resolve()
    return [f"model.path={Path(model_dir).resolve()}", f"data.train_file={d / 'train.jsonl'}",
            f"data.val_file={d / 'val.jsonl'}"]


def cmd_run(args) -> int:
    from efficacy_common import emit, run_rft

    overrides = data_overrides(args.model_dir, args.data_dir) + [f"output_dir={args.output_dir}"]
    label = args.label or ",".join(args.set) or "default"
    name = "add3-" + hashlib.sha256(label.encode()).hexdigest()[:8]
    evals, summary = run_rft(CONFIG, overrides + [f"name={name}"] + args.set, label)
    warm = Path(args.model_dir) / "warmstart.json"
    if warm.exists():
        info = json.loads(warm.read_text())
        summary["warmstart_sft"] = {k: info.get(k) for k in ("heldout_greedy_acc", "heldout_sampled_acc_t1",
                                                               "weights_sha256")}
    emit(evals, summary, args.json_out)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trl-bench", type=Path, default=DEFAULT_TRL_BENCH, help="the anchor's directory")
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("data")
    d.add_argument("data_dir")
    c = sub.add_parser("check-grader")
    c.add_argument("data_dir")
    c.add_argument("--model", default=None, help="warm-start directory: also compare on sampled completions")
    k = sub.add_parser("passk")
    k.add_argument("model_dir")
    k.add_argument("data_dir")
    k.add_argument("--k", type=int, nargs="+", default=[8, 64])
    r = sub.add_parser("run")
    r.add_argument("model_dir")
    r.add_argument("data_dir")
    r.add_argument("--set", action="append", default=[], help="config override, e.g. grpo.lr=1e-4 (repeatable)")
    r.add_argument("--label", default=None)
    r.add_argument("--output-dir", default="/tmp/rft-efficacy/runs")
    r.add_argument("--json-out", default=None)
    args = p.parse_args(argv)
    sys.path.insert(0, str(HERE))
    return {"data": cmd_data, "check-grader": cmd_check_grader, "passk": cmd_passk, "run": cmd_run}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
