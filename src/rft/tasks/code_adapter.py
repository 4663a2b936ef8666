"""The code task as a ``TASKS`` entry: ``make_code(cfg, seed)`` around
:func:`rft.tasks.code.make_code_examples` (which generates the examples; see its module).

Draws ``val_size + train_size`` distinct prompts (``train_size`` defaults to 2000) and takes the
first ``val_size`` as validation. Every row already names the ``code`` grader; the same spec is
returned as the task's default. Not covered: choosing template families per split (both splits
draw from all families; the prompts, not the families, are disjoint).
"""

from __future__ import annotations

from rft.config.tasks import CodeTask
from rft.data import Example
from rft.tasks.code import GRADER_SPEC, make_code_examples
from rft.tasks.split import split_front, wanted


def make_code(cfg: CodeTask, seed: int) -> tuple[list[Example], list[Example], dict]:
    """(train, val, grader_spec). Deterministic in ``seed``; val and train share no prompt."""
    train, val = split_front(make_code_examples(wanted(cfg), seed), cfg)
    return train, val, dict(GRADER_SPEC)
