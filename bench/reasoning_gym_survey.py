"""Survey of reasoning-gym's scorers, as shipped (no rft in the loop): for every registered dataset,
the reference answers' scores, what the raw scorer pays for answers that are not the answer, and
whether the scorer executes the answer as Python. The numbers in docs/integrations/reasoning_gym.md
come from this script.

    PYTHONPATH=src:.deps python bench/reasoning_gym_survey.py [--entries 5] [--out survey.json]

Attacks (each an answer string handed straight to ``score_answer``):
  empty ""; garbage "xyz"; chatty "The answer is GOLD."; period "GOLD."; spray (GOLD among its
  neighbours, as rft audit builds it); several "WRONG or GOLD"; executes (an expression that creates a
  marker file when evaluated: the scorer runs the answer as code).
A dataset that cannot be built with its defaults, or whose scorer raises, is listed with the error.

``--audit`` then runs ``rft audit``'s attacks through rft's ``reasoning_gym`` grader on every dataset
(``--entries`` training rows each), once with the default spec (all or nothing) and once with
``partial_credit: true``, and lists the datasets with holes per attack: what rft's extraction, screen
and default close, and what remains.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import tempfile
import time
from pathlib import Path

from rft.safety.attacks import plausible_answers, wrong_answer


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout()


def attacks(gold: str, marker: str) -> dict[str, str]:
    return {
        "empty": "", "garbage": "xyz", "chatty": f"The answer is {gold}.", "period": f"{gold}.",
        "spray": " ".join(plausible_answers(gold)), "several": f"{wrong_answer(gold)} or {gold}",
        "executes": f"open({marker!r}, 'w').close()",
    }


def survey_one(rg, name: str, entries: int, tmp: Path) -> dict:
    out: dict = {"dataset": name, "reference": [], "attacks": {}, "executes": False, "answer_none": 0}
    ds = rg.create_dataset(name, size=entries, seed=0)
    for i in range(entries):
        entry = ds[i]
        gold = entry["answer"]
        if gold is None:
            out["answer_none"] += 1
            continue
        gold = str(gold)
        out["reference"].append(ds.score_answer(gold, entry))
        marker = tmp / f"{name}-{i}"
        for attack, text in attacks(gold, str(marker)).items():
            try:
                score = float(ds.score_answer(text, entry))
            except Exception as e:  # noqa: BLE001 - recorded: a scorer that raises on an answer
                score = f"raised {type(e).__name__}"
            out["attacks"].setdefault(attack, []).append(score)
        if marker.exists():
            out["executes"] = True
        out.setdefault("longest_answer", 0)
        out["longest_answer"] = max(out["longest_answer"], len(gold))
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--entries", type=int, default=5)
    p.add_argument("--timeout", type=int, default=60)
    p.add_argument("--out")
    p.add_argument("--audit", action="store_true", help="also audit rft's grader on every dataset")
    args = p.parse_args()
    import reasoning_gym as rg
    from reasoning_gym.factory import DATASETS

    signal.signal(signal.SIGALRM, _alarm)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in sorted(DATASETS):
            t0 = time.perf_counter()
            signal.alarm(args.timeout)
            try:
                row = survey_one(rg, name, args.entries, Path(tmp))
            except _Timeout:
                row = {"dataset": name, "error": f"timeout after {args.timeout}s"}
            except Exception as e:  # noqa: BLE001 - recorded per dataset
                row = {"dataset": name, "error": f"{type(e).__name__}: {str(e)[:120]}"}
            finally:
                signal.alarm(0)
            row["seconds"] = round(time.perf_counter() - t0, 2)
            results.append(row)
            print(json.dumps(row), flush=True)
    summary = {
        "datasets": len(results),
        "errors": [r["dataset"] for r in results if "error" in r],
        "reference_not_full": [r["dataset"] for r in results if any(s < 1 for s in r.get("reference", []))],
        "answer_none": [r["dataset"] for r in results if r.get("answer_none")],
        "executes_answer": [r["dataset"] for r in results if r.get("executes")],
    }
    for attack in ("empty", "garbage", "chatty", "period", "spray", "several"):
        summary[f"pays_{attack}"] = [r["dataset"] for r in results
                                     if any(isinstance(s, float) and s > 0 for s in r.get("attacks", {}).get(attack, []))]
        summary[f"full_{attack}"] = [r["dataset"] for r in results
                                     if any(isinstance(s, float) and s >= 1 for s in r.get("attacks", {}).get(attack, []))]
    print(json.dumps(summary, indent=1))
    if args.audit:
        summary["audit"] = audit_all([r["dataset"] for r in results if "error" not in r], args.entries)
        print(json.dumps(summary["audit"], indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps({"summary": summary, "rows": results}, indent=1))


def audit_all(names: list[str], entries: int) -> dict:
    """spec name -> attack -> datasets where that attack is a hole, through rft's grader."""
    from rft.safety.attacks import audit
    from rft.config import task_config
    from rft.tasks import TASKS

    rows = []
    for name in names:
        cfg = task_config(name="reasoning_gym", dataset=name, size=entries, val_size=1, chat=False)
        rows += [e for e in TASKS["reasoning_gym"](cfg, 0)[0] if e.get("answer") is not None]
    out: dict = {}
    for label, spec in (("default", {"type": "reasoning_gym"}),
                        ("partial_credit", {"type": "reasoning_gym", "partial_credit": True})):
        t0 = time.perf_counter()
        result = audit(spec, rows, workers=2)
        by_attack: dict[str, set[str]] = {}
        for h in result.holes:
            by_attack.setdefault(h.attack, set()).add(h.example_id.rsplit("-train-", 1)[0])
        out[label] = {"attacks": result.attacks_run, "holes": len(result.holes), "seconds": round(time.perf_counter() - t0, 1),
                      "by_attack": {a: sorted(d) for a, d in sorted(by_attack.items())}}
    return out


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
