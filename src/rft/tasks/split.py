"""What the generated tasks (sql, json, logic, code) share: how many examples to make, and the
held-out split taken from the front of a seeded list, with disjointness asserted.

Not covered: arithmetic, which enumerates its problem space and keeps its own split.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Callable

from rft.config import TaskConfig
from rft.data import Example, assert_disjoint

DEFAULT_TRAIN_SIZE = 2000


def wanted(cfg: TaskConfig) -> int:
    """Examples to generate: ``val_size`` plus ``train_size`` (default :data:`DEFAULT_TRAIN_SIZE`)."""
    return cfg.val_size + (cfg.train_size or DEFAULT_TRAIN_SIZE)


def draw_distinct(draw: Callable[[random.Random], Example | None], n: int, rng: random.Random,
                  task: str) -> list[Example]:
    """Up to ``n`` examples with distinct prompts from ``draw`` (which returns None to reject a draw).

    Stops early, returning fewer, when many draws in a row bring nothing new (the space is used up).
    Ids are ``{task}-{i}`` in draw order, so they are unique and deterministic in the rng's seed.
    """
    out: list[Example] = []
    seen: set[str] = set()
    misses = 0
    while len(out) < n and misses < 2000 + 20 * n:
        ex = draw(rng)
        if ex is None or ex.prompt_key() in seen:
            misses += 1
            continue
        seen.add(ex.prompt_key())
        out.append(dataclasses.replace(ex, id=f"{task}-{len(out)}"))
    return out


def split_front(examples: list[Example], cfg: TaskConfig) -> tuple[list[Example], list[Example]]:
    """(train, val): the first ``val_size`` examples are validation, the next ``train_size`` train."""
    if len(examples) <= cfg.val_size:
        raise ValueError(
            f"data.task.val_size={cfg.val_size} leaves no training examples for task '{cfg.name}' "
            f"({len(examples)} distinct examples exist); lower it"
        )
    val = examples[: cfg.val_size]
    train = examples[cfg.val_size : cfg.val_size + (cfg.train_size or DEFAULT_TRAIN_SIZE)]
    assert_disjoint(train, val)
    return train, val
