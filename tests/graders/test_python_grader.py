"""python grader: OpenAI grade(sample, item) from source/file and TRL-style module:function."""

from __future__ import annotations

import textwrap

import pytest

from rft.config.base import SpecError
from rft.data import Example
from rft.graders import build

EX = Example("t", "Say the answer.", {"answer": "4", "level": 2})
EXACT = "def grade(sample, item):\n    return float(sample['output_text'].strip() == item['answer'])\n"

SOURCE_CASES = [
    # id, source, completion, expected score, expected passed
    ("exact_match", EXACT, "4", 1.0, None),
    ("exact_miss", EXACT, "5", 0.0, None),
    ("reads_output_json", "def grade(sample, item):\n    return float(sample['output_json']['a'] == 4)\n", '{"a": 4}', 1.0, None),
    ("reads_item_columns", "def grade(sample, item):\n    return item['level'] / 4\n", "x", 0.5, None),
    ("int_return_ok", "def grade(sample, item):\n    return 1\n", "x", 1.0, None),
    # adversarial negatives / broken graders
    ("returns_bool_rejected", "def grade(sample, item):\n    return True\n", "x", 0.0, False),
    ("returns_string_rejected", "def grade(sample, item):\n    return '1'\n", "x", 0.0, False),
    ("returns_nan_rejected", "def grade(sample, item):\n    return float('nan')\n", "x", 0.0, False),
    ("returns_inf_rejected", "def grade(sample, item):\n    return float('inf')\n", "x", 0.0, False),
    ("raises_becomes_zero", "def grade(sample, item):\n    raise KeyError('x')\n", "x", 0.0, False),
    ("duplicate_key_json_is_none", "def grade(sample, item):\n    return float(sample['output_json'] is None)\n", '{"a": 1, "a": 2}', 1.0, None),
]


@pytest.mark.parametrize("source,completion,score,passed", [c[1:] for c in SOURCE_CASES], ids=[c[0] for c in SOURCE_CASES])
def test_openai_grade_from_source(source, completion, score, passed):
    from rft.graders.base import safe_grade

    grade = safe_grade(build({"type": "python", "source": source}), completion, EX)
    assert (grade.score, grade.passed) == (score, passed), grade.reason


def test_grade_from_file_with_pass_threshold(tmp_path):
    path = tmp_path / "g.py"
    path.write_text(EXACT)
    grader = build({"type": "python", "file": str(path), "pass_threshold": 0.5, "name": "exact"})
    assert grader("4", EX).passed is True and grader("5", EX).passed is False


TRL_MODULE = textwrap.dedent(
    """
    def accuracy(prompts, completions, answer, **kwargs):
        return [float(c.strip() == a) for c, a in zip(completions, answer)]

    def two_values(prompts, completions, **kwargs):
        return [1.0, 1.0]

    def not_applicable(prompts, completions, **kwargs):
        return [None]

    def strict_signature(prompts, completions):
        return [1.0]
    """
)


@pytest.mark.parametrize(
    "function,completion,score,passed",
    [
        ("accuracy", "4", 1.0, None),
        ("accuracy", "5", 0.0, None),
        ("two_values", "4", 0.0, False),
        ("not_applicable", "4", 0.0, None),
    ],
    ids=["trl_hit", "trl_miss", "wrong_length_rejected", "none_is_skipped"],
)
def test_trl_reward_function(tmp_path, function, completion, score, passed):
    path = tmp_path / "rewards.py"
    path.write_text(TRL_MODULE)
    grade = build({"type": "python", "function": f"{path}:{function}"})(completion, EX)
    assert (grade.score, grade.passed) == (score, passed), grade.reason


def test_trl_function_by_module_name(tmp_path, monkeypatch):
    (tmp_path / "my_rewards.py").write_text(TRL_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))  # importable by name, as an installed module is
    assert build({"type": "python", "function": "my_rewards:accuracy"})("4", EX).score == 1.0


@pytest.mark.parametrize(
    "spec,match",
    [
        ({"type": "python", "source": "def grade(sample, item)\n    return 1"}, "line 1"),
        ({"type": "python", "source": "x = 1"}, "grade"),
        ({"type": "python", "file": "/no/such/file.py"}, "file"),
        ({"type": "python", "function": "no_colon"}, "function"),
        ({"type": "python", "function": "rft.no_such_module:f"}, "function"),
        ({"type": "python", "function": "rft.graders.base:no_such_fn"}, "function"),
        ({"type": "python"}, "exactly one"),
        ({"type": "python", "source": EXACT, "function": "a:b"}, "exactly one"),
    ],
    ids=["syntax_error", "no_grade_function", "missing_file", "no_colon", "missing_module", "missing_function", "none_given", "two_given"],
)
def test_bad_spec_is_a_spec_error(spec, match):
    with pytest.raises(SpecError, match=match):
        build(spec)
