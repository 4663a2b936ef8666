"""The sql task's natural questions (data.task.questions: natural): chat prompts with the schema,
several phrasings per intent, validation split by parameters, and intents held out of both."""

from collections import defaultdict

import pytest

from rft.config import ConfigError, task_config, config_from_dict
from rft.graders.registry import build
from rft.tasks import TASKS
from rft.tasks.sql import unseen_template_questions
from rft.tasks.sql_questions import SEEN, SYSTEM, UNSEEN, questions


@pytest.fixture(scope="module", autouse=True)
def _private_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RFT_CACHE", str(tmp_path_factory.mktemp("rft-cache")))
        yield


def _natural(seed=0, **kw):
    cfg = task_config(name="sql", questions="natural", **{"val_size": 40, **kw})
    train, val, spec = TASKS["sql"](cfg, seed)
    return train, val, spec, unseen_template_questions(cfg, seed)


def test_prompts_are_chat_with_the_schema_and_gold_queries_score_one():
    train, val, spec, unseen = _natural()
    grader = build(spec)
    for ex in train[:40] + val + unseen:
        system, user = ex.prompt
        assert system == {"role": "system", "content": SYSTEM} and user["role"] == "user"
        assert "CREATE TABLE emp(" in system["content"] and user["content"].endswith(("?", "."))
        assert grader(ex.get("gold_sql"), ex).score == 1.0, user
        assert grader("SELECT 1 WHERE 0", ex).score == 0.0
        assert ex.get("solution") == ex.get("gold_sql")


def test_several_phrasings_per_intent_and_joins_aggregates_ordering_in_training():
    train, _, _, _ = _natural()
    phrasings = defaultdict(set)
    for ex in train:
        phrasings[ex.get("gold_sql")].add(ex.prompt[1]["content"])
    assert max(len(p) for p in phrasings.values()) >= 3
    golds = " ".join(phrasings)
    for needed in (" JOIN ", "SUM(", "AVG(", "ORDER BY salary DESC"):
        assert needed in golds, needed
    every = {q for _, qs, _ in questions(SEEN, ["Sales", "IT"], ["Paris"]) for q in qs}
    assert {"Which employees in Sales are older than 45?", "What is the total budget of IT's projects?"} <= every


def test_validation_holds_out_parameters_and_unseen_intents_are_in_neither_split():
    train, val, _, unseen = _natural()
    assert {e.get("gold_sql") for e in train}.isdisjoint(e.get("gold_sql") for e in val)
    assert {e.get("template") for e in train + val} <= set(SEEN)
    assert {e.get("template") for e in unseen} == set(UNSEEN)
    assert set(SEEN).isdisjoint(UNSEEN)
    seen_golds = {e.get("gold_sql") for e in train + val}
    assert seen_golds.isdisjoint(e.get("gold_sql") for e in unseen)
    assert len({e.id for e in train + val + unseen}) == len(train + val + unseen)


def test_deterministic_in_the_seed():
    a, b = _natural(0), _natural(0)
    assert [e.prompt for e in a[1]] == [e.prompt for e in b[1]] and [e.prompt for e in a[3]] == [e.prompt for e in b[3]]
    assert [e.prompt for e in _natural(1)[1]] != [e.prompt for e in a[1]]


def test_terse_questions_stay_the_default_and_the_field_is_sql_only():
    train, _, _ = TASKS["sql"](task_config(name="sql", val_size=10, train_size=10), 0)
    assert isinstance(train[0].prompt, str) and train[0].prompt.endswith("SQL: ")
    with pytest.raises(ConfigError, match="'questions' applies only to the sql task"):
        config_from_dict({"data": {"task": {"name": "json", "questions": "natural"}}})
    with pytest.raises(ValueError, match="leaves no training questions"):
        _natural(val_size=10_000)
