"""Built-in logic task: propositional entailment questions and small knights-and-knaves puzzles.

A seeded coin picks each example's kind (only about 3,100 distinct knights-and-knaves puzzles
exist, so long lists lean toward entailment: 58% of 2,000). Every row names its own ``logic``
grader spec (the grader's ``mode`` differs by kind), with ``extract: all``: the whole completion
is the answer, since the char-level tiny model cannot be expected to write tags.

- **entailment**: 1-3 premises and a conclusion over ``p q r``, each a literal or one binary
  connective of literals (``p -> q``, ``~q | r``), in the grader's syntax. The verdict is computed
  here by truth table (the grader recomputes it with SymPy and skips the row if they disagree);
  premises are always jointly satisfiable, so nothing follows vacuously, and yes/no are balanced.
  Fields: ``premises``, ``conclusion``, ``answer`` and ``solution`` ("yes" / "no").
- **knights_knaves**: 3 people (A, B, C), or 2 in one puzzle of ten; each says one thing about
  the others ("B is a knave", "A and C are alike", "A or B is a knave", ...). Only puzzles with
  exactly one consistent assignment are kept. Fields: ``answer`` ({"A": "knight", ...}) and
  ``solution`` ("A is a knight, B is a knave"), the form the grader parses.

Not covered: first-order logic, nested formulas deeper than one connective, puzzles with
statements about the speaker alone ("I am a knave" has no consistent reading).
"""

from __future__ import annotations

import itertools
import random
from typing import Any

from rft.config.tasks import LogicTask
from rft.data import Example
from rft.tasks.split import draw_distinct, split_front, wanted

ENTAILMENT_SPEC = {"type": "logic", "mode": "entailment", "extract": "all"}
KNIGHTS_SPEC = {"type": "logic", "mode": "knights_knaves", "extract": "all"}
GRADER_SPEC = dict(ENTAILMENT_SPEC)  # the default; every row carries its own spec
VARS = ("p", "q", "r")
_TRIES = 200  # redraws per example before giving up on a kind's constraint
_OPS = {"&": lambda a, b: a and b, "|": lambda a, b: a or b, "->": lambda a, b: (not a) or b}
Formula = tuple[Any, ...]  # ("var", name) | ("not", name) | (op, left, right) with literal children


def _literal(rng: random.Random) -> Formula:
    name = rng.choice(VARS)
    return ("not", name) if rng.random() < 0.3 else ("var", name)


def _formula(rng: random.Random) -> Formula:
    if rng.random() < 0.4:
        return _literal(rng)
    return (rng.choice(list(_OPS)), _literal(rng), _literal(rng))


def render(f: Formula) -> str:
    if f[0] == "var":
        return f[1]
    if f[0] == "not":
        return "~" + f[1]
    return f"{render(f[1])} {f[0]} {render(f[2])}"


def holds(f: Formula, world: dict[str, bool]) -> bool:
    if f[0] == "var":
        return world[f[1]]
    if f[0] == "not":
        return not world[f[1]]
    return _OPS[f[0]](holds(f[1], world), holds(f[2], world))


def entails(premises: list[Formula], conclusion: Formula) -> bool | None:
    """True/False by truth table; None when the premises are unsatisfiable (everything follows)."""
    worlds = [dict(zip(VARS, bits)) for bits in itertools.product((False, True), repeat=len(VARS))]
    models = [w for w in worlds if all(holds(p, w) for p in premises)]
    if not models:
        return None
    return all(holds(conclusion, w) for w in models)


def _entailment(rng: random.Random) -> Example | None:
    want = rng.random() < 0.5  # drawn once, then retried for: "yes" is the rarer verdict at random
    for _ in range(_TRIES):
        premises = [_formula(rng) for _ in range(rng.randint(1, 3))]
        conclusion = _formula(rng)
        verdict = entails(premises, conclusion)
        if verdict == want and render(conclusion) not in {render(p) for p in premises}:
            break
    else:
        return None
    answer = "yes" if verdict else "no"
    return Example(
        id="",
        prompt=f"{'; '.join(render(p) for p in premises)}. Does {render(conclusion)} follow?\nAnswer: ",
        fields={"kind": "entailment", "premises": [render(p) for p in premises], "conclusion": render(conclusion),
                "answer": answer, "solution": answer},
        grader=dict(ENTAILMENT_SPEC),
    )


# ("knight"|"knave", x) | ("alike"|"differ"|"both_knights"|"both_knaves"|"some_knave", x, y)
Statement = tuple[str, ...]
_PAIR_CLAIMS = ("alike", "differ", "both_knights", "both_knaves", "some_knave")


def _statement(speaker: str, people: list[str], rng: random.Random) -> Statement:
    others = [p for p in people if p != speaker]
    if rng.random() < 0.35:
        return (rng.choice(("knight", "knave")), rng.choice(others))
    x, y = sorted(rng.sample(people, 2))
    return (rng.choice(_PAIR_CLAIMS), x, y)


def _true(st: Statement, knight: dict[str, bool]) -> bool:
    if st[0] in ("knight", "knave"):
        return knight[st[1]] == (st[0] == "knight")
    x, y = knight[st[1]], knight[st[2]]
    return {"alike": x == y, "differ": x != y, "both_knights": x and y, "both_knaves": not x and not y,
            "some_knave": not (x and y)}[st[0]]


def _say(st: Statement) -> str:
    if st[0] in ("knight", "knave"):
        return f"{st[1]} is a {st[0]}"
    x, y = st[1], st[2]
    return {"alike": f"{x} and {y} are alike", "differ": f"{x} and {y} differ",
            "both_knights": f"{x} and {y} are knights", "both_knaves": f"{x} and {y} are knaves",
            "some_knave": f"{x} or {y} is a knave"}[st[0]]


def _solutions(people: list[str], says: dict[str, Statement]) -> list[dict[str, bool]]:
    """Every assignment (True = knight) under which each speaker is a knight iff their statement holds."""
    worlds = [dict(zip(people, bits)) for bits in itertools.product((True, False), repeat=len(people))]
    return [k for k in worlds if all(k[p] == _true(st, k) for p, st in says.items())]


def _knights_knaves(rng: random.Random) -> Example | None:
    for _ in range(_TRIES):
        people = ["A", "B"] if rng.random() < 0.1 else ["A", "B", "C"]  # only 28 two-person puzzles exist
        says = {p: _statement(p, people, rng) for p in people}
        solutions = _solutions(people, says)
        if len(solutions) == 1:
            break
    else:
        return None
    answer = {p: "knight" if solutions[0][p] else "knave" for p in people}
    statements = " ".join(f"{p} says: {_say(st)}." for p, st in says.items())
    return Example(
        id="",
        prompt=f"Knights tell the truth, knaves lie. {statements} Who is what?\nAnswer: ",
        fields={"kind": "knights_knaves", "answer": answer,
                "solution": ", ".join(f"{p} is a {r}" for p, r in answer.items())},
        grader=dict(KNIGHTS_SPEC),
    )


def _draw(rng: random.Random) -> Example | None:
    return _entailment(rng) if rng.random() < 0.5 else _knights_knaves(rng)


def make_logic(cfg: LogicTask, seed: int) -> tuple[list[Example], list[Example], dict]:
    """(train, val, grader_spec). Deterministic in ``seed``; val and train share no prompt."""
    examples = draw_distinct(_draw, wanted(cfg), random.Random(seed), "logic")
    train, val = split_front(examples, cfg)
    return train, val, dict(GRADER_SPEC)
