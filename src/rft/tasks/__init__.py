"""Built-in procedural tasks: each returns (train, val, grader_spec). An explicit dict, no discovery."""

from __future__ import annotations

from typing import Callable

from rft.data import Example
from rft.tasks.arithmetic import make_arithmetic

TASKS: dict[str, Callable[..., tuple[list[Example], list[Example], dict]]] = {
    "arithmetic": make_arithmetic,
}
