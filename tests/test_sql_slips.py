"""The wrong first turns of SQL retry transcripts (rft.envs.sql_slips): each slip kind makes the error
SQLite gives for it on every gold query of the built-in task, the schema kinds are the errors a model
makes on a schema (a column of another table, an invented name, the wrong table), the draw mixes them
with the typos, and a transcript built from one is laid out as an episode lays it out."""

from __future__ import annotations

import random
import re
import sqlite3

import pytest

from rft.data import Example
from rft.envs.base import EpisodeLimits
from rft.envs.sql_retry import SqlRetry
from rft.envs.sql_slips import SLIP_MIX, slip
from rft.graders.registry import build
from rft.graders.sql import QueryError
from rft.tasks.sql import _natural_questions, _questions, ensure_database
from rft.tasks.sql_questions import SEEN, UNSEEN

COMPANY = {"dept": ("name", "city"), "emp": ("name", "dept", "age", "salary"), "proj": ("name", "dept", "budget")}
# kind -> the SQLite error every slip of that kind must give
ERRORS = {
    "name": r"no such (column|table): ",
    "keyword": r"syntax error|no such function|incomplete input|no such column|not a query",
    "closer": r"unrecognized token|incomplete input|syntax error",
    "foreign_column": r"no such column: (\w+\.)?(city|budget|age|salary|dept|name)$",
    "invented_column": r"no such column: (\w+\.)?\w+$",
    "wrong_table": r"no such table: \w+$|no such column: ",
}


@pytest.fixture(scope="module")
def company(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RFT_CACHE", str(tmp_path_factory.mktemp("rft-cache")))
        db = ensure_database()
        golds = [q[2] for q in _natural_questions(SEEN) + _natural_questions(UNSEEN)] + [q[2] for q in _questions()]
        yield Example("company", "q", {"db": str(db)}), list(dict.fromkeys(golds))


@pytest.mark.parametrize("kind", list(SLIP_MIX))
def test_each_slip_kind_fails_in_sqlite_with_its_error(company, kind):
    ex, golds = company
    grader, rng = build({"type": "sql"}), random.Random(0)
    made = 0
    for gold in golds:
        bad = slip(gold, rng, grader.schema(ex), kinds=[kind])
        if bad is None:
            continue
        made += 1
        with pytest.raises(QueryError) as e:
            grader.query(ex, bad)
        assert re.search(ERRORS[kind], str(e.value)), (kind, gold, bad, str(e.value))
    assert made >= 0.9 * len(golds), f"{kind}: a slip for only {made} of {len(golds)} gold queries"


def test_schema_slips_are_the_models_own_errors(company):
    """A column of a table the query does not read, an invented one, a wrong table: never a typo."""
    ex, _ = company
    schema, rng = build({"type": "sql"}).schema(ex), random.Random(1)
    gold = "SELECT name FROM emp WHERE dept = 'IT' AND age > 40"
    foreign = {slip(gold, rng, schema, ["foreign_column"]) for _ in range(50)}
    assert foreign <= {gold.replace(c, f) for c in ("name", "dept", "age") for f in ("city", "budget")}
    assert len(foreign) >= 3
    assert "SELECT emp_id FROM emp WHERE dept = 'IT' AND age > 40" in {
        slip(gold, rng, schema, ["invented_column"]) for _ in range(200)}
    tables = {slip(gold, rng, schema, ["wrong_table"]) for _ in range(50)}
    assert tables == {gold.replace("FROM emp", f"FROM {t}") for t in ("dept", "proj", "emps", "employee", "employees")}
    joined = "SELECT AVG(emp.salary) FROM emp JOIN dept ON emp.dept = dept.name WHERE dept.city = 'Rome'"
    assert {slip(joined, rng, schema, ["foreign_column"]) for _ in range(50)} >= {
        joined.replace("emp.salary", "emp.budget"), joined.replace("dept.city", "dept.budget")}


def test_without_a_schema_only_typos_are_drawn_and_unknown_kinds_are_refused():
    rng = random.Random(0)
    for _ in range(50):
        bad = slip("SELECT name FROM emp WHERE age > 40", rng)
        assert bad is not None and not re.search(r"\b(city|budget|title|emp_id|dept|proj)\b", bad)
    assert slip("1", rng, COMPANY) is None  # nothing to slip on
    with pytest.raises(ValueError, match="unknown slip kinds \\['typo'\\]"):
        slip("SELECT 1", rng, COMPANY, ["typo"])


def test_retry_transcripts_mix_schema_errors_with_typos(company):
    """``mistake`` (what an SFT warm start shows) draws every family, the schema errors most."""
    ex, golds = company
    env = SqlRetry(EpisodeLimits(max_turns=3), build({"type": "sql"}))
    rng = random.Random(0)
    errors = [env.mistake(Example(f"g{i}", "q", {"db": ex.get("db")}), g, rng)[1] for i, g in enumerate(golds[:300])]
    foreign = sum(bool(re.search(r"no such column: (\w+\.)?(city|budget)$", o)) for o in errors)
    tables = sum("no such table" in o for o in errors)
    typos = sum(bool(re.search(r"syntax error|unrecognized token|incomplete input", o)) for o in errors)
    assert foreign > typos > 0 and tables > 0, (foreign, tables, typos)


def test_the_schema_is_read_through_the_guards(tmp_path):
    path = tmp_path / "odd.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript('CREATE TABLE "we""ird"(a, "b c"); CREATE TABLE t(x INTEGER PRIMARY KEY, y);')
    conn.close()
    grader = build({"type": "sql"})
    assert grader.schema(Example("o", "q", {"db": str(path)})) == {'we"ird': ("a", "b c"), "t": ("x", "y")}
    with pytest.raises(ValueError, match="does not exist"):
        grader.schema(Example("o", "q", {"db": str(tmp_path / "none.sqlite")}))


def test_a_schema_slip_transcript_is_laid_out_as_an_episode(tiny_model_dir, company):
    from rft.envs.episodes import EpisodeRunner
    from rft.models.load import load_tokenizer
    from rft.tasks.sql_questions import chat_prompt
    from rft.training.evaluate import encode_prompt

    tok = load_tokenizer(tiny_model_dir)
    tok.chat_template = ("{% for m in messages %}{{ m['role'][0] }}:{{ m['content'] }}\n{% endfor %}"
                         "{% if add_generation_prompt %}a:{% endif %}")
    ex = Example("n", chat_prompt("What is the total budget of IT's projects?"),
                 {"db": company[0].get("db"), "gold_sql": "SELECT SUM(budget) FROM proj WHERE dept = 'IT'"})
    runner = EpisodeRunner.of(SqlRetry(EpisodeLimits(max_turns=3, max_observation_tokens=64), build({"type": "sql"})), tok)
    prompt = encode_prompt(tok, ex)
    ids = runner.retry_prompt(ex, prompt, ex.get("gold_sql"), random.Random(3))
    bad, obs = runner.env.mistake(ex, ex.get("gold_sql"), random.Random(3))
    turn = runner.fmt.text_ids(bad, True) + [tok.eos_token_id]
    assert ids == prompt + turn + runner.fmt.ids(obs, chat=True, turn_stopped=True)
    assert obs.startswith("Error: ") and ex.get("gold_sql") not in tok.decode(ids)
