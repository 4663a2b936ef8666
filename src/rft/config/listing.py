"""The fields a user reads: ``rft config --graders / --tasks / --environments`` list every kind (grader
type, task, environment type) with each field's type, range, default and description, read from the
models (:mod:`rft.config.graders`, :mod:`rft.config.tasks`, :mod:`rft.config.environments`), so that the
listing is exactly what validation checks."""

from __future__ import annotations

from typing import Any


def _type_name(tp: Any) -> str:
    """A spec field's type as a user writes it: 'int', '"boxed" | "tag"', 'float | null', 'list[str]'."""
    import json
    import types
    from typing import Annotated, Literal, Union, get_args, get_origin

    origin, args = get_origin(tp), get_args(tp)
    if tp is type(None):
        return "null"
    if origin is Literal:
        return " | ".join(json.dumps(a) for a in args)
    if origin is Annotated:  # a constrained type, or the union of all specs (multi's sub-graders)
        return "grader spec" if any(getattr(m, "discriminator", None) for m in args[1:]) else _type_name(args[0])
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin in (list, dict):
        return f"{origin.__name__}[{', '.join(_type_name(a) for a in args)}]"
    return getattr(tp, "__name__", str(tp))


def _plain(value: Any) -> Any:
    """A default that is itself a model (a judge's sampling parameters) as the mapping a user writes."""
    return value.model_dump() if hasattr(value, "model_dump") else str(value)


def grader_fields(kinds: list[str]) -> str:
    """Every grader type (or those in ``kinds``) with its fields."""
    from rft.config.base import SpecError
    from rft.config.graders import SPECS

    return kind_fields(SPECS, kinds, "type", "--graders", SpecError, "grader type")


def task_fields(kinds: list[str]) -> str:
    """Every built-in task (or those in ``kinds``) with its fields, as ``data.task:`` takes them."""
    from rft.config.base import ConfigError
    from rft.config.tasks import TASK_KINDS

    return kind_fields(TASK_KINDS, kinds, "name", "--tasks", ConfigError, "task")


def environment_fields(kinds: list[str]) -> str:
    """Every environment type (or those in ``kinds``) with its fields, as ``environment:`` takes them."""
    from rft.config.base import ConfigError
    from rft.config.environments import ENVIRONMENT_KINDS

    return kind_fields(ENVIRONMENT_KINDS, kinds, "type", "--environments", ConfigError, "environment type")


def kind_fields(models: dict[str, Any], kinds: list[str], key: str, flag: str, error: type[Exception],
                noun: str) -> str:
    """Every kind of ``models`` (or those in ``kinds``) with its fields: type, range, default, description."""
    import json

    from rft.config.grader_errors import field_range

    unknown = sorted(set(kinds) - set(models))
    if unknown:
        raise error(f"{flag}: unknown {noun}(s) {unknown}; choose from {sorted(models)}")
    blocks = []
    for kind in kinds or models:
        lines = [f"{kind}: {(models[kind].__doc__ or '').strip()}"]
        fields = sorted(models[kind].model_fields.items(), key=lambda f: f[0] in ("name", "image_tag"))  # OpenAI's last
        for name, info in fields:
            if name != key:
                limits = f" ({field_range(info)})" if field_range(info) else ""
                default = "required" if info.is_required() else "default " + json.dumps(info.get_default(
                    call_default_factory=True), default=_plain)
                lines.append(f"  {info.alias or name}: {_type_name(info.annotation)}{limits}, {default}\n"
                             f"      {info.description}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"
