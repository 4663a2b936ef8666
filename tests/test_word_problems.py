"""The built-in word problems: splits disjoint by operand pair, phrasings held out, answers right."""

import re

import pytest

from rft.config import ConfigError, task_config, config_from_dict
from rft.graders.registry import build
from rft.tasks import TASKS
from rft.tasks.word_problems import (
    HELDOUT_TEMPLATES,
    INSTRUCTION,
    TRAIN_TEMPLATES,
    heldout_phrasings,
    make_word_problems,
)

CFG = task_config(name="word_problems", ops=["+", "-"], val_size=60, train_size=400)


def _numbers(ex):
    a, b = (int(x) for x in re.findall(r"\d+", ex.prompt[0]["content"])[:2])
    return ex.get("op"), frozenset((a, b))


def test_operand_pairs_are_disjoint_across_train_validation_and_held_out_phrasings():
    train, val, _ = make_word_problems(CFG, seed=0)
    phr = heldout_phrasings(CFG, seed=0)
    assert (len(train), len(val), len(phr)) == (400, 60, 60)
    seen = {_numbers(e) for e in train}
    assert not seen & {_numbers(e) for e in val} and not seen & {_numbers(e) for e in phr}
    assert len({e.id for e in train + val + phr}) == 520


def test_held_out_phrasings_use_only_templates_training_never_sees():
    train, val, _ = make_word_problems(CFG, seed=1)
    assert {e.get("template").split("-")[0] for e in train + val} == {"train", "val"}
    assert all(e.get("template").startswith("phrasing-") for e in heldout_phrasings(CFG, seed=1))
    first_words = {t.split()[0] for _, t in TRAIN_TEMPLATES}
    assert {t for _, t in HELDOUT_TEMPLATES}.isdisjoint({t for _, t in TRAIN_TEMPLATES})
    assert any(t.split()[0] not in first_words for _, t in HELDOUT_TEMPLATES)
    # the answer-format instruction is the same everywhere: it is not a phrasing
    assert all(e.prompt[0]["content"].endswith(" " + INSTRUCTION) for e in train + val + heldout_phrasings(CFG, seed=1))


def test_answers_are_the_true_results_and_the_solutions_score_one_with_the_tasks_grader():
    train, val, spec = make_word_problems(CFG, seed=2)
    grader = build(spec)
    for ex in val + heldout_phrasings(CFG, seed=2) + train[:50]:
        op, _ = _numbers(ex)
        a, b = (int(x) for x in re.findall(r"\d+", ex.get("solution"))[:2])
        assert int(ex.get("answer")) == (a + b if op == "+" else a - b) >= 0
        assert grader(ex.get("solution"), ex).score == 1.0
        assert grader(f"{a} {op} {b} = {int(ex.get('answer')) + 1}.", ex).score == 0.0
    assert {e.get("op") for e in train} == {"+", "-"}


def test_same_seed_same_problems_other_seed_other_validation():
    a, b = make_word_problems(CFG, seed=3), make_word_problems(CFG, seed=3)
    assert [e.prompt for e in a[1]] == [e.prompt for e in b[1]]
    assert [e.prompt for e in a[1]] != [e.prompt for e in make_word_problems(CFG, seed=4)[1]]


def test_config_accepts_digits_and_ops_and_rejects_multiplication():
    cfg = config_from_dict({"data": {"task": {"name": "word_problems", "digits": 1, "ops": ["-"], "val_size": 5}}})
    train, val, _ = TASKS["word_problems"](cfg.data.task, 0)
    assert all(int(e.get("answer")) < 10 for e in train + val)
    with pytest.raises(ConfigError, match="word_problems has '\\+' and '-' only"):
        config_from_dict({"data": {"task": {"name": "word_problems", "ops": ["*"]}}})
    with pytest.raises(ValueError, match="val_size=30 leaves no training problems"):
        make_word_problems(task_config(name="word_problems", digits=1, ops=["-"], val_size=30), 0)


def test_held_out_phrasings_hold_both_operators_even_when_training_adds_only():
    cfg = task_config(name="word_problems", ops=["+"], val_size=40, train_size=300)
    train, val, _ = make_word_problems(cfg, seed=0)
    phr = heldout_phrasings(cfg, seed=0)
    assert {e.get("op") for e in train + val} == {"+"}
    assert [e.get("op") for e in phr].count("-") == 20 == [e.get("op") for e in phr].count("+")
    assert not {_numbers(e) for e in train} & {_numbers(e) for e in phr}
