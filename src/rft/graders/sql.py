"""The ``sql`` grader: run the candidate and the gold query on SQLite, read-only, and compare results.

Spec (defaults shown)::

    {"type": "sql", "db_field": "db", "gold_field": "gold_sql", "database": null,
     "compare": "multiset" | "set", "ignore_column_order": false,
     "max_rows": 10000, "max_steps": 5000000, "timeout_s": 2.0}

The database is the row's ``db`` (a path; relative paths are resolved against the directory of the
dataset file) or the spec's ``database``. The candidate is the completion, or the content of its one
```sql fenced block. Formula: score = 1 if the candidate's result equals the gold's, else 0:

- ``multiset`` (Spider test-suite semantics): rows compared as a multiset, and as an ordered list
  when the gold query has ``ORDER BY``;
- ``set`` (BIRD semantics): ``set(candidate rows) == set(gold rows)``;
- ``ignore_column_order``: equal under some permutation of the candidate's columns.
Values compare as Python values (``1 == 1.0``, as SQLite returns them).

Safety, layered so that the database file stays byte-identical and no file is created:
a ``mode=ro`` URI connection; ``PRAGMA query_only``; ``temp_store=MEMORY`` (no temp files);
``SQLITE_LIMIT_ATTACHED`` = 0; an authorizer that allows only SELECT, reads, recursive CTEs and
functions not on a deny list (``load_extension``, ``readfile``, ``writefile``, ``edit``,
``fts3_tokenizer``, ...), denying every write, DDL, ATTACH/DETACH, PRAGMA, transaction and VACUUM;
the statement must start with SELECT, WITH or VALUES and be a single statement; extension loading
stays disabled. Bounds: a progress handler stops the query after ``max_steps`` VM steps or
``timeout_s`` seconds; strings/blobs are capped at 1 MB (``SQLITE_LIMIT_LENGTH``); more than
``max_rows`` rows fails the candidate (and skips a gold).

Not covered: float tolerance, Spider's "test-suite" distilled databases (one database per row
here), non-SQLite dialects. A database in WAL mode with un-checkpointed frames may need its
``-shm`` file; keep grading databases in rollback-journal mode.
"""

from __future__ import annotations

import itertools
import re
import sqlite3
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rft.config.base import SpecError
from rft.config.graders import SqlSpec
from rft.data import Example
from rft.graders.base import Grade

_ALLOWED_ACTIONS = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
_DENIED_FUNCTIONS = {
    "load_extension", "readfile", "writefile", "edit", "fts3_tokenizer", "zipfile",
    "sqlar_compress", "sqlar_uncompress", "fsdir", "sqlite_dbpage", "sqlite_dbdata",
}
_LEAD = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*([A-Za-z]+)", re.DOTALL)
_FENCE = re.compile(r"```(?:sql|sqlite)?[ \t]*\n(.*?)\n?```", re.DOTALL | re.IGNORECASE)
_STRINGS_AND_COMMENTS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/", re.DOTALL)
_STEP = 1000  # VM instructions between progress-handler calls
MAX_TABLES = 1000  # tables SqlGrader.schema reads from one database


class QueryError(Exception):
    """The query was refused, failed, or ran past a bound."""


def _authorize(action: int, arg1: str | None, arg2: str | None, db: str | None, trigger: str | None) -> int:
    if action not in _ALLOWED_ACTIONS:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in _DENIED_FUNCTIONS:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def open_read_only(path: Path) -> sqlite3.Connection:
    """A connection that can only read ``path`` (see the module docstring for the layers)."""
    uri = f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA query_only = ON")
    conn.execute("PRAGMA temp_store = MEMORY")
    conn.execute("PRAGMA trusted_schema = OFF")
    conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 1_000_000)
    conn.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, 100_000)
    conn.set_authorizer(_authorize)  # last: the PRAGMAs above would be denied
    return conn


def has_order_by(sql: str) -> bool:
    """True when the query (outside strings and comments) has ORDER BY -- Spider's ordered check."""
    return re.search(r"\border\s+by\b", _STRINGS_AND_COMMENTS.sub(" ", sql), re.IGNORECASE) is not None


def run_query(conn: sqlite3.Connection, sql: str, max_rows: int, max_steps: int, timeout_s: float) -> list[tuple[Any, ...]]:
    """Rows of one read-only SELECT, or ``QueryError`` with a short reason."""
    lead = _LEAD.match(sql)
    if lead is None or lead.group(1).upper() not in ("SELECT", "WITH", "VALUES"):
        raise QueryError(f"not a query: starts with {sql.strip()[:20]!r}; only SELECT / WITH / VALUES")
    deadline, calls = time.monotonic() + timeout_s, [0]

    def progress() -> int:
        calls[0] += 1
        return int(calls[0] * _STEP > max_steps or time.monotonic() > deadline)

    conn.set_progress_handler(progress, _STEP)
    try:
        cursor = conn.execute(sql)
        rows = cursor.fetchmany(max_rows + 1)
        cursor.close()
    except sqlite3.OperationalError as e:
        if str(e) == "interrupted":
            raise QueryError(f"stopped: over {max_steps} steps or {timeout_s:g}s") from None
        raise QueryError(f"error: {e}") from None
    except (sqlite3.DatabaseError, sqlite3.ProgrammingError, sqlite3.Warning, OverflowError, MemoryError) as e:
        raise QueryError(f"error: {e}") from None
    finally:
        conn.set_progress_handler(None, _STEP)
    if len(rows) > max_rows:
        raise QueryError(f"more than {max_rows} rows")
    return rows


def extract_sql(completion: str) -> tuple[str | None, str]:
    fences = _FENCE.findall(completion)
    if len(fences) > 1:
        return None, f"{len(fences)} SQL blocks; give exactly one query"
    sql = (fences[0] if fences else completion).strip()
    return (sql, "") if sql else (None, "empty query")


def _column_signature(rows: list[tuple[Any, ...]], i: int, as_set: bool) -> Any:
    column = [row[i] for row in rows]
    return frozenset(column) if as_set else frozenset(Counter(column).items())


def results_equal(gold: list[tuple[Any, ...]], cand: list[tuple[Any, ...]], compare: str, ordered: bool, ignore_column_order: bool) -> bool:
    """Compare two results under the module's semantics; ``ordered`` applies to ``multiset`` only."""

    def same(permuted: list[tuple[Any, ...]]) -> bool:
        if compare == "set":
            return set(gold) == set(permuted)
        return gold == permuted if ordered else Counter(gold) == Counter(permuted)

    if same(cand):
        return True
    width = len(gold[0]) if gold else 0
    if not ignore_column_order or not gold or not cand or len(cand[0]) != width:
        return False
    # Candidate column j may stand for gold column i only if their value multisets (sets) agree.
    as_set = compare == "set"
    options = [
        [j for j in range(width) if _column_signature(cand, j, as_set) == _column_signature(gold, i, as_set)]
        for i in range(width)
    ]
    for tries, perm in enumerate(itertools.product(*options)):
        if tries >= 10_000:
            return False
        if len(set(perm)) == width and same([tuple(row[j] for j in perm) for row in cand]):
            return True
    return False


@dataclass
class SqlGrader:
    spec: SqlSpec
    _conns: dict[str, sqlite3.Connection] = field(default_factory=dict, repr=False)
    _gold: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)
    _schemas: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_spec(cls, spec: SqlSpec) -> "SqlGrader":
        if spec.database is not None and not Path(spec.database).is_file():
            raise SpecError(f"sql grader: field 'database' = {spec.database!r}: no such file; "
                            "give the path of an SQLite database file")
        return cls(spec)

    @property
    def timeout_s(self) -> float:
        """A query's wall clock; the pool reads it as this grader's own bound."""
        return self.spec.timeout_s

    def _db_path(self, example: Example) -> Path | str:
        raw = self.spec.database if self.spec.database is not None else example.get(self.spec.db_field)
        if not isinstance(raw, str) or not raw:
            return f"example has no '{self.spec.db_field}' field (path of an SQLite file)"
        path = Path(raw)
        if not path.is_absolute() and example.base_dir is not None and self.spec.database is None:
            path = Path(example.base_dir) / path
        if path.is_file():
            return path
        return f"database {str(path)!r} " + ("is not a regular file" if path.exists() else "does not exist")

    def _run(self, path: Path, sql: str) -> list[tuple[Any, ...]]:
        key = str(path.resolve())
        if key not in self._conns:
            self._conns[key] = open_read_only(path)
        return run_query(self._conns[key], sql, self.spec.max_rows, self.spec.max_steps, self.spec.timeout_s)

    def _gold_rows(self, path: Path, gold_sql: str) -> list[tuple[Any, ...]] | str:
        key = (str(path), gold_sql)
        if key not in self._gold:
            if len(self._gold) > 4096:
                self._gold.clear()
            try:
                self._gold[key] = self._run(path, gold_sql)
            except QueryError as e:
                self._gold[key] = f"gold query failed ({e}); row skipped"
        return self._gold[key]

    def check_database(self, example: Example) -> None:
        """ValueError naming why the example has no database this grader can read: no field, no file,
        or a file SQLite cannot open (what ``sql_retry`` checks on every row before a run starts)."""
        path = self._db_path(example)
        if isinstance(path, str):
            raise ValueError(path)
        try:
            with self._lock:
                self._run(path, "SELECT count(*) FROM sqlite_master")
        except (QueryError, sqlite3.Error) as e:
            raise ValueError(f"database {str(path)!r} cannot be read as SQLite ({e})") from None

    def schema(self, example: Example) -> dict[str, tuple[str, ...]]:
        """The example's database as table -> column names (its ordinary tables, at most ``MAX_TABLES``),
        read through the same guarded connection: the names from ``sqlite_master``, each table's
        columns from ``SELECT * ... LIMIT 0`` (the authorizer denies ``PRAGMA table_info``). Cached per
        database file. ValueError when the example names no usable database, QueryError when SQLite
        refuses to read it."""
        path = self._db_path(example)
        if isinstance(path, str):
            raise ValueError(path)
        key = str(path.resolve())
        with self._lock:
            if key not in self._schemas:
                names = self._run(path, "SELECT name FROM sqlite_master WHERE type = 'table' "
                                        "AND name NOT LIKE 'sqlite!_%' ESCAPE '!' ORDER BY rowid")
                self._schemas[key] = {str(n): self._columns(key, str(n)) for (n,) in names[:MAX_TABLES]}
            return self._schemas[key]

    def _columns(self, key: str, table: str) -> tuple[str, ...]:
        quoted = '"' + table.replace('"', '""') + '"'
        try:
            cursor = self._conns[key].execute(f"SELECT * FROM {quoted} LIMIT 0")
        except sqlite3.Error as e:
            raise QueryError(f"error: {e}") from None
        names = tuple(str(d[0]) for d in cursor.description or ())
        cursor.close()
        return names

    def query(self, example: Example, sql: str) -> list[tuple[Any, ...]]:
        """Rows of one candidate query on the example's database, under this grader's guards and bounds
        (what the ``sql_retry`` environment shows the model); ``QueryError`` when it fails, ValueError
        when the example names no usable database."""
        path = self._db_path(example)
        if isinstance(path, str):
            raise ValueError(path)
        with self._lock:
            return self._run(path, sql)

    def __call__(self, completion: str, example: Example) -> Grade:
        path, gold_sql = self._db_path(example), example.get(self.spec.gold_field)
        if isinstance(path, str):
            return Grade(0.0, None, path, {"skipped": True})
        if not isinstance(gold_sql, str) or not gold_sql.strip():
            return Grade(0.0, None, f"example has no '{self.spec.gold_field}' field", {"skipped": True})
        sql, why = extract_sql(completion)
        if sql is None:
            return Grade(0.0, False, why, {})
        with self._lock:  # one connection per database: queries on it run one at a time
            gold = self._gold_rows(path, gold_sql)
            if isinstance(gold, str):
                return Grade(0.0, None, gold, {"skipped": True})
            try:
                rows = self._run(path, sql)
            except QueryError as e:
                return Grade(0.0, False, f"candidate {e}"[:300], {"query_error": True})
        ordered = self.spec.compare == "multiset" and has_order_by(gold_sql)
        ok = results_equal(gold, rows, self.spec.compare, ordered, self.spec.ignore_column_order)
        how = "ordered" if ordered else self.spec.compare
        reason = f"{len(rows)} rows {'match' if ok else 'differ from'} the gold's {len(gold)} ({how})"
        return Grade(float(ok), ok, reason, {"rows": len(rows), "gold_rows": len(gold), "comparison": how})
