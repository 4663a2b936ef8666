from rft.data import Example
from rft.graders.pool import GraderPool
from rft.training.evaluate import wrong_answer_share

EXAMPLES = [
    Example("a", "47+38=", {"answer": "85", "sloppy": "75"}),
    Example("b", "12+34=", {"answer": "46", "sloppy": "46"}),  # no carry: the sloppy answer is right
    Example("c", "19+19=", {"answer": "38", "sloppy": "28"}),
]


def test_wrong_answer_share_counts_only_examples_where_the_field_is_wrong():
    pool = GraderPool({"type": "arithmetic"})
    assert wrong_answer_share(pool, ["75", "46", "38"], EXAMPLES, "sloppy") == 0.5
    assert wrong_answer_share(pool, ["85", "46", "38"], EXAMPLES, "sloppy") == 0.0
    assert wrong_answer_share(pool, ["75", "0", "28"], EXAMPLES, "sloppy") == 1.0


# -- pass@k, maj@k, per-grader rewards -----------------------------------------------------------
from itertools import combinations  # noqa: E402
from math import comb  # noqa: E402

import pytest  # noqa: E402

from rft.graders.base import Grade  # noqa: E402
from rft.training.evaluate import majority_passed, pass_at_k, per_grader_rewards  # noqa: E402


@pytest.mark.parametrize("n", [1, 2, 5, 8, 16])
def test_pass_at_k_equals_the_share_of_k_subsets_with_a_pass(n):
    """The estimator is the exact probability that k of the n samples, drawn without replacement,
    hold at least one pass: count the subsets directly."""
    for c in range(n + 1):
        samples = [True] * c + [False] * (n - c)
        for k in range(1, n + 1):
            if comb(n, k) > 20_000:
                continue
            brute = sum(any(s) for s in combinations(samples, k)) / comb(n, k)
            assert pass_at_k(n, c, k) == pytest.approx(brute, abs=1e-12), (n, c, k)


def test_pass_at_k_edges_and_bad_arguments():
    assert pass_at_k(8, 0, 8) == 0.0 and pass_at_k(8, 1, 8) == 1.0
    assert pass_at_k(8, 2, 1) == pytest.approx(0.25)  # pass@1 is the pass rate
    for bad in [(4, 5, 1), (4, 1, 0), (4, 1, 5), (4, -1, 1)]:
        with pytest.raises(ValueError):
            pass_at_k(*bad)


def test_majority_vote_grades_the_most_frequent_answer():
    g = lambda ok: Grade(float(ok), ok)  # noqa: E731
    assert majority_passed(["41", " 41", "42"], [g(False), g(False), g(True)]) is False
    assert majority_passed(["42", "41", "42 "], [g(True), g(False), g(True)]) is True
    assert majority_passed(["7", "8"], [g(True), g(False)]) is True  # tie: the answer seen first
    # the grader's extracted answer is the vote, not the surrounding text
    ext = lambda ok, a: Grade(float(ok), ok, details={"extracted": a})  # noqa: E731
    texts = ["so it is 12", "answer: 12", "I think 13"]
    assert majority_passed(texts, [ext(True, "12"), ext(True, "12"), ext(False, "13")]) is True


def test_per_grader_rewards_split_by_grader_type_and_component():
    pool = GraderPool({"type": "arithmetic"})
    examples = [Example("a", "1+1=", {"answer": "2"}), Example("b", "x", {}, grader={"type": "regex", "pattern": "x"}),
                Example("c", "2+2=", {"answer": "4"})]
    grades = [Grade(1.0, True), Grade(0.5, False, details={"components": {"format": 1.0, "len": 0.0}}),
              Grade(0.0, False)]
    out = per_grader_rewards(pool, examples, grades)
    assert out == {"reward/arithmetic": 0.5, "reward/regex": 0.5, "reward/regex/format": 1.0, "reward/regex/len": 0.0}


# -- graders without a verdict (passed=None): full score passes, skipped rows never do ----------------
from rft.rollout.base import Completion, SamplingParams  # noqa: E402
from rft.training.evaluate import evaluate, sampled_pass_at_k  # noqa: E402

# OpenAI's python grader without pass_threshold: a score, no verdict
EXACT_PY = {"type": "python", "source": "def grade(sample, item):\n    return float(sample['output_text'] == item['answer'])"}


class ScriptedEngine:
    """Completion j of the prompt whose first token is p is ``answers[p][j]`` (greedy: j = 0)."""

    def __init__(self, answers):
        self.answers = answers

    def generate(self, prompts, n, params, generator=None, seeds=None):
        return [[Completion([], self.answers[p[0]][j], "stop") for j in range(n)] for p in prompts]


def _tokenizer(prompt):
    return {"input_ids": [int(prompt)]}


def _examples(answers):
    return [Example(str(i), str(i), {"answer": a}) for i, a in enumerate(answers)]


def test_greedy_pass_at_1_counts_full_scores_of_a_python_grader_without_pass_threshold():
    examples = _examples(["2", "4", "6", "8"])
    engine = ScriptedEngine({0: ["2"], 1: ["4"], 2: ["6"], 3: ["9"]})
    res = evaluate(engine, _tokenizer, GraderPool(EXACT_PY), examples, max_new_tokens=4)
    assert res.metrics["pass@1"] == 0.75 and res.metrics["mean_reward"] == 0.75
    assert res.metrics["skipped"] == 0.0  # no verdict is not a skipped row
    assert [r["passed"] for r in res.rows] == [True, True, True, False]  # the rows agree with pass@1


def test_skipped_counts_rows_the_grader_could_not_judge_and_they_never_pass():
    # the arithmetic grader skips a row without an answer (score 0, passed None, details["skipped"])
    examples = [Example("a", "0", {"answer": "2"}), Example("b", "1", {})]
    res = evaluate(ScriptedEngine({0: ["2"], 1: ["2"]}), _tokenizer, GraderPool({"type": "arithmetic"}), examples, 4)
    assert res.metrics["skipped"] == 1.0 and res.metrics["pass@1"] == 0.5


def test_sampled_pass_at_k_and_maj_count_full_scores_without_a_verdict():
    examples = _examples(["2", "4"])
    engine = ScriptedEngine({0: ["2", "3", "2", "5"], 1: ["1", "3", "1", "5"]})
    out = sampled_pass_at_k(engine, _tokenizer, GraderPool(EXACT_PY), examples, 4, SamplingParams(4), None)
    assert out["pass@1"] == pytest.approx(0.25)  # 2 of 8 samples
    assert out["pass@4"] == 0.5 and out["maj@4"] == 0.5  # example 0: "2" wins the vote and passes


def test_majority_vote_passes_a_full_score_without_a_verdict_and_never_a_skipped_one():
    assert majority_passed(["7", "7", "8"], [Grade(1.0), Grade(1.0), Grade(0.0)]) is True
    skipped = Grade(1.0, None, "", {"skipped": True})
    assert majority_passed(["7", "7", "8"], [skipped, skipped, Grade(1.0)]) is False


def test_wrong_answer_share_reads_a_zero_score_without_a_verdict_as_wrong():
    examples = [Example("a", "x", {"answer": "85", "sloppy": "75"}), Example("b", "y", {"answer": "46", "sloppy": "46"})]
    pool = GraderPool(EXACT_PY)
    assert wrong_answer_share(pool, ["75", "46"], examples, "sloppy") == 1.0  # only example a's sloppy value is wrong
    assert wrong_answer_share(pool, ["85", "46"], examples, "sloppy") == 0.0
