"""``sql_retry``: the model writes a query, sees SQLite's error (or the first rows), and may fix it.

Each model turn's query (its one ```sql block, else the whole turn; :func:`rft.graders.sql.extract_sql`)
runs on the example's database with the ``sql`` grader's guards (a read-only connection, an
authorizer that denies every write, ATTACH and PRAGMA, and its row / VM-step / time bounds):

- the query fails (a syntax error, an unknown column, a refused statement, a bound hit): the
  observation is ``"Error: <SQLite's message>"`` and the model takes another turn;
- it runs: the episode ends (``on_success: end``, the default), or (``on_success: show``) the
  observation is the first ``feedback_rows`` rows and the row count, and the episode ends when the
  model writes the same query again or the turns run out.

The episode is graded on its last query by the run's grader (``sql``: compared with the gold
query's result); :meth:`SqlRetryEpisode.answer_turn` says at which turn a query first returned the
answer's rows (what ``episode/success_by_turn_k`` counts, so that under ``show`` a right first query
is a turn-1 success although the episode ends when it is repeated). The gold query never runs
here, so no observation carries an expected value.
Not covered: databases given in the spec rather than the row (``sql.database``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from rft.data import Example
from rft.envs.base import EpisodeLimits
from rft.envs.sql_slips import slip
from rft.graders.base import Grade
from rft.graders.sql import (
    QueryError,
    SqlGrader,
    extract_sql,
    has_order_by,
    results_equal,
)


def _cell(value: object) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass
class SqlRetryEpisode:
    env: "SqlRetry"
    example: Example
    queries: list[str] = field(default_factory=list)
    results: list[list[tuple[Any, ...]] | None] = field(default_factory=list)  # each turn's rows; None: it failed

    def step(self, turn: str) -> str | None:
        sql, why = extract_sql(turn)
        repeated = (self.env.on_success == "show" and bool(self.queries) and sql is not None
                    and sql == self.queries[-1] and self.results[-1] is not None)  # its rows were shown
        self.queries.append(sql if sql is not None else turn)
        if sql is None:
            self.results.append(None)
            return f"Error: {why}"
        if repeated:  # the model confirmed the query whose rows it was shown
            self.results.append(self.results[-1])
            return None
        try:
            rows = self.env.grader.query(self.example, sql)  # no database: ValueError, an environment error
        except QueryError as e:
            self.results.append(None)
            return f"Error: {str(e).removeprefix('error: ')}"
        self.results.append(rows)
        if self.env.on_success == "end":
            return None
        shown = "\n".join(" | ".join(_cell(v) for v in row) for row in rows[: self.env.feedback_rows])
        return f"{len(rows)} rows" + (f", first {min(len(rows), self.env.feedback_rows)}:\n{shown}" if rows else "")

    def answer(self) -> str:
        return self.queries[-1] if self.queries else ""

    def answer_turn(self) -> int:
        """The first turn whose query returned the rows of the answer's (compared as the grader compares
        results; in order when the answer has ORDER BY): the turn the answer was found, which under
        ``on_success: show`` is a turn before the model confirms it by repeating it. The last turn
        when the answer did not run."""
        last = self.results[-1] if self.results else None
        if last is None:
            return len(self.queries)
        spec = self.env.grader.spec
        ordered = spec.compare == "multiset" and has_order_by(self.queries[-1])
        return next(i + 1 for i, rows in enumerate(self.results)
                    if rows is not None and results_equal(last, rows, spec.compare, ordered, spec.ignore_column_order))

    def grade(self) -> Grade | None:
        return None


@dataclass
class SqlRetry:
    limits: EpisodeLimits
    grader: SqlGrader
    on_success: str = "end"
    feedback_rows: int = 3
    cue: str = "SQL: "

    def reset(self, example: Example) -> SqlRetryEpisode:
        return SqlRetryEpisode(self, example)

    def check_row(self, example: Example) -> None:
        """ValueError when ``example`` has no readable database (the pre-flight check of every row)."""
        self.grader.check_database(example)

    def mistake(self, example: Example, target: str, rng: random.Random) -> tuple[str, str] | None:
        """(a wrong first turn, the observation it gets) for a procedural retry transcript whose second
        turn is ``target`` (an SFT warm start): ``target`` with one slip (:func:`rft.envs.sql_slips.slip`:
        a typo, or a column / table the database's schema does not have where the query uses it), when
        SQLite refuses it. None when no such slip fails (the example gets no transcript)."""
        schema = self.grader.schema(example)
        for _ in range(8):
            bad = slip(target, rng, schema)
            if bad is None:
                return None
            observation = SqlRetryEpisode(self, example).step(bad)
            if observation is not None and observation.startswith("Error: "):
                return bad, observation
        return None
