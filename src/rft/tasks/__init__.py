"""Built-in procedural tasks: each returns (train, val, grader_spec). An explicit dict, no discovery."""

from __future__ import annotations

from typing import Callable

from rft.data import Example
from rft.tasks.arithmetic import make_arithmetic
from rft.tasks.code_adapter import make_code
from rft.tasks.json_extract import make_json
from rft.tasks.logic import make_logic
from rft.tasks.sql import make_sql
from rft.tasks.word_problems import make_word_problems

TASKS: dict[str, Callable[..., tuple[list[Example], list[Example], dict]]] = {
    "arithmetic": make_arithmetic,
    "word_problems": make_word_problems,
    "sql": make_sql,
    "json": make_json,
    "logic": make_logic,
    "code": make_code,
}
