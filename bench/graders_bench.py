"""Grades per second per grader family through the GraderPool (worker processes).

    python bench/graders_bench.py [--workers 2] [--scale 1.0] [--only math,regex]

Each family: a warm-up batch (starts the workers, imports, fills caches), then one timed batch of
realistic completions (about half right, half wrong). Prints a Markdown table. A benchmark, not a
test: numbers depend on the machine and on what else runs on it. Targets from issue 3:
math >= 300/s, string/regex/json >= 5,000/s.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from rft.data import Example
from rft.graders.pool import GraderPool

Batch = tuple[dict[str, Any], list[str], list[Example]]


def math_batch(n: int, _: Path) -> Batch:
    exs = [Example(str(i), f"Compute {i} / {i + 7}.", {"answer": f"\\frac{{{i}}}{{{i + 7}}}"}) for i in range(n)]
    comps = [f"Reducing, we get \\boxed{{\\frac{{{2 * i}}}{{{2 * i + 14}}}}}" if i % 2 else f"\\boxed{{{i}}}" for i in range(n)]
    return {"type": "math"}, comps, exs


def string_batch(n: int, _: Path) -> Batch:
    exs = [Example(str(i), "Capital?", {"answer": f"city{i % 50}"}) for i in range(n)]
    comps = [f"city{i % 50}" if i % 2 else f"town{i}" for i in range(n)]
    return {"type": "string_check", "operation": "eq"}, comps, exs


def regex_batch(n: int, _: Path) -> Batch:
    exs = [Example(str(i), "Give a date.", {}) for i in range(n)]
    comps = [f"2024-0{1 + i % 9}-1{i % 10}" if i % 2 else f"the date is {i}" for i in range(n)]
    return {"type": "regex", "pattern": r"\d{4}-\d{2}-\d{2}"}, comps, exs


def json_batch(n: int, _: Path) -> Batch:
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}, "tags": {"type": "array"}}, "required": ["name", "age"]}
    exs = [Example(str(i), "Extract.", {"schema": schema, "reference": {"name": f"p{i}", "age": i % 90, "tags": ["a", "b"]}}) for i in range(n)]
    comps = [json.dumps({"name": f"p{i}", "age": (i % 90) + (i % 2), "tags": ["a", "b"]}) for i in range(n)]
    return {"type": "json_schema"}, comps, exs


def similarity_batch(n: int, _: Path) -> Batch:
    ref = "the quick brown fox jumps over the lazy dog near the river bank"
    exs = [Example(str(i), "Describe.", {"answer": ref}) for i in range(n)]
    comps = [ref.replace("fox", f"fox{i % 7}") for i in range(n)]
    return {"type": "text_similarity", "evaluation_metric": "rouge_l", "pass_threshold": 0.8}, comps, exs


def sql_batch(n: int, tmp: Path) -> Batch:
    conn = sqlite3.connect(tmp / "bench.db")
    conn.executescript("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, price REAL);")
    conn.executemany("INSERT INTO t VALUES (?, ?, ?)", [(i, f"item{i}", i % 17) for i in range(500)])
    conn.commit()
    conn.close()
    exs = [Example(str(i), "Query.", {"db": "bench.db", "gold_sql": f"SELECT name FROM t WHERE price = {i % 17}"}, base_dir=str(tmp)) for i in range(n)]
    comps = [f"SELECT name FROM t WHERE price = {(i % 17) + (i % 2)}" for i in range(n)]
    return {"type": "sql"}, comps, exs


def logic_batch(n: int, _: Path) -> Batch:
    exs = [Example(str(i), "Knights?", {"answer": {"A": "knight", "B": "knave" if i % 3 else "knight"}}) for i in range(n)]
    comps = ["<answer>A is a knight. B is a knave.</answer>" for _ in range(n)]
    return {"type": "logic", "mode": "knights_knaves"}, comps, exs


def format_batch(n: int, _: Path) -> Batch:
    exs = [Example(str(i), "Think.", {}) for i in range(n)]
    comps = ["<think>reasoning here</think><answer>42</answer>" if i % 2 else "<answer>42</answer>" for i in range(n)]
    return {"type": "format"}, comps, exs


FAMILIES: dict[str, tuple[Callable[[int, Path], Batch], int]] = {
    "math": (math_batch, 1500),
    "string_check": (string_batch, 30000),
    "regex": (regex_batch, 30000),
    "json_schema": (json_batch, 20000),
    "text_similarity": (similarity_batch, 20000),
    "sql": (sql_batch, 10000),
    "logic (knights)": (logic_batch, 20000),
    "format": (format_batch, 30000),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every batch size")
    parser.add_argument("--only", default="", help="comma-separated family names")
    args = parser.parse_args()
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    print(f"| family | grades | seconds | grades/s | workers={args.workers} |")
    print("|---|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, (make, size) in FAMILIES.items():
            if only and name not in only:
                continue
            n = max(10, int(size * args.scale))
            spec, comps, exs = make(n, Path(tmp))
            with GraderPool(spec, workers=args.workers, timeout_s=30.0) as pool:
                warm = max(args.workers * 8, n // 20)
                pool.grade(comps[:warm], exs[:warm])
                pool.pop_stats()
                t0 = time.perf_counter()
                grades = pool.grade(comps, exs)
                seconds = time.perf_counter() - t0
                stats = pool.pop_stats().metrics()
            kind = spec["type"]
            mean = sum(g.score for g in grades) / n
            errors = int(stats.get(f"grader/{kind}/errors", 0))
            print(f"| {name} | {n} | {seconds:.2f} | {n / seconds:,.0f} | mean score {mean:.2f}, errors {errors} |", flush=True)


if __name__ == "__main__":
    main()
