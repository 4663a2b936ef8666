"""Built-in code task: write a one-line Python function that matches the shown input/output pairs.

Each example is drawn from a small set of templated families (``x * 3 + 1``, ``s[::-1]``,
``sorted(xs)``, ...) with random constants. The prompt shows ``SHOWN`` input/output pairs; the
tests are those pairs plus ``HIDDEN`` pairs on inputs the prompt does not show, so a lookup table
of the shown pairs cannot score full marks. Fields:

- ``entry_point``: always ``"f"``;
- ``tests``: ``[{"args": [input], "expected": output}, ...]`` (shown first, then hidden);
- ``visible_tests``: how many of ``tests`` the prompt shows (``SHOWN``): the ``code_retry``
  environment runs only those between turns;
- ``solution``: the reference one-line function (for an SFT warm start, or to check the task);
- ``family``: the template's name, for per-family metrics.

Every example carries the grader spec ``{"type": "code", "mode": "function", "require_isolation": true}``
so it never runs unisolated (the tests are hidden from the program). Templated so that
a tiny model can learn part of it: the families share the answer shape ``def f(x): return ...``.
Not covered: multi-line programs, stdio tasks, functions of more than one argument.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from typing import Any, Callable

from rft.data import Example

# require_isolation: the tests are hidden, and rlimits alone let a program read them (or regenerate
# them from this package) on the host
GRADER_SPEC = {"type": "code", "mode": "function", "require_isolation": True}
SHOWN = 3
HIDDEN = 2


@dataclass(frozen=True)
class Family:
    name: str
    arg: str  # "x" (int), "s" (str) or "xs" (list of ints)
    body: str  # the returned expression, with {a} / {b} / {c} constants
    fn: Callable[[Any, dict[str, Any]], Any]  # the same expression, as a function of (input, constants)
    constants: Callable[[random.Random], dict[str, Any]]


def _ints(lo: int, hi: int, *names: str) -> Callable[[random.Random], dict[str, Any]]:
    return lambda rng: {n: rng.randint(lo, hi) for n in names}


def _letter(rng: random.Random) -> dict[str, Any]:
    return {"c": rng.choice("abc")}


def _no_constants(rng: random.Random) -> dict[str, Any]:
    return {}


FAMILIES: tuple[Family, ...] = (
    Family("add", "x", "x + {a}", lambda x, k: x + k["a"], _ints(1, 9, "a")),
    Family("mul", "x", "x * {a}", lambda x, k: x * k["a"], _ints(2, 9, "a")),
    Family("affine", "x", "x * {a} + {b}", lambda x, k: x * k["a"] + k["b"], _ints(2, 5, "a", "b")),
    Family("square", "x", "x * x", lambda x, k: x * x, _no_constants),
    Family("mod", "x", "x % {a}", lambda x, k: x % k["a"], _ints(2, 7, "a")),
    Family("floordiv", "x", "x // {a}", lambda x, k: x // k["a"], _ints(2, 5, "a")),
    Family("distance", "x", "abs(x - {a})", lambda x, k: abs(x - k["a"]), _ints(1, 9, "a")),
    Family("clamp_low", "x", "max(x, {a})", lambda x, k: max(x, k["a"]), _ints(0, 9, "a")),
    Family("reverse", "s", "s[::-1]", lambda s, k: s[::-1], _no_constants),
    Family("upper", "s", "s.upper()", lambda s, k: s.upper(), _no_constants),
    Family("repeat", "s", "s * {a}", lambda s, k: s * k["a"], _ints(2, 3, "a")),
    Family("length", "s", "len(s)", lambda s, k: len(s), _no_constants),
    Family("count", "s", "s.count('{c}')", lambda s, k: s.count(k["c"]), _letter),
    Family("first_last", "s", "s[0] + s[-1]", lambda s, k: s[0] + s[-1], _no_constants),
    Family("sum", "xs", "sum(xs)", lambda xs, k: sum(xs), _no_constants),
    Family("max", "xs", "max(xs)", lambda xs, k: max(xs), _no_constants),
    Family("sorted", "xs", "sorted(xs)", lambda xs, k: sorted(xs), _no_constants),
    Family("scale", "xs", "[v * {a} for v in xs]", lambda xs, k: [v * k["a"] for v in xs], _ints(2, 5, "a")),
    Family("span", "xs", "max(xs) - min(xs)", lambda xs, k: max(xs) - min(xs), _no_constants),
)


def _input(arg: str, rng: random.Random) -> Any:
    if arg == "x":
        return rng.randint(-9, 20)
    if arg == "s":
        return "".join(rng.choice(string.ascii_lowercase[:6]) for _ in range(rng.randint(2, 5)))
    return [rng.randint(0, 9) for _ in range(rng.randint(2, 5))]


def _distinct_inputs(arg: str, rng: random.Random, n: int) -> list[Any]:
    seen: list[Any] = []
    while len(seen) < n:
        value = _input(arg, rng)
        if value not in seen:
            seen.append(value)
    return seen


def _prompt(arg: str, shown: list[tuple[Any, Any]]) -> str:
    pairs = "\n".join(f"f({i!r}) == {o!r}" for i, o in shown)
    return (
        f"Write a one-line Python function `f({arg})` that gives these results:\n{pairs}\n"
        "Answer with the function in a ```python block."
    )


def make_code_examples(n: int, seed: int) -> list[Example]:
    """``n`` examples with distinct prompts, deterministic in ``seed``."""
    rng = random.Random(seed)
    examples: list[Example] = []
    prompts: set[str] = set()
    attempts = 0
    while len(examples) < n:
        attempts += 1
        if attempts > 50 * n + 1000:
            raise ValueError(f"could not draw {n} distinct code examples; ask for fewer")
        family = rng.choice(FAMILIES)
        constants = family.constants(rng)
        inputs = _distinct_inputs(family.arg, rng, SHOWN + HIDDEN)
        pairs = [(x, family.fn(x, constants)) for x in inputs]
        prompt = _prompt(family.arg, pairs[:SHOWN])
        if prompt in prompts:
            continue
        prompts.add(prompt)
        solution = f"def f({family.arg}):\n    return {family.body.format(**constants)}\n"
        examples.append(
            Example(
                id=f"code-{seed}-{len(examples)}",
                prompt=prompt,
                fields={
                    "entry_point": "f",
                    "tests": [{"args": [x], "expected": y} for x, y in pairs],
                    "visible_tests": SHOWN,
                    "solution": solution,
                    "family": family.name,
                },
                grader=dict(GRADER_SPEC),
            )
        )
    return examples
