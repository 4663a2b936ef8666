"""The built-in generated tasks (sql, json, logic, code): seeded, disjoint, and graded as intended --
every reference answer scores 1 with the task's own grader, wrong and hostile answers score 0 --
plus one smoke test that trains 2 GRPO steps on every example config in configs/."""

import hashlib
import json
import random
from pathlib import Path

import pytest
import yaml

from rft.config import ConfigError, task_config, config_from_dict, load_config
from rft.data import Example
from rft.graders import build
from rft.tasks import PACKAGES, TASKS
from rft.tasks.logic import entails
from rft.tasks.split import draw_distinct
from rft.tasks.sql import ensure_database

GENERATED = ["sql", "json", "logic", "code"]
# The example configs of built-in tasks; those of integrations (verifiers.yaml: a data file and a
# verifiers grader) are trained by their own tests (tests/test_verifiers_grader.py).
# The example configs of the tiny model (configs/sql_smollm2.yaml is the SQL demo's, tests/test_demo_sql.py).
CONFIGS = [p for p in sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))
           if "task" in (yaml.safe_load(p.read_text()).get("data") or {})
           and (yaml.safe_load(p.read_text()).get("model") or {}).get("path", "embedded") == "embedded"]
# Configs of the tasks on optional packages (reasoning_gym, humaneval) train in their own test files.
OWN_PACKAGE = {p.stem for p in CONFIGS if load_config(p).data.task and load_config(p).data.task.name in PACKAGES}


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """The sql database goes to a private cache, so tests never touch ~/.cache/rft."""
    monkeypatch.setenv("RFT_CACHE", str(tmp_path_factory.getbasetemp() / "rft-cache"))


def _make(name, seed=0, val_size=20, train_size=60):
    return TASKS[name](task_config(name=name, val_size=val_size, train_size=train_size), seed)


def _rows(examples):
    return [(e.id, e.prompt, e.fields, e.grader) for e in examples]


def _grade(spec, completion, example):
    return build(example.grader or spec)(completion, example)


# -- properties every generated task has --------------------------------------------------------


@pytest.mark.parametrize("name", GENERATED)
def test_same_seed_gives_identical_splits(name):
    train_a, val_a, spec_a = _make(name, seed=3)
    train_b, val_b, spec_b = _make(name, seed=3)
    assert (_rows(train_a), _rows(val_a), spec_a) == (_rows(train_b), _rows(val_b), spec_b)


@pytest.mark.parametrize("name", GENERATED)
def test_another_seed_gives_another_validation_split(name):
    assert [e.prompt for e in _make(name, seed=0)[1]] != [e.prompt for e in _make(name, seed=1)[1]]


@pytest.mark.parametrize("name", GENERATED)
def test_train_and_val_share_no_prompt_and_ids_are_unique(name):
    train, val, _ = _make(name, val_size=50, train_size=300)
    assert not {e.prompt_key() for e in train} & {e.prompt_key() for e in val}
    assert len({e.id for e in train + val}) == len(train) + len(val)
    assert (len(train), len(val)) == (300, 50)


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_each_configs_sampling_budget_holds_its_reference_answers(path):
    """The char-level tiny model has 512 positions, one per character: prompt + max_new_tokens must
    fit, and the reference answer must fit in max_new_tokens or no sample could ever be right."""
    cfg = load_config(path)
    if cfg.data.task.name == "humaneval":
        pytest.skip("HumanEval's answers are functions of hundreds of characters: on the tiny model its config is a "
                    "pipeline check, not a task the model can solve (tests/test_humaneval.py)")
    if cfg.data.task.name in PACKAGES:
        pytest.importorskip(PACKAGES[cfg.data.task.name])
    train, val = TASKS[cfg.data.task.name](cfg.data.task, cfg.seed)[:2]
    budget = cfg.sampling.max_new_tokens
    assert max(len(e.prompt) for e in train + val) + 1 + budget <= 512
    longest = max(train + val, key=lambda e: len(e.get("solution")))
    assert len(longest.get("solution")) < budget, longest.get("solution")  # < : room for EOS


def test_sql_val_size_that_leaves_no_training_question_names_the_field():
    with pytest.raises(ValueError, match=r"data\.task\.val_size=10000 leaves no training examples"):
        TASKS["sql"](task_config(name="sql", val_size=10_000), 0)


def test_draw_distinct_stops_when_the_space_is_used_up():
    def draw(rng):
        return Example(id="", prompt=f"q{rng.randint(0, 2)}")

    got = draw_distinct(draw, 10, random.Random(0), "t")
    assert sorted(e.prompt for e in got) == ["q0", "q1", "q2"]
    assert [e.id for e in got] == ["t-0", "t-1", "t-2"]


@pytest.mark.parametrize("name", GENERATED)
def test_every_solution_field_scores_one_with_the_tasks_own_grader(name):
    """``solution`` is the SFT target; it must be a full-score completion for every row."""
    train, val, spec = _make(name, val_size=10, train_size=20 if name == "code" else 60)
    for ex in val + train:
        grade = _grade(spec, ex.get("solution"), ex)
        assert (grade.score, grade.passed) == (1.0, True), (ex.prompt, grade.reason)


# -- sql --------------------------------------------------------------------------------------


def test_sql_gold_query_scores_one_and_hostile_queries_score_zero_leaving_the_db_unchanged():
    train, val, spec = _make("sql", val_size=30, train_size=100)
    db = Path(val[0].get("db"))
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    grader = build(spec)
    for ex in val + train:
        assert grader(ex.get("gold_sql"), ex).score == 1.0, ex.prompt
        for wrong in ["SELECT 1 WHERE 0", "DROP TABLE emp", ex.get("gold_sql") + "; DELETE FROM emp",
                      "SELECT name, age, salary FROM emp", f"ATTACH '{db}.x' AS x"]:
            grade = grader(wrong, ex)
            assert (grade.score, grade.passed) == (0.0, False), (ex.prompt, wrong, grade.reason)
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in db.parent.iterdir()) == [db.name]


def test_sql_database_is_an_absolute_path_reused_across_calls(tmp_path):
    first = ensure_database(tmp_path)
    mtime = first.stat().st_mtime_ns
    assert first.is_absolute() and ensure_database(tmp_path) == first
    assert first.stat().st_mtime_ns == mtime
    assert {e.get("db") for e in sum(_make("sql")[:2], [])} == {str(ensure_database())}


# -- json --------------------------------------------------------------------------------------


def test_json_reference_scores_one_and_schema_breaking_answers_score_zero():
    train, val, spec = _make("json")
    grader = build(spec)
    for ex in val + train:
        ref = ex.get("reference")
        assert grader(json.dumps(ref), ex).score == 1.0, ex.prompt
        name_twice = '{"name": %s, ' % json.dumps(ref["name"]) + json.dumps(ref)[1:]
        numbers_as_text = {k: str(v) if isinstance(v, int) else v for k, v in ref.items()}
        hostile = [
            "{}",
            name_twice,  # duplicate key
            json.dumps({**ref, "note": "x"}),  # a key the schema does not allow
            json.dumps(numbers_as_text) if numbers_as_text != ref else json.dumps({**ref, "name": 1}),
            "Sure! " + json.dumps(ref),  # prose around the value
            json.dumps([ref, ref]),
        ]
        for wrong in hostile:
            grade = grader(wrong, ex)
            assert (grade.score, grade.passed) == (0.0, False), (ex.prompt, wrong, grade.reason)


def test_json_reference_matches_the_values_written_in_the_prompt():
    for ex in _make("json", val_size=50, train_size=200)[0]:
        for value in ex.get("reference").values():
            assert str(value) in ex.prompt, (ex.prompt, value)


# -- logic -------------------------------------------------------------------------------------


def test_logic_has_both_kinds_and_balanced_entailment_verdicts():
    train, _, _ = _make("logic", val_size=20, train_size=400)
    kinds = [e.get("kind") for e in train]
    verdicts = [e.get("answer") for e in train if e.get("kind") == "entailment"]
    assert 0.35 < kinds.count("entailment") / len(kinds) < 0.65
    assert 0.35 < verdicts.count("yes") / len(verdicts) < 0.65


def test_truth_table_entailment_matches_hand_checked_cases():
    p, q, r = ("var", "p"), ("var", "q"), ("var", "r")
    assert entails([("->", p, q), p], q) is True  # modus ponens
    assert entails([("->", p, q), q], p) is False  # affirming the consequent
    assert entails([("|", p, q), ("not", "p")], q) is True  # disjunctive syllogism
    assert entails([p, ("not", "p")], r) is None  # inconsistent premises are never generated


def test_logic_answer_scores_one_and_wrong_or_hedged_answers_score_zero():
    train, val, spec = _make("logic", val_size=20, train_size=60)
    for ex in val + train:
        answer = ex.get("answer")
        if ex.get("kind") == "entailment":
            right, opposite = answer, {"yes": "no", "no": "yes"}[answer]
            hostile = [opposite, "yes or no", f"{right} {opposite}", ""]
        else:
            groups = {r: [p for p in answer if answer[p] == r] for r in ("knight", "knave")}
            right = ", ".join(f"{' and '.join(ps)} are {r}s" if len(ps) > 1 else f"{ps[0]} is a {r}"
                              for r, ps in groups.items() if ps)
            people = list(answer)
            flip = {**answer, people[0]: {"knight": "knave", "knave": "knight"}[answer[people[0]]]}
            hostile = [
                ", ".join(f"{p} is a {r}" for p, r in flip.items()),
                f"{people[0]} is a knight or a knave, " + ", ".join(f"{p} is a {answer[p]}" for p in people[1:]),
                ", ".join(f"{p} is a {answer[p]}" for p in people[1:]),  # someone left out
                ", ".join(f"{p} is a {r}" for p, r in answer.items()) + f", {people[0]} is a knave",
            ]
        assert _grade(spec, right, ex).score == 1.0, (ex.prompt, right)
        for wrong in hostile:
            grade = _grade(spec, wrong, ex)
            assert (grade.score, grade.passed) == (0.0, False), (ex.prompt, wrong, grade.reason)


# -- code --------------------------------------------------------------------------------------


def test_code_wrong_and_cheating_programs_score_zero():
    train, val, spec = _make("code", val_size=6, train_size=6)
    grader = build(spec)
    for ex in val + train:
        hostile = [
            "def f(x):\n    return None\n",
            "import sys\nsys.exit(0)\n",
            "class E:\n    def __eq__(self, o):\n        return True\ndef f(x):\n    return E()\n",
            "",
        ]
        for wrong in hostile:
            grade = grader(wrong, ex)
            assert (grade.score, grade.passed) == (0.0, False), (ex.prompt, wrong, grade.reason)


def test_code_prompt_shows_only_some_tests():
    """Hidden tests: a lookup table of the shown pairs cannot pass."""
    for ex in _make("code")[1]:
        shown = [t for t in ex.get("tests") if f"f({t['args'][0]!r}) ==" in ex.prompt]
        assert 0 < len(shown) < len(ex.get("tests"))


# -- config ------------------------------------------------------------------------------------


@pytest.mark.parametrize("field,value", [("digits", 3), ("ops", ["*"]), ("sloppy_rate", 0.5)])
def test_arithmetic_only_fields_are_rejected_for_other_tasks(field, value):
    with pytest.raises(ConfigError, match=rf"'{field}' applies only to the arithmetic .*task.*data\.task\.{field}"):
        config_from_dict({"data": {"task": {"name": "sql", field: value}}})


def test_resolved_config_of_a_generated_task_loads_again(tmp_path):
    cfg = config_from_dict({"data": {"task": {"name": "logic", "val_size": 10}}})
    (tmp_path / "c.yaml").write_text(cfg.to_yaml())
    assert load_config(tmp_path / "c.yaml") == cfg


# -- every example config trains ----------------------------------------------------------------


@pytest.mark.model
def test_every_example_config_trains_two_steps_and_logs_its_graders_metrics(tmp_path):
    from rft.console import Console
    from rft.grpo.train import train

    assert {p.stem for p in CONFIGS} >= {"sql", "json", "logic", "code"}
    assert OWN_PACKAGE == {"reasoning_gym", "humaneval"}
    for path in (p for p in CONFIGS if p.stem not in OWN_PACKAGE):
        cfg = load_config(path, ["grpo.steps=2", f"output_dir={tmp_path}", "eval.size=4",
                                 "grpo.prompts_per_step=4", "sampling.num_generations=2"])
        result = train(cfg, console=Console(quiet=True))
        rows = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
        kind = TASKS[cfg.data.task.name](cfg.data.task, cfg.seed)[2]["type"]
        steps = [r for r in rows if r["type"] == "train"]
        assert [r["step"] for r in steps] == [1, 2], path.name
        assert all(f"grader/{kind}/mean" in r for r in steps), (path.name, sorted(steps[0]))
        assert (result.run_dir / "config.yaml").is_file()
