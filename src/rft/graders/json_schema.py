"""The ``json_schema`` grader: one strict JSON value, a JSON Schema gate, then leaf-level F1.

Spec (defaults shown)::

    {"type": "json_schema", "schema_field": "schema", "reference_field": "reference",
     "schema": null, "score": "f1" | "exact", "unordered_arrays": false, "allow_prose": false}

1. Extraction -- exactly one JSON value. The completion, stripped, must be a JSON value, or one
   fenced block (```json ... ```) whose content is. Text around a fenced block (trailing prose
   included) makes the answer invalid unless ``allow_prose: true``, in which case only the single
   fenced block is read. Duplicate keys, NaN/Infinity (and numbers that overflow to infinity) and
   inputs over ``max_chars`` are invalid.
2. Gate -- validate against the schema (the spec's ``schema``, else the row's ``schema_field``) with
   ``jsonschema`` Draft 2020-12. Invalid => score 0.
3. Compare with the row's reference leaf by leaf. Leaves are scalars and empty containers; two
   leaves match when their JSON types agree and their values are equal (``true`` never equals
   ``1``; ``1`` equals ``1.0``: both are JSON numbers). Objects match key by key; arrays by index, or,
   with ``unordered_arrays``, by the assignment of elements that maximises matched leaves (Hungarian
   algorithm; arrays longer than ``max_unordered`` are invalid).
   score = F1 of matched leaves (precision over the answer's leaves, recall over the reference's),
   or with ``score: "exact"`` 1 only if every leaf matches both ways. With no reference the gate
   alone decides (score 1 when valid).

Not covered: ``format`` assertions (annotation only, as Draft 2020-12 defaults), numeric
tolerance, partial credit inside strings.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from rft.config.graders import JsonSchemaSpec
from rft.data import Example
from rft.graders.base import Grade
from rft.graders.templates import strict_json_loads

MAX_DEPTH = 64  # deeper answers are invalid: keeps validation and matching recursion shallow
_FENCE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n(.*?)\n?```", re.DOTALL)


def extract_json(completion: str, allow_prose: bool, max_chars: int) -> tuple[Any, str | None]:
    """Return ``(value, None)`` or ``(None, why_invalid)``."""
    text = completion.strip()
    if len(text) > max_chars:
        return None, f"longer than {max_chars} characters"
    fences = _FENCE.findall(text)
    if len(fences) > 1:
        return None, f"{len(fences)} fenced blocks; expected exactly one JSON value"
    if fences:
        outside = _FENCE.sub("", text).strip()
        if outside and not allow_prose:
            return None, f"text outside the JSON block ({outside[:30]!r}); answer with the JSON only"
        text = fences[0]
    try:
        value = strict_json_loads(text)
    except RecursionError:
        return None, "JSON nested too deeply"
    except ValueError as e:  # json.JSONDecodeError is a ValueError; so are our duplicate/NaN checks
        return None, f"invalid JSON: {str(e)[:80]}"
    if nesting_depth(value) > MAX_DEPTH:
        return None, f"JSON nested deeper than {MAX_DEPTH} levels"
    return value, None


def nesting_depth(value: Any) -> int:
    """Depth of nested containers, computed without recursion (the input is untrusted)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if value is None:
        return "null"
    return type(value).__name__  # str, dict, list


def count_leaves(value: Any) -> int:
    if isinstance(value, dict) and value:
        return sum(count_leaves(v) for v in value.values())
    if isinstance(value, list) and value:
        return sum(count_leaves(v) for v in value)
    return 1


def max_assignment(weights: list[list[float]]) -> float:
    """Maximum total weight of a one-to-one assignment of rows to columns (Hungarian, O(n^2 m))."""
    if not weights or not weights[0]:
        return 0.0
    if len(weights) > len(weights[0]):
        weights = [list(col) for col in zip(*weights)]
    n, m = len(weights), len(weights[0])
    inf = float("inf")
    u, v, match, way = [0.0] * (n + 1), [0.0] * (m + 1), [0] * (m + 1), [0] * (m + 1)
    for i in range(1, n + 1):
        match[0], j0 = i, 0
        min_v, used = [inf] * (m + 1), [False] * (m + 1)
        while True:
            used[j0] = True
            i0, delta, j1 = match[j0], inf, 0
            for j in range(1, m + 1):
                if not used[j]:
                    cur = -weights[i0 - 1][j - 1] - u[i0] - v[j]
                    if cur < min_v[j]:
                        min_v[j], way[j] = cur, j0
                    if min_v[j] < delta:
                        delta, j1 = min_v[j], j
            for j in range(m + 1):
                if used[j]:
                    u[match[j]] += delta
                    v[j] -= delta
                else:
                    min_v[j] -= delta
            j0 = j1
            if match[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            match[j0], j0 = match[j1], j1
    return sum(weights[match[j] - 1][j - 1] for j in range(1, m + 1) if match[j])


class TooLong(ValueError):
    """An array is too long for optimal unordered matching."""


@dataclass(frozen=True)
class LeafMatcher:
    unordered_arrays: bool
    max_unordered: int

    def matched(self, ref: Any, cand: Any) -> float:
        """Number of reference leaves matched by ``cand`` (see the module docstring)."""
        if isinstance(ref, dict) and ref and isinstance(cand, dict):
            return sum(self.matched(v, cand[k]) for k, v in ref.items() if k in cand)
        if isinstance(ref, list) and ref and isinstance(cand, list):
            if not self.unordered_arrays:
                return sum(self.matched(r, c) for r, c in zip(ref, cand))
            if max(len(ref), len(cand)) > self.max_unordered:
                raise TooLong(f"array of {max(len(ref), len(cand))} items (max_unordered = {self.max_unordered})")
            return max_assignment([[self.matched(r, c) for c in cand] for r in ref])
        if isinstance(ref, (dict, list)) or isinstance(cand, (dict, list)):
            return float(type(ref) is type(cand) and not ref and not cand)  # empty container leaves
        return float(_kind(ref) == _kind(cand) and ref == cand)


@dataclass(frozen=True)
class JsonSchemaGrader:
    spec: JsonSchemaSpec
    _validators: dict[str, Draft202012Validator] = field(default_factory=dict, compare=False, repr=False)

    def _validator(self, schema: Any) -> Draft202012Validator | str:
        key = json.dumps(schema, sort_keys=True)
        if key not in self._validators:
            try:
                Draft202012Validator.check_schema(schema)
            except SchemaError as e:
                return f"the row's schema is invalid: {e.message[:100]}"
            self._validators[key] = Draft202012Validator(schema)
        return self._validators[key]

    def __call__(self, completion: str, example: Example) -> Grade:
        schema = self.spec.schema_ if self.spec.schema_ is not None else example.get(self.spec.schema_field)
        if not isinstance(schema, (dict, bool)):
            return Grade(0.0, None, f"no schema: set 'schema' in the spec or a '{self.spec.schema_field}' row field", {"skipped": True})
        validator = self._validator(schema)
        if isinstance(validator, str):
            return Grade(0.0, None, validator, {"skipped": True})
        value, why = extract_json(completion, self.spec.allow_prose, self.spec.max_chars)
        if why is not None:
            return Grade(0.0, False, why, {"valid": False})
        error = None if validator.is_valid(value) else next(iter(validator.iter_errors(value)), None)
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "(root)"
            return Grade(0.0, False, f"schema violation at {where}: {error.message[:100]}", {"valid": False})
        if self.spec.reference_field not in example.fields:
            return Grade(1.0, True, "valid against the schema (no reference to compare)", {"valid": True})
        ref = example.fields[self.spec.reference_field]
        try:
            hits = LeafMatcher(self.spec.unordered_arrays, self.spec.max_unordered).matched(ref, value)
        except TooLong as e:
            return Grade(0.0, False, str(e), {"valid": True})
        n_ref, n_cand = count_leaves(ref), count_leaves(value)
        precision, recall = hits / n_cand, hits / n_ref
        f1 = 0.0 if hits == 0 else 2 * precision * recall / (precision + recall)
        exact = hits == n_ref == n_cand
        score = f1 if self.spec.score == "f1" else float(exact)
        details = {"valid": True, "precision": precision, "recall": recall, "f1": f1, "exact": exact}
        return Grade(score, exact, f"{hits:g}/{n_ref} reference leaves matched, {n_cand} given (F1 {f1:.3f})", details)
