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
query's result). The gold query never runs here, so no observation carries an expected value.
Not covered: databases given in the spec rather than the row (``sql.database``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from rft.data import Example
from rft.envs.base import EpisodeLimits
from rft.envs.sql_slips import slip
from rft.graders.base import Grade
from rft.graders.sql import QueryError, SqlGrader, extract_sql


def _cell(value: object) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass
class SqlRetryEpisode:
    env: "SqlRetry"
    example: Example
    queries: list[str] = field(default_factory=list)

    def step(self, turn: str) -> str | None:
        sql, why = extract_sql(turn)
        repeated = (self.env.on_success == "show" and bool(self.queries) and sql is not None
                    and sql == self.queries[-1])
        self.queries.append(sql if sql is not None else turn)
        if sql is None:
            return f"Error: {why}"
        if repeated:  # the model confirmed the query whose rows it was shown
            return None
        try:
            rows = self.env.grader.query(self.example, sql)  # no database: ValueError, an environment error
        except QueryError as e:
            return f"Error: {str(e).removeprefix('error: ')}"
        if self.env.on_success == "end":
            return None
        shown = "\n".join(" | ".join(_cell(v) for v in row) for row in rows[: self.env.feedback_rows])
        return f"{len(rows)} rows" + (f", first {min(len(rows), self.env.feedback_rows)}:\n{shown}" if rows else "")

    def answer(self) -> str:
        return self.queries[-1] if self.queries else ""

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
