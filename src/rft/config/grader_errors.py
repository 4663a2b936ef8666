"""Grader spec errors: pydantic's verdict on a spec as one :class:`SpecError` naming field, value and fix.

:func:`spec_error` is the one place a ``ValidationError`` of :mod:`rft.config.graders` becomes
``"<type> grader: field '<x>' = <value>: <problem>; <fix>"`` (unknown fields first: a typo explains
the rest). Not covered: the messages of rules across fields, which the validators write themselves.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from rft.config.base import SpecError

_TYPE_PROBLEMS = [  # pydantic error type prefix -> (what was expected, how to write it)
    ("int", "an integer", "write '{}' as a whole number"),
    ("float", "a finite number", "write '{}' as a number"),
    ("finite", "a finite number", "write '{}' as a number"),
    ("bool", "true or false", "write '{0}: true' or '{0}: false'"),
    ("string", "a non-empty string", "write '{}' as a string"),
    ("list", "a list", "write '{}' as a list, e.g. [\"a\", \"b\"]"),
    ("dict", "an object", "write '{}' as a mapping"),
]
_SYMBOLS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def spec_error(err: ValidationError, specs: dict[str, type[BaseModel]]) -> SpecError:
    """pydantic's verdict on a spec as one message, ``"<type> grader: field '<x>' = <value>: <problem>; <fix>"``
    (``"multi grader: sub-grader '<name>': "`` before a sub-grader's). Unknown fields come first: a typo
    explains the rest."""
    errors = err.errors(include_url=False)
    unknown = [e for e in errors if e["type"] == "extra_forbidden"]
    first = unknown[0] if unknown else errors[0]
    prefix, loc = "", first["loc"]
    while len(loc) >= 3 and loc[:2] == ("multi", "graders") and (len(loc) == 3 or loc[3] in specs):
        prefix, loc = prefix + f"multi grader: sub-grader '{loc[2]}': ", loc[3:]
    if not loc:
        return SpecError(prefix + _not_a_spec(first, specs))
    kind, path = str(loc[0]), ".".join(str(p) for p in loc[1:])
    fields = {info.alias or name: info for name, info in specs[kind].model_fields.items()}
    if first["type"] == "extra_forbidden":
        names = sorted(str(e["loc"][-1]) for e in unknown if e["loc"][:-1] == first["loc"][:-1])
        text = f"unknown field(s) {names}; allowed fields are {sorted(fields)} (check the spelling)"
    elif first["type"] == "missing":
        text = f"missing field '{path}'; add it: {fields[path].description}"
    elif not path:  # a rule across fields
        text = _reason(first)
    else:
        text = f"field '{path}' = {first['input']!r}: {_problem(first, fields.get(path), path)}"
    return SpecError(f"{prefix}{kind} grader: {text}")


def _not_a_spec(error: Any, specs: dict[str, type[BaseModel]]) -> str:
    if error["type"] == "union_tag_invalid":
        return f"unknown grader type {error['input']['type']!r}; choose one of {sorted(specs)}"
    return f"a grader spec must be an object with a 'type' field, got {error['input']!r}"


def _reason(error: Any) -> str:
    """The text of a ValueError raised by a validator here."""
    return str(error.get("ctx", {}).get("error") or error["msg"])


def _problem(error: Any, info: FieldInfo | None, path: str) -> str:
    kind = error["type"]
    if kind == "value_error":
        return _reason(error)
    if kind == "literal_error":
        return f"not a supported value; choose one of {error['ctx']['expected']}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        limits = field_range(info) or _bounds_text(error["ctx"])
        return f"out of range ({limits}); pick a value {limits}"
    for start, expected, fix in _TYPE_PROBLEMS:
        if kind.startswith(start):
            return f"expected {expected}; {fix.format(path)}"
    return f"{error['msg']}; see `rft config --graders` for the field's type"


def _bounds_text(limits: dict[str, Any]) -> str:
    return " and ".join(f"{_SYMBOLS[k]} {int(v) if float(v).is_integer() else v}" for k, v in limits.items()
                        if k in _SYMBOLS)


def field_range(info: FieldInfo | None) -> str:
    """A field's range, e.g. '>= 0.01 and <= 600' ('' for none)."""
    metadata = info.metadata if info is not None else []
    return _bounds_text({k: getattr(m, k) for m in metadata for k in _SYMBOLS if getattr(m, k, None) is not None})
