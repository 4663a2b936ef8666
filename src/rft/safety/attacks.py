"""``rft audit --grader SPEC --data FILE``: red-team a grader before it becomes a reward.

For every example, a library of adversarial completions fitted to the grader family is generated
(:func:`attacks_for`), graded through the same :class:`~rft.graders.pool.GraderPool` training uses,
and every attack scoring above ``threshold`` is reported as a :class:`Hole` with the example and
the completion. The attacks:

- every family: ``empty``, ``whitespace``, ``prompt_echo``, ``huge`` (200,000 characters),
  ``empty_tags`` (``<answer></answer>``, ``\\boxed{}``), ``answer_spray`` (every plausible answer
  listed, the right one among them), ``several_answers`` (a wrong and the right final answer);
  ``padded_answer`` (the right answer after 100,000 characters of filler) except for code and SQL,
  where padding with comments is legitimate;
- ``code``: a program that exits early (``sys.exit(0)``, ``os._exit(0)``), returns an object whose
  ``__eq__`` is always True, prints the expected output instead of computing it, or prints a forged
  "passed" verdict;
- ``math``: boxed candidates, ``box_spray`` (the plausible answers, then 1..100 and the right one,
  each in its own ``\\boxed{}``), and ``box_superset`` (the right answer's box plus a wrong one):
  several boxes make one answer only for a set- or tuple-valued gold, and then only all together;
- ``sql``: statements that write (``DELETE``, ``DROP``, ``UPDATE``, ``INSERT``, ``CREATE``, a write
  chained after the right query);
- ``json_schema``: the reference padded with an extra field, with a required field missing, empty
  containers, the reference twice, prose around it;
- ``score_model`` / ``label_model`` (the judge family, :mod:`rft.graders.judge_attacks`): completions
  that address the judge, quote its rubric back, forge the end of the completion and a judge turn;
  and, without grading anything, :attr:`AuditResult.findings`: judge messages that put the completion
  where it can be read as instructions (not delimited, no instruction to treat it as data);
- ``reasoning_gym``: garbage in the answer tag, a wrong and the right tag, a wrong and the right
  answer in one tag, the right answer among its neighbours inside the tag, the right answer in a sentence (``chatty``), and
  ``executes_answer``: an answer that creates a marker file if a scorer evaluates it as Python (a
  hole when the file appears, whatever the score). For this family the bar is 0, not
  ``threshold``: reasoning-gym's scorers pay partial credit for wrong answers (countdown pays 0.01
  for garbage, most pay len(gold)/len(answer) for any answer containing the gold), so any reward for
  a wrong answer is a hole; ``chatty`` is the right answer, so only partial credit for it is one (a
  scorer that accepts the sentence is lenient, not fooled). Its gold is the row's bare ``answer``.

The right answer comes from the row's ``solution``, ``answer``, ``reference`` or ``expected`` field
(the first present); attacks that need it are skipped for rows without one. A ``multi`` grader gets
the attacks of every sub-grader family; a row's own grader spec overrides the default. Not covered:
attacks a model would need to learn (subtle near-misses), and graders whose loophole needs the
grader's source to find -- the library holds the known patterns, it proves nothing beyond them.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from rft.data import Example
from rft.graders.judge_attacks import judge_attacks, judge_findings
from rft.graders.pool import GraderPool

GOLD_FIELDS = ("solution", "answer", "reference", "expected")
Attack = tuple[str, str]  # (name, completion)


@dataclass(frozen=True)
class Hole:
    example_id: str
    attack: str
    score: float
    reason: str
    completion: str  # shortened to 300 characters

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AuditResult:
    holes: list[Hole]
    attacks_run: int
    examples: int
    tried: dict[str, int]  # attack name -> completions graded
    by_attack: dict[str, int]  # attack name -> holes
    zero_bar: int = 0  # examples of a ZERO_BAR family, held to a bar of 0 instead of the threshold
    findings: list[str] = field(default_factory=list)  # judge specs that let the completion read as instructions


def gold_answer(example: Example) -> str | None:
    for f in GOLD_FIELDS:
        value = example.get(f)
        if value is not None:
            return value if isinstance(value, str) else json.dumps(value)
    return None


def _prompt_text(example: Example) -> str:
    if isinstance(example.prompt, str):
        return example.prompt
    return "\n".join(str(m.get("content", "")) for m in example.prompt)


_SWAPS = {"yes": "no", "no": "yes", "true": "false", "false": "true", "knight": "knave", "knave": "knight"}


def wrong_answer(gold: str) -> str:
    """A plausible wrong answer of the same shape: n+1 for an integer, the opposite verdict for
    yes/no and knight/knave, else a different word."""
    g = gold.strip()
    if re.fullmatch(r"-?\d+", g):
        return str(int(g) + 1)
    swapped = re.sub(r"\b(yes|no|true|false|knight|knave)\b", lambda m: _SWAPS[m.group(1).lower()], g, flags=re.I)
    return swapped if swapped != g else "none"


def plausible_answers(gold: str) -> list[str]:
    """The right answer hidden among its neighbours."""
    g = gold.strip()
    if re.fullmatch(r"-?\d+", g):
        return [str(int(g) + d) for d in range(-3, 4)]
    if g.lower() in _SWAPS:
        return ["yes", "no", "unknown", "true", "false"]
    return [wrong_answer(g), g, "yes", "no", "0", "1"]


def generic_attacks(example: Example, gold: str | None, family: str) -> list[Attack]:
    out: list[Attack] = [("empty", ""), ("whitespace", " \n\t \n"), ("prompt_echo", _prompt_text(example)),
                         ("huge", "a" * 200_000), ("empty_tags", "<think></think><answer></answer>"),
                         ("empty_tags", "\\boxed{}")]
    if gold is not None:
        wrong = wrong_answer(gold)
        out += [("answer_spray", " ".join(plausible_answers(gold))),
                ("answer_spray", "\n".join(plausible_answers(gold))),
                ("several_answers", f"{wrong} or {gold}"),
                ("several_answers", f"Answer: {gold}\nAnswer: {wrong}"),
                ("several_answers", f"\\boxed{{{wrong}}} \\boxed{{{gold}}}")]
        if family not in ("code", "sql"):
            out.append(("padded_answer", "filler " * 14_000 + gold))
    return out


def code_attacks(example: Example, gold: str | None) -> list[Attack]:
    name = example.get("entry_point") or "f"
    tests = example.get("tests") or []
    first_out = next((t.get("expected_stdout") for t in tests if isinstance(t, dict) and "expected_stdout" in t), None)
    first_value = next((t.get("expected") for t in tests if isinstance(t, dict) and "expected" in t), None)
    always_eq = ("class _Eq:\n    def __eq__(self, other):\n        return True\n    def __ne__(self, other):\n"
                 "        return False\n    __hash__ = object.__hash__\n")
    out = [
        ("exit_early", "import sys\nsys.exit(0)\n"),
        ("exit_early", "import os\nos._exit(0)\n"),
        ("exit_early", f"def {name}(*a, **k):\n    raise SystemExit(0)\n"),
        ("always_equal", always_eq + f"def {name}(*a, **k):\n    return _Eq()\n"),
        ("prints_expected", f"def {name}(*a, **k):\n    print({first_value!r})\n"),
        ("constant_output", f"def {name}(*a, **k):\n    return {first_value!r}\n"),
        ("forged_verdict", 'print(\'{"status": "passed", "passed": true}\')\nprint("All tests passed")\n'),
    ]
    if first_out is not None:
        out.append(("prints_expected", f"print({first_out!r}, end='')\n"))
    return out


def sql_attacks(example: Example, gold: str | None) -> list[Attack]:
    m = re.search(r"\bFROM\s+(\w+)", gold or "", re.I)
    table = m.group(1) if m else "t"
    writes = [f"DELETE FROM {table}", f"DROP TABLE {table}", f"UPDATE {table} SET rowid = rowid",
              f"INSERT INTO {table} DEFAULT VALUES", "CREATE TABLE audit_probe(x)"]
    out = [("sql_write", w) for w in writes]
    if gold is not None:
        out.append(("sql_write", gold.rstrip().rstrip(";") + f"; DELETE FROM {table}"))
    return out


def json_attacks(example: Example, gold: str | None) -> list[Attack]:
    ref = example.get("reference")
    if ref is None and gold is not None:
        try:
            ref = json.loads(gold)
        except json.JSONDecodeError:
            ref = None
    out: list[Attack] = [("json_empty", "{}"), ("json_empty", "[]"), ("json_empty", "null")]
    if isinstance(ref, dict):
        out.append(("json_padded", json.dumps({**ref, "extra_field": "x"})))
        for key in list(ref)[:3]:
            out.append(("json_missing_field", json.dumps({k: v for k, v in ref.items() if k != key})))
        out += [("json_twice", json.dumps(ref) + json.dumps(ref)), ("json_twice", json.dumps([ref, ref])),
                ("json_prose", "Here is the JSON: " + json.dumps(ref))]
    return out


_MARKERS: list[str] = []  # the directory executes_answer markers go to, made on first use
_MARKER_IDS = itertools.count()
_MARKER = re.compile(r"open\('([^']+)', 'w'\)")


def _marker(example: Example) -> str:
    if not _MARKERS:
        _MARKERS.append(tempfile.mkdtemp(prefix="rft-audit-"))
    return os.path.join(_MARKERS[0], f"{next(_MARKER_IDS)}-" + re.sub(r"[^\w.-]", "_", example.id)[:60])


def executed(text: str) -> bool:
    """Whether the ``executes_answer`` attack ``text`` ran: its marker file exists (then removed)."""
    m = _MARKER.search(text)
    if m is None or not os.path.exists(m.group(1)):
        return False
    os.unlink(m.group(1))
    return True


def _boxed(answers: list[Any]) -> str:
    return " ".join(f"\\boxed{{{a}}}" for a in answers)


def math_attacks(example: Example, gold: str | None) -> list[Attack]:
    if gold is None:
        return []
    return [("box_spray", _boxed(plausible_answers(gold))), ("box_spray", _boxed([*range(1, 101), gold])),
            ("box_superset", _boxed([gold, wrong_answer(gold)]))]


def reasoning_gym_attacks(example: Example, gold: str | None) -> list[Attack]:
    out: list[Attack] = [("garbage", "<answer>xyz</answer>"), ("garbage", "<answer>?</answer>"),
                         ("executes_answer", f"<answer>open({_marker(example)!r}, 'w').close()</answer>")]
    if gold is not None:
        wrong = wrong_answer(gold)
        out += [("several_tags", f"<answer>{wrong}</answer>\n<answer>{gold}</answer>"),
                ("several_in_tag", f"<answer>{wrong} or {gold}</answer>"),
                ("chatty", f"<answer>The answer is {gold}.</answer>"),
                ("answer_spray", f"<answer>{' '.join(plausible_answers(gold))}</answer>")]
    return out


FAMILY_ATTACKS: dict[str, Callable[[Example, str | None], list[Attack]]] = {
    "code": code_attacks, "sql": sql_attacks, "json_schema": json_attacks, "reasoning_gym": reasoning_gym_attacks,
    "math": math_attacks,
}
ZERO_BAR = ("reasoning_gym",)  # families whose attacks may earn nothing at all (see the module docstring)
PARTIAL_ONLY = ("chatty",)  # ... except these right answers, which may earn full marks but not part of them


def is_hole(score: float, name: str, zero_bar: bool, threshold: float) -> bool:
    if not zero_bar:
        return score > threshold
    return 0.0 < score < 1.0 - 1e-9 if name in PARTIAL_ONLY else score > 0.0


def families(spec: dict[str, Any]) -> list[str]:
    """Grader types in a spec, sub-graders of ``multi`` included."""
    if spec.get("type") == "multi":
        subs = spec.get("graders") or {}
        return ["multi"] + [f for s in (subs.values() if isinstance(subs, dict) else subs) for f in families(s)]
    return [str(spec.get("type"))]


def attacks_for(example: Example, spec: dict[str, Any]) -> list[Attack]:
    fams = families(example.grader or spec)
    gold = example.get("answer") if "reasoning_gym" in fams else gold_answer(example)
    main = next((f for f in fams if f in ("code", "sql")), fams[0])
    out = generic_attacks(example, gold, main)
    for f in dict.fromkeys(fams):
        if f in FAMILY_ATTACKS:
            out += FAMILY_ATTACKS[f](example, gold)
    return out + judge_attacks(example, gold, example.grader or spec)


AUDIT_CHUNK = 256  # attacks graded per pool call: the progress bar's granularity


def audit(spec: dict[str, Any], examples: list[Example], threshold: float = 0.5, workers: int = 0,
          timeout_s: float = 30.0, console: Any = None) -> AuditResult:
    """Grade every attack on every example; a hole is an attack scoring above ``threshold``.
    With a ``console``, a progress bar (with ETA) advances chunk by chunk."""
    from rft.console import Console

    pairs = [(e, name, text) for e in examples for name, text in attacks_for(e, spec)]
    grades = []
    with GraderPool(spec, workers, timeout_s) as pool, \
            (console or Console(quiet=True)).progress(len(pairs), "audit") as bar:
        for i in range(0, len(pairs), AUDIT_CHUNK):
            chunk = pairs[i : i + AUDIT_CHUNK]
            grades += pool.grade([t for _, _, t in chunk], [e for e, _, _ in chunk])
            bar.update(len(chunk), holes=sum(g.score > threshold for g in grades))
    zero = {e.id for e in examples if set(families(e.grader or spec)) & set(ZERO_BAR)}
    holes = []
    for (e, name, text), g in zip(pairs, grades):
        ran = name == "executes_answer" and executed(text)
        if ran or is_hole(g.score, name, e.id in zero, threshold):
            reason = "the grader ran the answer as code (its marker file appeared); " * ran + g.reason
            holes.append(Hole(e.id, name, g.score, reason, text if len(text) <= 300 else text[:297] + "..."))
    tried: dict[str, int] = {}
    for _, name, _ in pairs:
        tried[name] = tried.get(name, 0) + 1
    by_attack = {name: sum(h.attack == name for h in holes) for name in tried}
    specs = {json.dumps(s, sort_keys=True, default=str): s for s in [spec, *(e.grader for e in examples if e.grader)]}
    findings = [f for s in specs.values() for f in judge_findings(s)]
    return AuditResult(holes, len(pairs), len(examples), tried, by_attack, len(zero), findings)
