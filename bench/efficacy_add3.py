#!/usr/bin/env python
"""Learning efficacy on the 3-digit warm start: rft GRPO on exactly the problem of TRL's anchor.

The anchor is ``bench/trl_anchor/`` (``sft_warmstart.py`` makes the warm start, greedy held-out
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
    python bench/efficacy_add3.py run WARM_DIR DATA_DIR [--set grpo.lr=1e-4 ...] [--reward digits] [--json-out F]
    python bench/efficacy_add3.py diagnose WARM_DIR [RUN_DIR/checkpoints/step_000300 ...] [--n 8]

``run`` prints one JSON line per evaluation and a summary line with the same keys as the anchor's.
``--reward digits`` trains on a *different*, shaped reward (``digit_reward``: partial credit per
right digit); held-out accuracy is still the exact answer (the grader's ``passed``), so its rows
are comparable in accuracy but not in reward. ``diagnose`` measures, for the warm start and trained
checkpoints, greedy against sampled accuracy, maj@n, how concentrated the samples are on the greedy
answer, accuracy per digit, and which greedy answers training changed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_TRL_BENCH = HERE / "trl_anchor"
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


def leading_number(text: str) -> str | None:
    """The completion's leading digit run without leading zeros (the anchor reads int() of it)."""
    digits = re.match(r"\d*", text).group()
    return str(int(digits)) if digits else None


def digit_credit(text: str, total: int) -> float:
    """Share of the sum's digit places the completion gets right, places aligned from the units
    (the arithmetic alignment: the units digit needs no carry): right places / max(len(answer),
    len(sum)). 1.0 exactly when the anchor's reward is 1; 0 with no leading digits."""
    got, want = leading_number(text), str(total)
    if got is None:
        return 0.0
    right = sum(a == b for a, b in zip(reversed(got), reversed(want)))
    return right / max(len(got), len(want))


def digit_reward(prompts: list, completions: list[str], answer: list[int], **_columns) -> list[float]:
    """A shaped reward in TRL's batch shape for rft's ``python`` grader: ``digit_credit`` per
    completion. Not the anchor's reward; with ``pass_threshold: 1.0`` its ``passed`` is."""
    return [digit_credit(c, int(a)) for c, a in zip(completions, answer)]


DIGIT_GRADER_SPEC = {"type": "python", "function": f"{Path(__file__).resolve()}:digit_reward", "pass_threshold": 1.0}


def rows(pairs: list[tuple[int, int]], prefix: str, task) -> list[dict]:
    return [{"id": f"{prefix}-{i}", "prompt": task.prompt_of(a, b), "answer": a + b, "pattern": sum_pattern(a + b)}
            for i, (a, b) in enumerate(pairs)]


def cmd_data(args) -> int:
    task = addition_task(args.trl_bench)
    heldout = task.heldout_problems()
    stream = task.TrainStream(PROMPT_SEED, set(heldout))
    train = stream.take(args.train_prompts)
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
    """The regex grader, and the shaped digit grader's ``passed`` and score 1.0, agree with the
    anchor's is_correct on probes and, optionally, on completions sampled from the warm start."""
    from rft.data import Example
    from rft.graders.registry import build

    task = addition_task(args.trl_bench)
    grader, shaped = build(GRADER_SPEC), build(DIGIT_GRADER_SPEC)
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
        shaped_grade = shaped(text, ex)
        right += theirs
        if ours != theirs or bool(shaped_grade.passed) != theirs or (shaped_grade.score == 1.0) != theirs:
            mismatches.append({"completion": text, "sum": s, "rft": ours, "rft_digits": shaped_grade.score,
                               "anchor": theirs})
    print(json.dumps({"cases": len(cases), **source, "anchor_right": right, "mismatches": len(mismatches),
                      "examples": mismatches[:10]}))
    return 1 if mismatches else 0


def cmd_passk(args) -> int:
    """pass@k of the warm start on the held-out set with rft's sampler: the ceiling of sharpening."""
    import torch

    from rft.config import load_config
    from rft.rollout import SamplingParams, TorchSampler
    from rft.training.evaluate import sampled_pass_at_k
    from rft.training.session import open_session

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
    if args.reward == "digits":
        overrides.append("grader=" + json.dumps(DIGIT_GRADER_SPEC))  # JSON is YAML: the whole spec replaced
    label = args.label or ",".join(args.set + ([f"reward={args.reward}"] if args.reward != "exact" else [])) or "default"
    name = "add3-" + hashlib.sha256(label.encode()).hexdigest()[:8]
    evals, summary = run_rft(CONFIG, overrides + [f"name={name}"] + args.set, label)
    summary["reward"] = args.reward
    summary.update(sample_counts(Path(summary["run_dir"])))
    warm = Path(args.model_dir) / "warmstart.json"
    if warm.exists():
        info = json.loads(warm.read_text())
        summary["warmstart_sft"] = {k: info.get(k) for k in ("heldout_greedy_acc", "heldout_sampled_acc_t1",
                                                               "weights_sha256")}
    emit(evals, summary, args.json_out)
    return 0


def sample_counts(run_dir: Path) -> dict:
    """Completions graded over the run and how many of them passed (right answers are what GRPO
    learns from: compare them with labelled examples in a supervised run), and the groups sampled
    and kept per step, which dynamic sampling raises above prompts_per_step."""
    from efficacy_common import read_records

    train_recs, _ = read_records(run_dir)
    graded = right = 0.0
    for r in train_recs:
        kind = next(k.split("/")[1] for k in r if k.startswith("grader/") and k.endswith("/count"))
        graded += r[f"grader/{kind}/count"]
        right += r[f"grader/{kind}/count"] * r[f"grader/{kind}/pass_rate"]
    keys = sorted({k for r in train_recs for k in r if k.startswith("dynamic/")})
    return {"completions_graded": int(graded), "completions_right": int(round(right)),
            **{f"mean_{k.replace('/', '_')}": round(sum(r.get(k, 0.0) for r in train_recs) / len(train_recs), 3)
               for k in keys}}


def diagnose_one(model_dir: str, problems: list[tuple[int, int]], task, n: int, temperature: float) -> dict:
    """Greedy and sampled answers of one model on the held-out problems."""

    from rft.models.load import load_model, load_tokenizer
    from rft.rollout import SamplingParams, TorchSampler

    tok = load_tokenizer(model_dir)
    sampler = TorchSampler(load_model(model_dir), tok)

    def greedy(pairs):
        prompts = [list(tok(task.prompt_of(a, b))["input_ids"]) for a, b in pairs]
        return [leading_number(g[0].text) for g in sampler.generate(prompts, 1, SamplingParams(8, 0.0))]

    prompts = [list(tok(task.prompt_of(a, b))["input_ids"]) for a, b in problems]
    sampled = [[c.text for c in g] for g in sampler.generate(prompts, n, SamplingParams(8, temperature),
                                                              seeds=list(range(len(problems))))]
    return {"greedy": greedy(problems), "sampled": [[leading_number(t) for t in grp] for grp in sampled],
            "probe": greedy(UNITS_PROBE)}


# 20 random problems for each of the 100 (last digit of a, last digit of b) pairs: the units digit
# of the sum depends on that pair only, so a model that computed it from the pair would give the
# same units digit on all 20.
_probe_rng = random.Random(5)
UNITS_PROBE = [(_probe_rng.randrange(10, 100) * 10 + c, _probe_rng.randrange(10, 100) * 10 + f)
               for c in range(10) for f in range(10) for _ in range(20)]


def units_consistency(probe_answers: list[str | None]) -> dict:
    """On UNITS_PROBE: greedy units-digit accuracy, and the mean share of a pair's 20 problems whose
    greedy units digit is that pair's most common one (1.0: a function of the pair alone)."""
    from collections import Counter

    right, agree = 0, 0
    for j in range(100):
        chunk = probe_answers[20 * j : 20 * (j + 1)]
        pair = UNITS_PROBE[20 * j]
        want = str((pair[0] + pair[1]) % 10)
        units = [a[-1] if a else None for a in chunk]
        right += sum(u == want for u in units)
        agree += Counter(units).most_common(1)[0][1]
    return {"probe_units_acc": right / 2000, "probe_units_same_as_pair_mode": agree / 2000}


def diagnosis_metrics(answers: dict, ref: dict | None, sums: list[int]) -> dict:
    """Greedy vs sampled accuracy, maj@n, pass@n, the share of samples equal to the greedy answer,
    greedy accuracy per digit place (units first), and, against the reference model, how many greedy
    answers changed and in which direction."""
    from collections import Counter

    want = [str(s) for s in sums]
    g, smp = answers["greedy"], answers["sampled"]
    n, m = len(sums), len(smp[0])
    right_g = [a == w for a, w in zip(g, want)]
    maj = [Counter(grp).most_common(1)[0][0] == w for grp, w in zip(smp, want)]
    places = {}
    for p, name in enumerate(["units", "tens", "hundreds", "thousands"]):
        rows = [(a, w) for a, w in zip(g, want) if len(w) > p]
        places[name] = round(sum(a is not None and len(a) > p and a[-1 - p] == w[-1 - p] for a, w in rows) / len(rows), 4)
    out = {
        "greedy_acc": round(sum(right_g) / n, 4),
        "sampled_acc": round(sum(a == w for grp, w in zip(smp, want) for a in grp) / (n * m), 4),
        f"maj@{m}": round(sum(maj) / n, 4),
        f"pass@{m}": round(sum(w in grp for grp, w in zip(smp, want)) / n, 4),
        "samples_equal_greedy": round(sum(a == gg for grp, gg in zip(smp, g) for a in grp) / (n * m), 4),
        "distinct_answers_per_problem": round(sum(len(set(grp)) for grp in smp) / n, 3),
        "greedy_digit_acc": places,
        "greedy_wrong_but_sampled_right": round(sum((not r) and w in grp for r, grp, w in zip(right_g, smp, want)) / n, 4),
        **units_consistency(answers["probe"]),
    }
    if ref is not None:
        ref_right = [a == w for a, w in zip(ref["greedy"], want)]
        changed = [a != b for a, b in zip(g, ref["greedy"])]
        out["vs_reference"] = {
            "greedy_changed": round(sum(changed) / n, 4),
            "wrong_to_right": sum((not r0) and r1 for r0, r1 in zip(ref_right, right_g)),
            "right_to_wrong": sum(r0 and not r1 for r0, r1 in zip(ref_right, right_g)),
            "wrong_to_other_wrong": sum(c and not r0 and not r1 for c, r0, r1 in zip(changed, ref_right, right_g)),
        }
    return out


def cmd_diagnose(args) -> int:
    import torch

    torch.set_num_threads(2)
    task = addition_task(args.trl_bench)
    problems = task.heldout_problems()
    sums = [a + b for a, b in problems]
    results, ref = {}, None
    for d in args.model_dirs:
        if Path(d).is_file():  # a run's checkpoints/latest or /best names the step directory
            d = str(Path(d).parent / Path(d).read_text().strip())
        answers = diagnose_one(d, problems, task, args.n, args.temperature)
        results[d] = diagnosis_metrics(answers, ref, sums)
        ref = ref or answers
        print(json.dumps({"model": d, **results[d]}), flush=True)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trl-bench", type=Path, default=DEFAULT_TRL_BENCH, help="the anchor's directory")
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("data")
    d.add_argument("data_dir")
    d.add_argument("--train-prompts", type=int, default=NUM_TRAIN_PROMPTS,
                   help="training pairs from the anchor's stream (the GRPO runs use 4,096; a long supervised control needs more)")
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
    r.add_argument("--reward", choices=["exact", "digits"], default="exact",
                   help="exact: the anchor's reward (the headline); digits: partial credit per right digit (shaped)")
    g = sub.add_parser("diagnose")
    g.add_argument("model_dirs", nargs="+", help="the warm start first (the reference for changed answers), then checkpoints")
    g.add_argument("--n", type=int, default=8, help="samples per held-out problem at --temperature")
    g.add_argument("--temperature", type=float, default=1.0)
    g.add_argument("--json-out", default=None)
    args = p.parse_args(argv)
    sys.path.insert(0, str(HERE))
    return {"data": cmd_data, "check-grader": cmd_check_grader, "passk": cmd_passk, "run": cmd_run,
            "diagnose": cmd_diagnose}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
