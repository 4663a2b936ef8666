"""Built-in word problems for chat models: two-digit addition and subtraction told as short stories.

"Tom has 59 apples. He buys 63 more. How many apples does he have now?" -> 122. Each problem is a
chat prompt (one user message, rendered with the model's chat template) and the model answers in
its own words; the grader takes the last number of the reply (``math`` with ``extract:
last_number``), so "59 + 63 = 122 apples. #### 122" scores 1. ``ops`` chooses ``+`` and/or ``-``
(subtraction keeps the larger operand first, so answers are never negative); ``digits`` the
operand size.

**Phrasings held out.** The stories come from templates in two families: :data:`TRAIN_TEMPLATES`,
which training and validation draw from, and :data:`HELDOUT_TEMPLATES`, worded unlike any of them
(the question first, "difference", "years older", "take away", two-step wording), which only
:func:`heldout_phrasings` draws from -- always with both operators, whatever ``ops`` training uses.
A gain on validation that also shows there is a gain in the skill, not in recognising the training
sentences; ``rft demo --model smollm2-135m-instruct`` writes that set to its run directory and
evaluates it before and after (per operator too).

**Splits.** Operand pairs, not only prompts, are disjoint: a validation or held-out-phrasing problem
never has the numbers (and operator) of a training problem, so no answer can be memorised from
training. Deterministic in the seed. Each example keeps ``answer`` (the true result, the only field
graders read), ``op``, ``template`` and ``solution`` (a one-sentence right answer, e.g. for SFT).

Not covered: multi-step problems, distractors, units, answers that are not integers.
"""

from __future__ import annotations

import random

from rft.config.tasks import WordProblemsTask
from rft.data import Example, assert_disjoint

GRADER_SPEC = {"type": "math", "extract": "last_number"}

# Appended to every problem (training, validation and held-out phrasings alike): an instruction, not a
# phrasing. Without it SmolLM2-135M-Instruct (4-bit) opens most replies with "To solve this problem,
# we need to consider ..." and runs out of 48 tokens before any number: greedy on 100 validation
# problems, + 7 % -> 11 %, held-out phrasings + 2 % -> 18 % with it (- stays 0-4 %: the model sets
# up "91 - 59 =" and gets the borrow wrong). A system prompt did less (+ 13 %, phrasings 4 %).
INSTRUCTION = "Answer with the number."

NAMES = ("Tom", "Sara", "Ali", "Mia", "Ben", "Lena", "Omar", "Grace", "Ivan", "Nora", "Leo", "Ruth")
THINGS = ("apples", "books", "stickers", "marbles", "coins", "stamps", "cookies", "pencils", "shells", "cards")

# (operator, template); {n} a name, {t} a plural noun, {a} and {b} the operands
TRAIN_TEMPLATES: tuple[tuple[str, str], ...] = (
    ("+", "{n} has {a} {t}. {n} gets {b} more {t}. How many {t} does {n} have now?"),
    ("+", "A shop sold {a} {t} on Monday and {b} {t} on Tuesday. How many {t} did it sell in total?"),
    ("+", "There are {a} {t} in a box and {b} {t} on the table. How many {t} are there altogether?"),
    ("+", "{n} collected {a} {t} last week and {b} {t} this week. How many {t} has {n} collected?"),
    ("+", "What is {a} plus {b}?"),
    ("+", "A class has {a} girls and {b} boys. How many children are in the class?"),
    ("-", "{n} had {a} {t} and gave {b} away. How many {t} does {n} have left?"),
    ("-", "A shop had {a} {t} and sold {b} of them. How many {t} are left in the shop?"),
    ("-", "There were {a} {t} in a jar. {n} took {b} out. How many {t} are still in the jar?"),
    ("-", "What is {a} minus {b}?"),
    ("-", "A bus had {a} people on it. {b} people got off. How many people are still on the bus?"),
    ("-", "{n} needs {a} {t}. {n} already has {b}. How many more {t} does {n} need?"),
)
HELDOUT_TEMPLATES: tuple[tuple[str, str], ...] = (
    ("+", "How many {t} are there if one basket holds {a} and another holds {b}?"),
    ("+", "{n} is {a} years old. {n}'s grandmother is {b} years older. How old is the grandmother?"),
    ("+", "Add {b} to {a}. What number do you get?"),
    ("+", "A train carries {a} passengers, then {b} more board at the next station. How many passengers are on "
          "the train?"),
    ("-", "What is the difference between {a} and {b}?"),
    ("-", "A tower is {a} meters tall and a tree is {b} meters tall. How much taller is the tower?"),
    ("-", "Take {b} away from {a}. What is left?"),
    ("-", "{n} read {a} pages of a book, which is {b} pages more than {n}'s friend read. How many pages did the "
          "friend read?"),
)


def _result(a: int, b: int, op: str) -> int:
    return a + b if op == "+" else a - b


def _operands(digits: int) -> range:
    return range(0, 10) if digits == 1 else range(10 ** (digits - 1), 10**digits)


def _pairs(cfg: WordProblemsTask, rng: random.Random) -> list[tuple[int, str, int]]:
    """Every (a, op, b) of the configured operators, shuffled: a >= b for subtraction, and each sum
    once (a <= b; the story may tell the operands in either order), so that no split holds the
    commuted sum of another split's problem."""
    nums = _operands(cfg.digits)
    ops = list(dict.fromkeys(cfg.ops))
    if set(ops) - {"+", "-"}:
        raise ValueError(f"data.task.ops={cfg.ops}: word_problems has '+' and '-' only; remove '*'")
    pairs = [(a, op, b) for op in ops for a in nums for b in nums if (a <= b if op == "+" else a >= b)]
    rng.shuffle(pairs)
    return pairs


def _example(i: int, kind: str, a: int, op: str, b: int, templates: tuple[tuple[str, str], ...],
             rng: random.Random) -> Example:
    choices = [(j, t) for j, (o, t) in enumerate(templates) if o == op]
    j, template = rng.choice(choices)
    if op == "+" and rng.random() < 0.5:
        a, b = b, a
    text = template.format(n=rng.choice(NAMES), t=rng.choice(THINGS), a=a, b=b)
    answer = _result(a, b, op)
    return Example(
        id=f"{kind}-{i}",
        prompt=[{"role": "user", "content": f"{text} {INSTRUCTION}"}],
        fields={"answer": str(answer), "op": op, "template": f"{kind}-{j}",
                "solution": f"{a} {op} {b} = {answer}. The answer is {answer}."},
    )


def _split_sizes(cfg: WordProblemsTask, available: int) -> tuple[int, int]:
    train = cfg.train_size or 2000
    if cfg.val_size * 2 + 1 > available:
        raise ValueError(f"data.task.val_size={cfg.val_size} leaves no training problems for word_problems "
                         f"({available} operand pairs exist, and the held-out phrasings take as many as "
                         "validation); lower it")
    return cfg.val_size, min(train, available - 2 * cfg.val_size)


def _make_all(cfg: WordProblemsTask, seed: int) -> tuple[list[Example], list[Example], list[Example]]:
    rng = random.Random(seed)
    pairs = _pairs(cfg, rng)
    n_val, n_train = _split_sizes(cfg, len(pairs))
    val = [_example(i, "val", *p, TRAIN_TEMPLATES, rng) for i, p in enumerate(pairs[:n_val])]
    train = [_example(i, "train", *p, TRAIN_TEMPLATES, rng) for i, p in enumerate(pairs[2 * n_val : 2 * n_val + n_train])]
    # held-out phrasings: both operators, on pairs neither split uses (the training operator's from
    # the pairs set aside for them, the other operator's from its own shuffled pairs)
    used = set(pairs[:n_val]) | set(pairs[2 * n_val : 2 * n_val + n_train])
    spare = {op: [p for p in pairs[n_val : 2 * n_val] if p[1] == op] for op in ("+", "-")}
    for op in ("+", "-"):
        if not spare[op]:
            other = _pairs(cfg.model_copy(update={"ops": [op]}), random.Random(seed + 1))
            spare[op] = [p for p in other if p not in used][: n_val // 2]
    mixed = [p for pair in zip(spare["+"], spare["-"]) for p in pair] + spare["+"][len(spare["-"]):] \
        + spare["-"][len(spare["+"]):]
    phrasings = [_example(i, "phrasing", *p, HELDOUT_TEMPLATES, rng) for i, p in enumerate(mixed[:n_val])]
    assert_disjoint(train, val)
    assert_disjoint(train, phrasings)
    return train, val, phrasings


def make_word_problems(cfg: WordProblemsTask, seed: int) -> tuple[list[Example], list[Example], dict]:
    """(train, val, grader_spec): operand pairs disjoint between the splits, training phrasings only."""
    train, val, _ = _make_all(cfg, seed)
    return train, val, dict(GRADER_SPEC)


def heldout_phrasings(cfg: WordProblemsTask, seed: int) -> list[Example]:
    """``val_size`` problems worded with :data:`HELDOUT_TEMPLATES`, on operand pairs that neither
    training nor validation use: the "phrased differently" check."""
    return _make_all(cfg, seed)[2]
