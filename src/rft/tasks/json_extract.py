"""Built-in JSON extraction task: read a short templated record, answer with one JSON object.

A record names a person and two of ``age``, ``city``, ``job``, ``pets``, written either as a
labelled line ("Name: Ada, Age: 36, City: Paris") or as a sentence ("Ada is 36 and lives in
Paris."). The prompt lists the keys to extract. Fields, for the ``json_schema`` grader:

- ``schema``: a Draft 2020-12 object schema: the keys required, typed (``age`` and ``pets`` are
  integers), nothing else allowed -- so ``"36"`` for an age, or an extra key, fails the gate;
- ``reference``: the object itself, compared leaf by leaf (score = field-level F1 once valid);
- ``solution``: the reference as compact JSON text (an SFT target that scores 1).

Deterministic in the seed; the first ``val_size`` distinct prompts are validation.
Not covered: nested objects, arrays, optional keys, values that need normalising (units, dates).
"""

from __future__ import annotations

import json
import random
from typing import Any

from rft.config.tasks import JsonTask
from rft.data import Example
from rft.tasks.split import draw_distinct, split_front, wanted

GRADER_SPEC = {"type": "json_schema", "score": "f1"}

_NAMES = ("Ada Ben Cy Dee Eva Finn Gus Hal Ivy Jo Kai Lea Max Nia Oto Pam Quin Rex Sam Tia "
          "Uma Vic Wes Xia Yul Zoe").split()
_CITIES = ("Paris", "Rome", "Oslo", "Lima", "Kyiv", "Bern", "Cairo", "Dakar", "Quito", "Riga", "Seoul", "Tokyo")
_JOBS = ("baker", "nurse", "pilot", "judge", "chef", "clerk", "poet", "smith", "tutor", "vet")
_OPTIONAL = ("age", "city", "job", "pets")
_TYPES = {"name": "string", "age": "integer", "city": "string", "job": "string", "pets": "integer"}
_LABELLED = {"age": "Age: {}", "city": "City: {}", "job": "Job: {}", "pets": "Pets: {}"}
_PROSE = {"age": "is {}", "city": "lives in {}", "job": "works as a {}", "pets": "has {} pets"}


def schema_for(keys: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {k: {"type": _TYPES[k]} for k in keys},
        "required": list(keys),
        "additionalProperties": False,
    }


def _value(key: str, rng: random.Random) -> Any:
    return {
        "age": lambda: rng.randint(18, 90),
        "city": lambda: rng.choice(_CITIES),
        "job": lambda: rng.choice(_JOBS),
        "pets": lambda: rng.randint(0, 9),
    }[key]()


def _record_text(record: dict[str, Any], keys: list[str], prose: bool) -> str:
    if not prose:
        return ", ".join([f"Name: {record['name']}"] + [_LABELLED[k].format(record[k]) for k in keys])
    a, b = (_PROSE[k].format(record[k]) for k in keys)
    return f"{record['name']} {a} and {b}."


def _draw(rng: random.Random) -> Example:
    keys = sorted(rng.sample(_OPTIONAL, 2), key=_OPTIONAL.index)
    record = {"name": rng.choice(_NAMES), **{k: _value(k, rng) for k in keys}}
    text = _record_text(record, keys, prose=rng.random() < 0.5)
    all_keys = ["name", *keys]
    return Example(
        id="",
        prompt=f"JSON with {','.join(all_keys)}: {text}\n",
        fields={
            "schema": schema_for(all_keys),
            "reference": record,
            "solution": json.dumps(record, separators=(",", ":")),
        },
    )


def make_json(cfg: JsonTask, seed: int) -> tuple[list[Example], list[Example], dict]:
    """(train, val, grader_spec). Deterministic in ``seed``; val and train share no prompt."""
    examples = draw_distinct(_draw, wanted(cfg), random.Random(seed), "json")
    train, val = split_front(examples, cfg)
    return train, val, dict(GRADER_SPEC)
