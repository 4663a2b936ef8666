"""Built-in arithmetic task: ``"a+b="`` -> ``"SUM"`` with a seeded, disjoint train/validation split.

The *sloppy annotator* (``sloppy_rate``) models a labeller who forgets carries: for ``+`` it writes
each column's digit sum mod 10 (``47+38`` -> ``75`` instead of ``85``), for ``-`` it drops borrows
(column-wise difference mod 10). ``*`` has no sloppy variant. Each example keeps three fields:

- ``answer``: the true result -- the only thing graders ever check;
- ``sloppy``: what the sloppy annotator writes (equal to ``answer`` when no carry/borrow occurs);
- ``reference``: the SFT label, ``sloppy`` with probability ``sloppy_rate`` else ``answer``.

SFT on ``reference`` imitates the annotator's mistakes; GRPO against the grader rewards correctness.
"""

from __future__ import annotations

import random

from rft.config.tasks import ArithmeticTask
from rft.data import Example, assert_disjoint

GRADER_SPEC = {"type": "arithmetic", "answer_field": "answer"}
_ENUMERATE_LIMIT = 250_000


def true_result(a: int, b: int, op: str) -> int:
    return {"+": a + b, "-": a - b, "*": a * b}[op]


def sloppy_result(a: int, b: int, op: str) -> int:
    """The carry-less (``+``) or borrow-less (``-``) result; ``*`` is returned exactly."""
    if op == "*":
        return a * b
    out, place = 0, 1
    while a or b:
        da, db = a % 10, b % 10
        out += ((da + db) % 10 if op == "+" else (da - db) % 10) * place
        a, b, place = a // 10, b // 10, place * 10
    return out


def _operands(digits: int) -> range:
    return range(0, 10) if digits == 1 else range(10 ** (digits - 1), 10**digits)


def _problems(cfg: ArithmeticTask, rng: random.Random) -> list[tuple[int, str, int]]:
    ops = list(dict.fromkeys(cfg.ops))
    nums = _operands(cfg.digits)
    total = len(nums) ** 2 * len(ops)
    wanted = cfg.val_size + (cfg.train_size or total)
    if total <= _ENUMERATE_LIMIT:
        probs = [(a, op, b) for op in ops for a in nums for b in nums]
        rng.shuffle(probs)
        return probs[: min(wanted, total)]
    seen: set[tuple[int, str, int]] = set()
    wanted = min(wanted, 1_000_000)
    out = []
    while len(out) < wanted:
        p = (rng.choice(nums), rng.choice(ops), rng.choice(nums))
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


def make_arithmetic(cfg: ArithmeticTask, seed: int) -> tuple[list[Example], list[Example], dict]:
    """(train, val, grader_spec). Deterministic in ``seed``; val and train share no problem."""
    rng = random.Random(seed)
    problems = _problems(cfg, rng)
    if len(problems) <= cfg.val_size:
        raise ValueError(
            f"data.task.val_size={cfg.val_size} leaves no training problems ({len(problems)} exist); lower it"
        )
    examples = []
    for a, op, b in problems:
        answer, sloppy = true_result(a, b, op), sloppy_result(a, b, op)
        reference = sloppy if rng.random() < cfg.sloppy_rate else answer
        examples.append(
            Example(
                id=f"{a}{op}{b}",
                prompt=f"{a}{op}{b}=",
                fields={"answer": str(answer), "sloppy": str(sloppy), "reference": str(reference)},
            )
        )
    val, train = examples[: cfg.val_size], examples[cfg.val_size :]
    assert_disjoint(train, val)
    return train, val, dict(GRADER_SPEC)
