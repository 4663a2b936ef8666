"""The SQL task's natural questions (``data.task.questions: natural``), for chat models.

Questions are phrased as people ask them ("Which employees in Sales are older than 45?", "What is
the total budget of IT's projects?"), several phrasings per *intent* (one query shape, e.g.
``older_in``: a department and an age), and need filters, joins, aggregates and ordering. Each
example is a chat prompt: the system message :data:`SYSTEM` (the schema as ``CREATE TABLE``
statements and the instruction to reply with one query), the user message the question. The gold
query (``gold_sql``, and ``solution`` for an SFT warm start) is plain SQLite with no fence.

**Three held-out sets.** :data:`SEEN` intents feed training and validation, split by *parameters*:
a validation question never has the intent and parameters (department, age, ...) of a training
question, under any phrasing. :data:`UNSEEN` intents compose seen pieces in shapes training never
shows (an average over a join, a count with an age filter, the projects of a city): only
:func:`unseen_template_questions` draws them, so success on them is compositional transfer,
reported apart from validation.

Deterministic in the seed. Not covered: questions with more than one join, GROUP BY, NULLs.
"""

from __future__ import annotations

import random
from typing import Iterator

SYSTEM = (
    "You write SQLite queries for this database:\n"
    "CREATE TABLE dept(name TEXT PRIMARY KEY, city TEXT);\n"
    "CREATE TABLE emp(name TEXT PRIMARY KEY, dept TEXT REFERENCES dept(name), age INTEGER, salary INTEGER);\n"
    "CREATE TABLE proj(name TEXT PRIMARY KEY, dept TEXT REFERENCES dept(name), budget INTEGER);\n"
    "Reply with one SQL query and nothing else."
)

# intent -> (phrasings, gold query); placeholders {d} department, {c} city, {n} age, {s} salary,
# {b} budget, {agg}/{fn} an aggregate's word and SQL function, {col} a column of emp
Intent = tuple[tuple[str, ...], str]

SEEN: dict[str, Intent] = {
    "count_dept": (("How many employees work in {d}?", "How many people are in the {d} department?",
                    "Count the employees of {d}."),
                   "SELECT COUNT(*) FROM emp WHERE dept = '{d}'"),
    "top_earner": (("Who earns the most in {d}?", "Who is the highest-paid employee in {d}?",
                    "Which {d} employee has the highest salary?"),
                   "SELECT name FROM emp WHERE dept = '{d}' ORDER BY salary DESC LIMIT 1"),
    "city_of": (("Which city is the {d} department in?", "Where is {d} located?", "In what city is {d}?"),
                "SELECT city FROM dept WHERE name = '{d}'"),
    "projects_of": (("Which projects does {d} run?", "List the projects of the {d} department.",
                     "What projects belong to {d}?"),
                    "SELECT name FROM proj WHERE dept = '{d}'"),
    "budget_of": (("What is the total budget of {d}'s projects?", "How much budget do {d}'s projects have in total?",
                   "Sum up the project budgets of {d}."),
                  "SELECT SUM(budget) FROM proj WHERE dept = '{d}'"),
    "aggregate": (("What is the {agg} {col} in {d}?", "What's the {agg} {col} of employees in {d}?",
                   "Give me the {agg} {col} of the {d} department."),
                  "SELECT {fn}({col}) FROM emp WHERE dept = '{d}'"),
    "older_in": (("Which employees in {d} are older than {n}?", "Who in {d} is over {n} years old?",
                  "List the {d} employees older than {n}."),
                 "SELECT name FROM emp WHERE dept = '{d}' AND age > {n}"),
    "younger_in": (("Which employees in {d} are younger than {n}?", "Who in {d} is under {n} years old?",
                    "List the {d} employees younger than {n}."),
                   "SELECT name FROM emp WHERE dept = '{d}' AND age < {n}"),
    "earning_in": (("Which employees in {d} earn more than {s}?", "Who in {d} has a salary above {s}?",
                    "List the {d} employees with a salary over {s}."),
                   "SELECT name FROM emp WHERE dept = '{d}' AND salary > {s}"),
    "count_older": (("How many employees are older than {n}?", "How many people are over {n} years old?",
                     "Count the employees older than {n}."),
                    "SELECT COUNT(*) FROM emp WHERE age > {n}"),
    "count_earning": (("How many employees earn more than {s}?", "How many people have a salary above {s}?",
                       "Count the employees earning over {s}."),
                      "SELECT COUNT(*) FROM emp WHERE salary > {s}"),
    "big_projects": (("Which projects have a budget over {b}?", "List the projects with a budget above {b}.",
                      "What projects cost more than {b}?"),
                     "SELECT name FROM proj WHERE budget > {b}"),
    "count_city": (("How many employees work in {c}?", "How many people are based in {c}?",
                    "Count the employees whose department is in {c}."),
                   "SELECT COUNT(*) FROM emp JOIN dept ON emp.dept = dept.name WHERE dept.city = '{c}'"),
    "staff_in_city": (("Which employees work in {c}?", "List the people based in {c}.",
                       "Who works in a department in {c}?"),
                      "SELECT emp.name FROM emp JOIN dept ON emp.dept = dept.name WHERE dept.city = '{c}'"),
    "ranked_salary": (("List the employees of {d} from highest to lowest salary.",
                       "Rank the {d} employees by salary, highest first.",
                       "Who works in {d}, ordered by salary from the top?"),
                      "SELECT name FROM emp WHERE dept = '{d}' ORDER BY salary DESC"),
}

UNSEEN: dict[str, Intent] = {
    "avg_salary_city": (("What is the average salary of employees in {c}?",
                         "What do people based in {c} earn on average?"),
                        "SELECT AVG(emp.salary) FROM emp JOIN dept ON emp.dept = dept.name WHERE dept.city = '{c}'"),
    "count_older_in": (("How many employees in {d} are older than {n}?", "How many people in {d} are over {n}?"),
                       "SELECT COUNT(*) FROM emp WHERE dept = '{d}' AND age > {n}"),
    "count_projects": (("How many projects does {d} have?", "How many projects belong to {d}?"),
                       "SELECT COUNT(*) FROM proj WHERE dept = '{d}'"),
    "projects_in_city": (("Which projects are run by departments in {c}?", "List the projects based in {c}."),
                         "SELECT proj.name FROM proj JOIN dept ON proj.dept = dept.name WHERE dept.city = '{c}'"),
    "oldest_in": (("Who is the oldest employee in {d}?", "Which {d} employee is the oldest?"),
                  "SELECT name FROM emp WHERE dept = '{d}' ORDER BY age DESC LIMIT 1"),
}

_AGGREGATES = (("average", "AVG"), ("highest", "MAX"), ("lowest", "MIN"))


def _parameters(intent: str, gold: str, depts: list[str], cities: list[str]) -> Iterator[dict[str, object]]:
    """Every parameter combination the intent's gold query takes."""
    keys = [k for k in ("d", "c", "n", "s", "b", "fn") if "{" + k + "}" in gold]
    choices: dict[str, list[dict[str, object]]] = {
        "d": [{"d": d} for d in depts], "c": [{"c": c} for c in cities],
        "n": [{"n": n} for n in range(25, 61, 5)], "s": [{"s": s} for s in range(40, 141, 10)],
        "b": [{"b": b} for b in range(20, 91, 10)],
        "fn": [{"agg": a, "fn": f, "col": col} for a, f in _AGGREGATES for col in ("age", "salary")],
    }
    combos: list[dict[str, object]] = [{}]
    for k in keys:
        combos = [{**c, **v} for c in combos for v in choices[k]]
    yield from combos


def questions(intents: dict[str, Intent], depts: list[str], cities: list[str]) -> list[tuple[str, tuple[str, ...], str]]:
    """(intent, its phrasings filled in, gold query) per intent and parameter combination, in a fixed order."""
    out = []
    for intent, (phrasings, gold) in intents.items():
        for p in _parameters(intent, gold, depts, cities):
            out.append((intent, tuple(q.format(**p) for q in phrasings), gold.format(**p)))
    return out


def chat_prompt(question: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]


def split_by_parameters(items: list[tuple[str, tuple[str, ...], str]], val_size: int, train_size: int,
                        seed: int) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    """(train, val) as (intent, question, gold): combinations shuffled by the seed; validation takes
    one random phrasing of each of the first ``val_size`` combinations, training every phrasing of
    the rest (shuffled, up to ``train_size``). No combination is in both."""
    rng = random.Random(seed)
    items = list(items)
    rng.shuffle(items)
    if len(items) <= val_size:
        raise ValueError(f"data.task.val_size={val_size} leaves no training questions for the natural sql task "
                         f"({len(items)} intent and parameter combinations exist); lower it")
    val = [(i, rng.choice(qs), g) for i, qs, g in items[:val_size]]
    train = [(i, q, g) for i, qs, g in items[val_size:] for q in qs]
    rng.shuffle(train)
    return train[:train_size], val


def one_phrasing_each(items: list[tuple[str, tuple[str, ...], str]], n: int, seed: int) -> list[tuple[str, str, str]]:
    """Up to ``n`` combinations, each with one random phrasing, taken from the intents in turn (so an
    intent with many parameters does not crowd out the others); shuffled by the seed."""
    rng = random.Random(seed)
    items = list(items)
    rng.shuffle(items)
    rank: dict[str, int] = {}
    order = []
    for item in items:
        rank[item[0]] = rank.get(item[0], -1) + 1
        order.append(rank[item[0]])
    items = [item for _, item in sorted(zip(order, items), key=lambda p: p[0])]
    return [(i, rng.choice(qs), g) for i, qs, g in items[:n]]
