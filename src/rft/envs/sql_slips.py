"""Wrong first turns for procedural SQL retry transcripts: the gold query with one slip SQLite refuses.

An SFT warm start shows a share of its rows as a retry transcript (``sft.retry_share``: a wrong query,
SQLite's error, the gold query). What the wrong query looks like decides what the model learns to fix.
Typos alone (a misspelled name or keyword, a dropped closer) teach it to correct spelling; the errors a
small model actually makes on a schema are semantic -- a column of another table (``SUM(budget) FROM
emp``), an invented name (``dept_id``), the wrong table -- and fixing those means reading the schema.
So, given the database's schema, :func:`slip` draws from both families, weighted by :data:`SLIP_MIX`:

==================  ====  =====================================================================
kind                share  what it does (the error SQLite gives)
==================  ====  =====================================================================
``name``            1/10   misspells a lower-case column or table (``no such column: nmae``)
``keyword``         1/10   misspells an upper-case keyword (``near "SELET": syntax error``)
``closer``          1/10   drops a ``)`` or a closing quote (``incomplete input``, ``unrecognized token``)
``foreign_column``  3/10   a column becomes one that exists only in a table the query does not read
                           (``no such column: budget`` on ``emp``)
``invented_column`` 2/10   a column becomes a plausible name no table has: ``<table>_id``,
                           ``<table>_<column>``, ``id``, ``title``, ``location``, ... (``no such column``)
``wrong_table``     2/10   a table the query reads becomes another table of the schema that lacks a
                           column the query needs, or a plausible one that does not exist (``employees``,
                           ``departments``) (``no such column`` / ``no such table``)
==================  ====  =====================================================================

The shares hold when a query allows every kind; the draw is among the kinds it allows, so without a
schema (``schema=None``) it is the three typo kinds, as before. Each schema kind is chosen so that
SQLite must refuse the result (the name resolves in no table in scope); the caller still runs it
(:meth:`rft.envs.sql_retry.SqlRetry.mistake`) and keeps only slips that fail.

Parsing is lexical: identifiers outside single-quoted strings, a table is a schema table right after
FROM or JOIN, a column is a schema column elsewhere (a name followed by ``.`` is a qualifier).
Not covered: slips that run but return wrong rows (a city used as a department, a wrong comparison:
no error to learn from under ``on_success: end``), several slips at once, quoted identifiers, CTEs.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

Schema = Mapping[str, Sequence[str]]  # table -> its columns

SLIP_MIX: dict[str, int] = {"name": 1, "keyword": 1, "closer": 1,
                            "foreign_column": 3, "invented_column": 2, "wrong_table": 2}
TYPO_KINDS = ("name", "keyword", "closer")

_IDENT = re.compile(r"\b[a-z_]{3,}\b")  # lower-case identifiers (columns, tables); keywords are upper-case
_KEYWORD = re.compile(r"\b(?:SELECT|FROM|WHERE|COUNT|ORDER|LIMIT|AND|JOIN|SUM|AVG|MAX|MIN)\b")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_AFTER_FROM = re.compile(r"\b(?:FROM|JOIN)\s*$", re.IGNORECASE)
_QUALIFIER = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\.\s*$")
# names a model invents for a column (beside <table>_id and <table>_<column>), and the long forms of
# common abbreviated table names (a model writes `employees` for `emp`)
_INVENTED = ("id", "title", "department", "location", "amount", "total", "cost")
_LONG = {"emp": "employee", "dept": "department", "proj": "project", "cust": "customer", "prod": "product",
         "acct": "account", "addr": "address", "cat": "category", "txn": "transaction"}
_ROWID = {"rowid", "oid", "_rowid_"}  # names SQLite resolves in every ordinary table


@dataclass(frozen=True)
class _Ref:
    start: int
    end: int
    word: str  # lower-case
    kind: str  # "table" or "column"
    qualifier: str | None = None  # the lower-case name before "." of a qualified column


def _inside_string(sql: str, pos: int) -> bool:
    return sql[:pos].count("'") % 2 == 1


def _misspell(word: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(word))
    edits = [word[:i] + word[i + 1:], word[:i] + word[i] + word[i:], word[:i - 1] + word[i] + word[i - 1] + word[i + 1:]]
    return rng.choice([w for w in edits if w != word] or [word + "s"])


def _refs(sql: str, tables: Mapping[str, set[str]]) -> list[_Ref]:
    """The query's references to the schema's tables (after FROM / JOIN) and columns, in order."""
    columns = set().union(*tables.values()) if tables else set()
    out = []
    for m in _WORD.finditer(sql):
        if _inside_string(sql, m.start()) or sql[m.end():].lstrip().startswith("."):
            continue  # a string's content, or a qualifier
        word, before = m.group(0).lower(), sql[: m.start()].rstrip()
        if _AFTER_FROM.search(before):
            if word in tables:
                out.append(_Ref(m.start(), m.end(), word, "table"))
        elif before.endswith("."):
            qualifier = _QUALIFIER.search(before)
            if word in columns:
                out.append(_Ref(m.start(), m.end(), word, "column", qualifier and qualifier.group(1).lower()))
        elif word in columns:
            out.append(_Ref(m.start(), m.end(), word, "column"))
    return out


def _schema_edits(sql: str, schema: Schema) -> dict[str, list[tuple[_Ref, str]]]:
    """Per schema kind, every (reference, replacement) that SQLite must refuse."""
    tables = {t.lower(): {c.lower() for c in cols} for t, cols in schema.items()}
    every_column = set().union(*tables.values()) if tables else set()
    refs = _refs(sql, tables)
    used = [r for r in refs if r.kind == "column"]
    scope = [r.word for r in refs if r.kind == "table"]
    in_scope = set().union(*(tables[t] for t in scope)) if scope else set()
    foreign = sorted(every_column - in_scope)
    names = [f"{t}_id" for t in scope] + [f"{t}_{r.word}" for t in scope for r in used[:2]] + list(_INVENTED)
    invented = [n for n in dict.fromkeys(names) if n not in every_column | set(tables) | _ROWID]

    def breaks(old: str, new: str) -> bool:  # some column would resolve in no table left in scope
        cols = set().union(*(tables[t] for t in scope if t != old), tables[new])
        return any(r.word not in cols or r.qualifier == old for r in used)

    wrong_tables = []
    for r in (r for r in refs if r.kind == "table"):
        others = [t for t in tables if t not in scope and breaks(r.word, t)]
        made_up = [n for n in (r.word + "s", _LONG.get(r.word), f"{_LONG.get(r.word)}s") if n and n not in tables]
        wrong_tables += [(r, t) for t in others + made_up]
    return {"foreign_column": [(r, c) for r in used if scope for c in foreign],
            "invented_column": [(r, n) for r in used if scope for n in invented],
            "wrong_table": wrong_tables}


def slip(sql: str, rng: random.Random, schema: Schema | None = None, kinds: Sequence[str] | None = None) -> str | None:
    """``sql`` with one slip of the kinds a model makes (:data:`SLIP_MIX`, the module docstring), drawn
    among the kinds the query allows (and ``kinds``, when given); None when it allows none. The schema
    kinds need ``schema`` (table -> columns, e.g. :meth:`rft.graders.sql.SqlGrader.schema`)."""
    wanted = set(SLIP_MIX if kinds is None else kinds)
    if unknown := wanted - set(SLIP_MIX):
        raise ValueError(f"unknown slip kinds {sorted(unknown)}; choose from {list(SLIP_MIX)}")
    names = [m for m in _IDENT.finditer(sql) if not _inside_string(sql, m.start())]
    keywords = [m for m in _KEYWORD.finditer(sql) if not _inside_string(sql, m.start())]
    closers = [i for i, ch in enumerate(sql) if ch == ")" or (ch == "'" and _inside_string(sql, i))]
    options: dict[str, list] = {"name": names, "keyword": keywords, "closer": closers}
    if schema:
        options.update(_schema_edits(sql, schema))
    allowed = [k for k in SLIP_MIX if k in wanted and options.get(k)]
    if not allowed:
        return None
    kind = rng.choices(allowed, weights=[SLIP_MIX[k] for k in allowed])[0]
    if kind == "closer":
        i = rng.choice(closers)
        return sql[:i] + sql[i + 1:]
    if kind in TYPO_KINDS:
        m = rng.choice(options[kind])
        return sql[: m.start()] + _misspell(m.group(0), rng) + sql[m.end():]
    ref, new = rng.choice(options[kind])
    return sql[: ref.start] + new + sql[ref.end:]
