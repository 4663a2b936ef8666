#!/usr/bin/env python
"""The real-vs-control table of BENCHMARKS.md from the run directories of bench/smollm2_control.sh
(or bench/demo_control.sh), one row per seed:

    python bench/control_table.py RUNS/s0 RUNS/s1 RUNS/s2 [--real demo-smollm2] [--json-out FILE]

Each directory holds the real run (``--real``) and its controls beside it (``REAL-control-shuffled``,
``REAL-control-random``). Per seed: held-out greedy pass@1 at step 0 and at the last validation of
each arm, what the grader explains against each control (``rft.report.attribution.attribute``: the
real gain minus the control's, bootstrap 95 % interval over held-out problems), what moved in the
controls (mean completion characters, the extraction-failure share where the grader logs one), the
real run's steps and wall time (``wall_s`` beside the runs, written by the bench script), and its
general-text NLL and held-out phrasings when the run has them (the SmolLM2 demo)."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rft.report.attribution import _val_metrics, attribute, validations, what_moved  # noqa: E402

CONTROLS = ("shuffled", "random")


def _pass(run: Path) -> tuple[float, float, int]:
    first, last, step = validations(run)
    return 100.0 * sum(first.values()) / len(first), 100.0 * sum(last.values()) / len(last), step


def number_share(run: Path, step: int) -> float | None:
    """The share of held-out greedy replies at ``step`` that end in a number ("... = 44", "So the answer
    is 44."), as "Answer with the number." asks: format compliance, whether the number is right or not."""
    path = run / "samples" / f"val_step_{step:06d}.jsonl"
    if not path.is_file():
        return None
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return 100.0 * sum(bool(re.search(r"\d[.)*]*$", r.get("completion", "").strip())) for r in rows) / max(len(rows), 1)


def one_seed(d: Path, real_name: str) -> dict:
    real = d / real_name
    start, after, step = _pass(real)
    row = {"dir": str(d), "start": start, "real_after": after, "steps": step,
           "wall_s": float((d / "wall_s").read_text()) if (d / "wall_s").is_file() else None}
    last = _val_metrics(real, step)
    first = _val_metrics(real, 0)
    if "val/cap/nll" in last:
        row["nll"] = (first["val/cap/nll"], last["val/cap/nll"])
    ph = real / "heldout_phrasings.eval.json"
    if ph.is_file():
        row["phrasings"] = [m["metrics"]["pass@1"] * 100 for m in json.loads(ph.read_text())["models"]]
    row["numbers"] = {"real": (number_share(real, 0), number_share(real, step))}
    row["real_moved"] = {k: v for k, v in what_moved(real, step).items() if "chars" in k or "extract" in k}
    for arm in CONTROLS:
        c = d / f"{real_name}-control-{arm}"
        if not c.is_dir():
            continue
        a = attribute(real, c)
        _, c_after, c_step = _pass(c)
        row["numbers"][arm] = (number_share(c, 0), number_share(c, c_step))
        row[arm] = {"after": c_after, "gain": a.control_gain, "real_gain": a.real_gain, "diff": a.diff,
                    "low": a.low, "high": a.high, "verdict": a.verdict,
                    "moved": {k: v for k, v in a.moved.items() if "chars" in k or "extract" in k or "format" in k}}
    return row


def _chars(moved: dict) -> str:
    v = moved.get("completion chars (mean)")
    return f"{v[0]:.0f} -> {v[1]:.0f}" if v else "-"


def table(rows: list[dict]) -> str:
    out = ["| seed dir | start | real: after (gain) | shuffled: after (gain) | random: after (gain) | grader explains "
           "(95 % CI), vs shuffled | vs random | reply chars: real / shuffled / random | replies ending in a number: real / "
           "shuffled / random | steps | wall |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cells = [Path(r["dir"]).name, f"{r['start']:.1f} %", f"{r['real_after']:.1f} % ({r['real_after'] - r['start']:+.1f})"]
        for arm in CONTROLS:
            a = r.get(arm)
            cells.append(f"{a['after']:.1f} % ({a['gain']:+.1f})" if a else "-")
        for arm in CONTROLS:
            a = r.get(arm)
            cells.append(f"{a['diff']:.1f} ({a['low']:+.1f} to {a['high']:+.1f})" if a else "-")
        cells.append(" / ".join([_chars(r["real_moved"])] + [_chars(r[a]["moved"]) if a in r else "-" for a in CONTROLS]))
        cells.append(" / ".join(f"{v[0]:.0f} -> {v[1]:.0f} %" if v and v[0] is not None and v[1] is not None else "-"
                                for v in (r["numbers"].get(k) for k in ("real", *CONTROLS))))
        cells += [str(r["steps"]), f"{r['wall_s']:.0f} s" if r["wall_s"] else "-"]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dirs", nargs="+", type=Path)
    p.add_argument("--real", default="demo-smollm2", help="the real run's directory name in each DIR")
    p.add_argument("--json-out", type=Path)
    args = p.parse_args()
    rows = [one_seed(d, args.real) for d in args.dirs]
    print(table(rows))
    for r in rows:
        extra = []
        if "nll" in r:
            extra.append(f"NLL {r['nll'][0]:.3f} -> {r['nll'][1]:.3f}")
        if "phrasings" in r:
            extra.append(f"phrasings {r['phrasings'][0]:.1f} % -> {r['phrasings'][1]:.1f} %")
        for arm in CONTROLS:
            if arm in r:
                extra.append(f"{arm}: {r[arm]['verdict']}")
        print(f"{Path(r['dir']).name}: " + "; ".join(extra))
    if args.json_out:
        args.json_out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
