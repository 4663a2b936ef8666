"""The grader fields a user reads (``rft config --graders``): every grader type with each field's type,
range, default and description, read from the spec models (:mod:`rft.config.graders`), so that the
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


def grader_fields(kinds: list[str]) -> str:
    """Every grader type (or those in ``kinds``) with its fields: type, range, default, description --
    read from the spec models (rft.config.graders), so the listing is what validation checks."""
    import json

    from rft.config.base import SpecError
    from rft.config.grader_errors import field_range
    from rft.config.graders import SPECS

    unknown = sorted(set(kinds) - set(SPECS))
    if unknown:
        raise SpecError(f"--graders: unknown grader type(s) {unknown}; choose from {sorted(SPECS)}")
    blocks = []
    for kind in kinds or SPECS:
        lines = [f"{kind}: {(SPECS[kind].__doc__ or '').strip()}"]
        fields = sorted(SPECS[kind].model_fields.items(), key=lambda f: f[0] in ("name", "image_tag"))  # OpenAI's last
        for name, info in fields:
            if name != "type":
                limits = f" ({field_range(info)})" if field_range(info) else ""
                default = "required" if info.is_required() else "default " + json.dumps(info.get_default(
                    call_default_factory=True))
                lines.append(f"  {info.alias or name}: {_type_name(info.annotation)}{limits}, {default}\n"
                             f"      {info.description}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"
