"""sql grader: read-only execution, result comparison semantics, and a database left untouched."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from rft.config.base import SpecError
from rft.data import Example
from rft.graders import build
from rft.graders.sql import open_read_only


@pytest.fixture(scope="module")
def db_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("sqldb")
    conn = sqlite3.connect(d / "shop.db")
    conn.executescript(
        """
        CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT, price REAL, qty INTEGER);
        INSERT INTO items VALUES (1,'apple',1.5,10),(2,'pear',2.5,0),(3,'plum',2.5,7),(4,'fig',4.0,3);
        """
    )
    conn.commit()
    conn.close()
    return d


def ex(db_dir: Path, gold: str) -> Example:
    return Example("t", "Question about the shop.", {"db": "shop.db", "gold_sql": gold}, base_dir=str(db_dir))


def snapshot(d: Path) -> tuple[str, list[str]]:
    return hashlib.sha256((d / "shop.db").read_bytes()).hexdigest(), sorted(p.name for p in d.iterdir())


GOLD = "SELECT name FROM items WHERE price > 2 ORDER BY name"
CASES = [
    # id, spec overrides, gold, candidate, expected score
    ("same_query", {}, GOLD, GOLD, 1.0),
    ("equivalent_query", {}, GOLD, "select name from items where price >= 2.5 order by name asc", 1.0),
    ("fenced_sql_block", {}, GOLD, "```sql\n" + GOLD + ";\n```", 1.0),
    ("multiset_ignores_order_without_order_by", {}, "SELECT name FROM items WHERE qty > 0", "SELECT name FROM items WHERE qty > 0 ORDER BY name DESC", 1.0),
    ("column_order_ignored_when_configured", {"ignore_column_order": True}, "SELECT name, price FROM items", "SELECT price, name FROM items", 1.0),
    ("set_mode_ignores_duplicates", {"compare": "set"}, "SELECT DISTINCT price FROM items", "SELECT price FROM items", 1.0),
    ("cte_query_allowed", {}, "SELECT count(*) FROM items", "WITH x AS (SELECT * FROM items) SELECT count(*) FROM x", 1.0),
    ("values_query_allowed", {}, "SELECT 4", "VALUES (4)", 1.0),
    # adversarial negatives
    ("order_matters_when_gold_orders", {}, GOLD, "SELECT name FROM items WHERE price > 2 ORDER BY name DESC", 0.0),
    ("multiset_counts_duplicates", {}, "SELECT DISTINCT price FROM items", "SELECT price FROM items", 0.0),
    ("column_order_matters_by_default", {}, "SELECT name, price FROM items", "SELECT price, name FROM items", 0.0),
    ("drop_table", {}, GOLD, "DROP TABLE items", 0.0),
    ("delete_behind_cte", {}, GOLD, "WITH x AS (SELECT 1) DELETE FROM items", 0.0),
    ("insert_behind_cte", {}, GOLD, "WITH x AS (SELECT 1) INSERT INTO items VALUES (9,'z',1,1)", 0.0),
    ("update", {}, GOLD, "UPDATE items SET price = 0", 0.0),
    ("stacked_statements", {}, GOLD, GOLD + "; DROP TABLE items", 0.0),
    ("attach_new_file", {}, GOLD, "ATTACH DATABASE 'evil.db' AS evil", 0.0),
    ("pragma_write", {}, GOLD, "PRAGMA journal_mode = WAL", 0.0),
    ("pragma_table_valued_function", {}, GOLD, "SELECT * FROM pragma_table_info('items')", 0.0),
    ("vacuum_into_new_file", {}, GOLD, "VACUUM INTO 'copy.db'", 0.0),
    ("load_extension", {}, GOLD, "SELECT load_extension('libevil')", 0.0),
    ("create_temp_table", {}, GOLD, "CREATE TEMP TABLE t(a)", 0.0),
    ("begin_transaction", {}, GOLD, "BEGIN IMMEDIATE", 0.0),
    ("runaway_recursive_cte", {"max_steps": 200_000}, GOLD, "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r", 0.0),
    ("cross_join_over_row_cap", {"max_rows": 100}, GOLD, "SELECT a.name FROM items a, items b, items c, items d", 0.0),
    ("giant_blob", {}, GOLD, "SELECT zeroblob(500000000)", 0.0),
    ("two_sql_blocks_hedge", {}, GOLD, "```sql\nSELECT 1\n```\n```sql\n" + GOLD + "\n```", 0.0),
]


@pytest.mark.parametrize("overrides,gold,candidate,score", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_sql(db_dir, overrides, gold, candidate, score):
    before = snapshot(db_dir)
    grade = build({"type": "sql", **overrides})(candidate, ex(db_dir, gold))
    assert grade.score == score, grade.reason
    assert snapshot(db_dir) == before  # byte-identical database, no new file (evil.db, copy.db, -journal)


@pytest.mark.parametrize(
    "statement",
    [
        "DROP TABLE items", "INSERT INTO items VALUES (9,'z',1,1)", "ATTACH DATABASE 'x.db' AS x",
        "PRAGMA user_version = 7", "VACUUM", "VACUUM INTO 'copy.db'", "CREATE TABLE t(a)",
    ],
    ids=["drop", "insert", "attach", "pragma", "vacuum", "vacuum_into", "create"],
)
def test_connection_layer_alone_refuses_writes(db_dir, statement):
    # The keyword check in run_query is one layer; the connection itself must refuse as well.
    before = snapshot(db_dir)
    conn = open_read_only(db_dir / "shop.db")
    with pytest.raises(sqlite3.DatabaseError):
        conn.execute(statement)
    conn.close()
    assert snapshot(db_dir) == before


def test_failing_gold_skips_the_row(db_dir):
    grade = build({"type": "sql"})("SELECT 1", ex(db_dir, "SELECT nope FROM missing"))
    assert grade.passed is None and grade.details["skipped"]


def test_missing_database_skips_the_row(tmp_path):
    grade = build({"type": "sql"})("SELECT 1", ex(tmp_path, "SELECT 1"))
    assert grade.passed is None and "does not exist" in grade.reason


@pytest.mark.parametrize(
    "spec,field",
    [({"type": "sql", "compare": "bag"}, "compare"), ({"type": "sql", "database": "/no/such.db"}, "database"), ({"type": "sql", "max_rows": 0}, "max_rows")],
    ids=["unknown_compare", "missing_database_file", "zero_row_cap"],
)
def test_bad_spec_names_the_field(spec, field):
    with pytest.raises(SpecError, match=field):
        build(spec)
