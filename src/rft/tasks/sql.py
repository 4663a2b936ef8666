"""Built-in SQL task: templated questions about a small company database, answered with one query.

The database (tables ``emp(name,dept,age,salary)``, ``dept(name,city)``, ``proj(name,dept,budget)``)
has fixed content, independent of the seed. It is written once to
``$RFT_CACHE/tasks/sql/company-<hash>.sqlite`` (default ``~/.cache/rft``), named by a hash of the
script that builds it, atomically (a temporary file renamed into place) and in rollback-journal
mode, as the ``sql`` grader asks. Every example's ``db`` field is that absolute path.

Questions are enumerated from templates ("Names in IT older than 40?") and kept only when their
``gold_sql`` returns at least one row that is not all NULL: an empty gold would reward any query
that returns nothing. The seed shuffles the questions; the first ``val_size`` are validation.
Fields: ``db``, ``gold_sql``, ``solution`` (the gold query, as an SFT target) and ``template``.
Prompts stay short (the schema line, the question, ``SQL:``) because the tiny model is char-level.

With ``questions: natural`` (for chat models) the questions come from :mod:`rft.tasks.sql_questions`
instead: chat prompts with the schema, several phrasings per intent, validation split by parameters,
and intents held out of training and validation alike (:func:`unseen_template_questions`).

Not covered: questions whose answer needs more than one join, NULL-bearing data, per-seed databases.
"""

from __future__ import annotations

import hashlib
import os
import random
import sqlite3
import tempfile
import urllib.parse
from pathlib import Path

from rft.config.tasks import SqlTask
from rft.data import Example
from rft.tasks.split import DEFAULT_TRAIN_SIZE, split_front, wanted

GRADER_SPEC = {"type": "sql"}
SCHEMA = "emp(name,dept,age,salary) dept(name,city) proj(name,dept,budget)"

_NAMES = ("Ada Ben Cy Dee Eva Finn Gus Hal Ivy Jo Kai Lea Max Nia Oto Pam Quin Rex Sam Tia "
          "Uma Vic Wes Xia Yul Zoe Abe Bea Cal Dot").split()
_DEPTS = {"Sales": "Paris", "Ops": "Lyon", "IT": "Oslo", "HR": "Paris", "Legal": "Rome"}
_PROJECTS = ("Atlas", "Beacon", "Comet", "Delta", "Echo", "Flint", "Gale", "Helix", "Iris", "Jade")


def build_script() -> str:
    """The SQL that creates the database: fixed content from a fixed rng (salaries are distinct)."""
    rng = random.Random(20240501)
    depts = list(_DEPTS)
    salaries = rng.sample(range(30, 150), len(_NAMES))
    lines = [
        "CREATE TABLE dept(name TEXT PRIMARY KEY, city TEXT NOT NULL);",
        "CREATE TABLE emp(name TEXT PRIMARY KEY, dept TEXT NOT NULL REFERENCES dept(name), "
        "age INTEGER NOT NULL, salary INTEGER NOT NULL);",
        "CREATE TABLE proj(name TEXT PRIMARY KEY, dept TEXT NOT NULL REFERENCES dept(name), budget INTEGER NOT NULL);",
    ]
    lines += [f"INSERT INTO dept VALUES('{d}','{c}');" for d, c in _DEPTS.items()]
    for i, (name, salary) in enumerate(zip(_NAMES, salaries)):
        lines.append(f"INSERT INTO emp VALUES('{name}','{depts[i % len(depts)]}',{rng.randint(21, 64)},{salary});")
    for i, name in enumerate(_PROJECTS):
        lines.append(f"INSERT INTO proj VALUES('{name}','{depts[i % len(depts)]}',{rng.randrange(10, 100, 5)});")
    return "\n".join(lines) + "\n"


def cache_dir() -> Path:
    return Path(os.environ.get("RFT_CACHE", Path.home() / ".cache" / "rft")) / "tasks" / "sql"


def ensure_database(directory: Path | None = None) -> Path:
    """The database file, created atomically on first use; its name carries the script's hash."""
    script = build_script()
    directory = directory or cache_dir()
    path = directory / f"company-{hashlib.sha256(script.encode()).hexdigest()[:12]}.sqlite"
    if path.is_file():
        return path.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=path.name + ".tmp-")
    os.close(fd)
    try:
        conn = sqlite3.connect(tmp)
        try:
            conn.executescript(script)
            conn.commit()
        finally:
            conn.close()
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path.resolve()


def _questions() -> list[tuple[str, str, str]]:
    """(template, question, gold_sql) for every template and parameter, in a fixed order."""
    out: list[tuple[str, str, str]] = []
    for d in _DEPTS:
        out.append(("count_dept", f"How many employees in {d}?", f"SELECT COUNT(*) FROM emp WHERE dept='{d}'"))
        out.append(("top_earner", f"Top earner in {d}?",
                    f"SELECT name FROM emp WHERE dept='{d}' ORDER BY salary DESC LIMIT 1"))
        out.append(("city_of", f"City of {d}?", f"SELECT city FROM dept WHERE name='{d}'"))
        out.append(("projects_of", f"Projects of {d}?", f"SELECT name FROM proj WHERE dept='{d}'"))
        out.append(("budget_of", f"Total budget of {d}?", f"SELECT SUM(budget) FROM proj WHERE dept='{d}'"))
        for word, fn in (("Average", "AVG"), ("Highest", "MAX"), ("Lowest", "MIN")):
            for col in ("age", "salary"):
                out.append(("aggregate", f"{word} {col} in {d}?", f"SELECT {fn}({col}) FROM emp WHERE dept='{d}'"))
        for n in range(22, 64):
            out.append(("older_in", f"Names in {d} older than {n}?",
                        f"SELECT name FROM emp WHERE dept='{d}' AND age>{n}"))
            out.append(("younger_in", f"Names in {d} younger than {n}?",
                        f"SELECT name FROM emp WHERE dept='{d}' AND age<{n}"))
        for s in range(30, 150, 5):
            out.append(("earning_in", f"Names in {d} earning over {s}?",
                        f"SELECT name FROM emp WHERE dept='{d}' AND salary>{s}"))
    for c in dict.fromkeys(_DEPTS.values()):
        out.append(("count_city", f"How many work in {c}?",
                    f"SELECT COUNT(*) FROM emp JOIN dept d ON dept=d.name WHERE city='{c}'"))
    for n in range(22, 64):
        out.append(("count_older", f"How many are older than {n}?", f"SELECT COUNT(*) FROM emp WHERE age>{n}"))
    for s in range(30, 150, 5):
        out.append(("count_earning", f"How many earn over {s}?", f"SELECT COUNT(*) FROM emp WHERE salary>{s}"))
    for b in range(10, 100, 5):
        out.append(("big_projects", f"Projects with budget over {b}?", f"SELECT name FROM proj WHERE budget>{b}"))
    return out


def _answerable(conn: sqlite3.Connection, gold_sql: str) -> bool:
    rows = conn.execute(gold_sql).fetchall()
    return bool(rows) and any(v is not None for row in rows for v in row)


def _kept(questions: list, gold_at: int = 2) -> list:
    """The questions whose gold query returns a row that is not all NULL."""
    conn = sqlite3.connect(f"file:{urllib.parse.quote(str(ensure_database()))}?mode=ro", uri=True)
    try:
        return [q for q in questions if _answerable(conn, q[gold_at])]
    finally:
        conn.close()


def _natural(rows: list[tuple[str, str, str]], db: Path, kind: str) -> list[Example]:
    from rft.tasks.sql_questions import chat_prompt

    return [Example(id=f"sql-{kind}-{i}", prompt=chat_prompt(question),
                    fields={"db": str(db), "gold_sql": gold, "solution": gold, "template": intent})
            for i, (intent, question, gold) in enumerate(rows)]


def _natural_questions(intents: dict) -> list:
    from rft.tasks.sql_questions import questions

    return _kept(questions(intents, list(_DEPTS), list(dict.fromkeys(_DEPTS.values()))))


def unseen_template_questions(cfg: SqlTask, seed: int) -> list[Example]:
    """Up to ``val_size`` questions (one phrasing each) of the intents training never sees
    (:data:`rft.tasks.sql_questions.UNSEEN`), as chat prompts: compositional transfer."""
    from rft.tasks.sql_questions import UNSEEN, one_phrasing_each

    return _natural(one_phrasing_each(_natural_questions(UNSEEN), cfg.val_size, seed), ensure_database(), "unseen")


def make_sql(cfg: SqlTask, seed: int) -> tuple[list[Example], list[Example], dict]:
    """(train, val, grader_spec). Deterministic in ``seed``; val and train share no question."""
    db = ensure_database()
    if cfg.questions == "natural":
        from rft.tasks.sql_questions import SEEN, split_by_parameters

        train_rows, val_rows = split_by_parameters(_natural_questions(SEEN), cfg.val_size,
                                                   cfg.train_size or DEFAULT_TRAIN_SIZE, seed)
        return _natural(train_rows, db, "train"), _natural(val_rows, db, "val"), dict(GRADER_SPEC)
    kept = _kept(_questions())
    random.Random(seed).shuffle(kept)
    examples = [
        Example(
            id=f"sql-{i}",
            prompt=f"{SCHEMA}\nQ: {question}\nSQL: ",
            fields={"db": str(db), "gold_sql": gold, "solution": gold, "template": template},
        )
        for i, (template, question, gold) in enumerate(kept[: wanted(cfg)])
    ]
    train, val = split_front(examples, cfg)
    return train, val, dict(GRADER_SPEC)
