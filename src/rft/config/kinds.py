""""A kind and its options": one pydantic model per kind of a config section, a union on the kind's
name, and the errors a user reads.

Grader specs (:mod:`rft.config.graders`), tasks (:mod:`rft.config.tasks`) and environments
(:mod:`rft.config.environments`) follow the same pattern: each kind is a model holding only the fields
that apply to it (each declared once, with its description), an unknown field is refused per kind,
and ``rft config --graders / --tasks / --environments`` lists them from the models. This module holds
what tasks and environments share: the union with a default kind, and the error for a field of
another kind ("'digits' applies only to the arithmetic and word_problems task(s), not to 'sql'").
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import BaseModel, BeforeValidator, Field


def kind_union(models: dict[str, type[BaseModel]], key: str, default: str) -> Any:
    """The union of ``models`` on field ``key``; a mapping without ``key`` is of kind ``default``."""

    def fill(value: Any) -> Any:
        return {key: default, **value} if isinstance(value, dict) and key not in value else value

    return Annotated[Union[tuple(models.values())], Field(discriminator=key), BeforeValidator(fill)]


def other_kinds_field(models: dict[str, type[BaseModel]], noun: str, kind: str, field: str) -> str | None:
    """The message for ``field`` set on a ``kind`` that has no such field, when other kinds have it."""
    owners = [name for name, model in models.items() if field in model.model_fields]
    if not owners or kind not in models:
        return None
    names = " and ".join(owners) if len(owners) < 3 else ", ".join(owners[:-1]) + " and " + owners[-1]
    return f"'{field}' applies only to the {names} {noun}(s), not to '{kind}'"


def located(loc: tuple[Any, ...], sections: dict[str, dict[str, type[BaseModel]]]) -> tuple[str, tuple[Any, ...], str | None]:
    """pydantic's location of an error with the kind tag of a union removed: ``('data', 'task', 'sql',
    'digits')`` -> ``('data.task.digits', ('data', 'task', 'digits'), 'sql')``; ``sections`` maps a
    section's key (``task``) to its kinds."""
    parts, kind = list(loc), None
    for i in range(len(parts) - 1):
        kinds = sections.get(str(parts[i]))
        if kinds and parts[i + 1] in kinds:
            kind = str(parts.pop(i + 1))
            break
    return ".".join(str(p) for p in parts) or "(top level)", tuple(parts), kind
