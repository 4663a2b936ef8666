"""The ``data.task:`` section: a built-in task (:mod:`rft.tasks`), one model per task.

Each model holds the fields that apply to its task, each declared once with its description; a field
of another task is refused, naming the tasks it belongs to. ``name`` picks the model and defaults to
``arithmetic``. ``rft config --tasks`` lists every task's fields from these models.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, TypeAdapter, model_validator

from rft.config.base import Strict
from rft.config.kinds import kind_union


class _Task(Strict):
    val_size: int = Field(500, ge=1, description="held-out problems, disjoint from the training ones")


class _SizedTask(_Task):
    train_size: int | None = Field(
        None, ge=1,
        description="training examples; default: all remaining problems (arithmetic), up to 2000 (other tasks)",
    )


class _PromptOptions(Strict):
    chat: bool = Field(True, description="prompts as a chat user turn; false: plain text (models without a chat "
                       "template, e.g. the embedded one)")
    max_prompt_chars: int | None = Field(None, ge=1, description="drop examples whose prompt text is longer (a small "
                                         "context); default keep all")


class ArithmeticTask(_SizedTask):
    """Sums (and differences, products) of random integers, graded on the exact result."""

    name: Literal["arithmetic"] = Field("arithmetic", description="the generator in rft.tasks.TASKS")
    digits: int = Field(2, ge=1, le=6, description="digits per operand")
    ops: list[Literal["+", "-", "*"]] = Field(default_factory=lambda: ["+"], description="operators")
    sloppy_rate: float = Field(
        0.0, ge=0.0, le=1.0, description="share of SFT labels written by the sloppy annotator (drops carries)")


class WordProblemsTask(_SizedTask):
    """Arithmetic in sentences (chat prompts), graded on the last number of the reply."""

    name: Literal["word_problems"] = Field(description="the generator in rft.tasks.TASKS")
    digits: int = Field(2, ge=1, le=6, description="digits per operand")
    ops: list[Literal["+", "-"]] = Field(default_factory=lambda: ["+"], description="operators ('+' and '-' only)")

    @model_validator(mode="before")
    @classmethod
    def _no_products(cls, data: Any) -> Any:
        if isinstance(data, dict) and "*" in (data.get("ops") or []):
            raise ValueError("word_problems has '+' and '-' only; remove '*' from data.task.ops")
        return data


class SqlTask(_SizedTask):
    """Questions about a generated SQLite database, graded by running the query (the sql grader)."""

    name: Literal["sql"] = Field(description="the generator in rft.tasks.TASKS")
    questions: Literal["terse", "natural"] = Field(
        "terse", description="terse plain-text prompts for the char-level tiny model ('Names in IT older than 40?'), or "
        "natural: chat prompts with the schema, several phrasings per intent, some intents held out "
        "(rft.tasks.sql_questions)")


class JsonTask(_SizedTask):
    """Extract fields from text as JSON, graded against a JSON Schema and the reference values."""

    name: Literal["json"] = Field(description="the generator in rft.tasks.TASKS")


class LogicTask(_SizedTask):
    """Logic puzzles graded by a solver (the logic grader)."""

    name: Literal["logic"] = Field(description="the generator in rft.tasks.TASKS")


class CodeTask(_SizedTask):
    """Small Python functions graded by unit tests in the sandbox."""

    name: Literal["code"] = Field(description="the generator in rft.tasks.TASKS")


class HumanEvalTask(_SizedTask, _PromptOptions):
    """OpenAI's HumanEval problems (rft[humaneval]), graded by their tests in the sandbox."""

    name: Literal["humaneval"] = Field(description="the generator in rft.tasks.TASKS")


class ReasoningGymTask(_Task, _PromptOptions):
    """A reasoning-gym dataset (rft[reasoning-gym]), graded by its own scorer."""

    name: Literal["reasoning_gym"] = Field(description="the generator in rft.tasks.TASKS")
    dataset: str = Field(description="the dataset's name, e.g. chain_sum")
    size: int | None = Field(None, ge=1, description="training entries generated (default 2000)")
    config: dict[str, Any] = Field(default_factory=dict, description="the dataset's config, as "
                                   "reasoning_gym.create_dataset takes it (size and seed are rft's)")


TASK_KINDS: dict[str, type[Strict]] = {
    "arithmetic": ArithmeticTask, "word_problems": WordProblemsTask, "sql": SqlTask, "json": JsonTask,
    "logic": LogicTask, "code": CodeTask, "reasoning_gym": ReasoningGymTask, "humaneval": HumanEvalTask,
}
TaskConfig = kind_union(TASK_KINDS, "name", "arithmetic")
_ADAPTER: TypeAdapter[Any] = TypeAdapter(TaskConfig)


def task_config(**fields: Any) -> Any:
    """A task's config from its fields (``name`` defaults to arithmetic): ``task_config(name="sql", val_size=5)``."""
    return _ADAPTER.validate_python(fields)
