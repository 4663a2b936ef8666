"""score_model and label_model: OpenAI's specs accepted as documented, strict reply parsing, and the
HTTP client against real loopback servers the tests start (a real socket, a real client): replies,
a server that sleeps past the timeout, a dropped connection, 5xx retried, 4xx not, the API key,
the concurrency limit, the cache, and the judge's cost in the grader metrics."""

from __future__ import annotations

import json
import socket
import threading

import pytest
from judge_stub import Stub

from rft.config.base import SpecError
from rft.config.graders import parse_spec
from rft.data import Example
from rft.graders.judge import parse_label, parse_score
from rft.graders.judge_client import ChatClient
from rft.graders.pool import GraderPool
from rft.graders.registry import build

# OpenAI's graders guide, verbatim (developers.openai.com/api/docs/guides/graders): the score model
# grader's example and the label model grader's.
SCORE_MODEL = {
    "type": "score_model",
    "name": "my_score_model",
    "input": [
        {"role": "system", "content": "You are an expert grader. If the reference and model answer are exact matches, "
         "output a score of 1. If they are somewhat similar in meaning, output a score in 0.5. Otherwise, give a score of 0."},
        {"role": "user", "content": "Reference: {{ item.reference_answer }}. Model answer: {{ sample.output_text }}"},
    ],
    "pass_threshold": 0.5,
    "model": "o4-mini-2025-04-16",
    "range": [0, 1],
    "sampling_params": {"max_completions_tokens": 32768, "top_p": 1, "reasoning_effort": "medium"},
}
LABEL_MODEL = {
    "name": "First label grader",
    "type": "label_model",
    "model": "gpt-4o-2024-08-06",
    "input": [
        {"type": "message", "role": "system", "content": {"type": "input_text", "text": "Classify the sentiment of the "
                                                           "following statement as one of positive, neutral, or negative"}},
        {"type": "message", "role": "user", "content": {"type": "input_text", "text": "Statement: {{item.response}}"}},
    ],
    "passing_labels": ["positive"],
    "labels": ["positive", "neutral", "negative"],
}
ROW = Example(id="r", prompt="q", fields={"reference_answer": "Paris", "response": "I love it"})


def judged(spec: dict, url: str, **judge) -> dict:
    return {**spec, "judge": {"base_url": url, **judge}}


@pytest.fixture
def stub():
    servers = []

    def make(*actions):
        servers.append(Stub(list(actions)))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


# -- specs ------------------------------------------------------------------------------------------
def test_openai_documented_examples_are_accepted_verbatim_once_a_judge_is_named():
    for spec in (SCORE_MODEL, LABEL_MODEL):
        with pytest.raises(SpecError, match=f"model '{spec['model']}' names no judge; .*judge: {{model: "):
            parse_spec(spec)
        parsed = parse_spec({**spec, "judge": {"model": "smollm2-135m-instruct"}})
        assert parsed.type == spec["type"] and parsed.judge.model == "smollm2-135m-instruct"


@pytest.mark.parametrize("change, message", [
    ({"range": [1, 0]}, "field 'range' = \\[1.0, 0.0\\]: lowest is not below highest"),
    ({"judge": {"model": "m", "base_url": "http://x"}}, "exactly one of 'model' .* or 'base_url'"),
    ({"judge": {"base_url": "ftp://x"}}, "not an http\\(s\\) URL"),
    ({"judge": {"base_url": "http://x", "timeout_s": 0}}, "field 'judge.timeout_s' = 0"),
    ({"input": [{"role": "user", "content": "{{ items.x }}"}]}, "unsupported placeholder"),
    ({"input": [{"role": "user", "content": {"type": "input_image", "image_url": "u"}}]}, "only text parts are read"),
])
def test_bad_score_model_specs_are_one_line_errors(change, message):
    with pytest.raises(SpecError, match=message):
        parse_spec({**SCORE_MODEL, "judge": {"model": "embedded"}, **change})


def test_passing_labels_must_be_labels():
    with pytest.raises(SpecError, match="passing_labels.*not a subset of labels"):
        parse_spec({**LABEL_MODEL, "passing_labels": ["great"], "judge": {"model": "embedded"}})


# -- strict parsing ---------------------------------------------------------------------------------
@pytest.mark.parametrize("reply, score", [
    ("0.5", 0.5), (" 1\n", 1.0), ("0", 0.0), ('{"score": 0.25}', 0.25), ('{"result": 1}', 1.0), (".5", 0.5),
])
def test_a_reply_that_is_one_number_in_range_is_the_score(reply, score):
    assert parse_score(reply, 0.0, 1.0) == (score, "")


@pytest.mark.parametrize("reply, kind", [
    ("Score: 0.8", "UnparseableReply"), ("0.5 or 1", "UnparseableReply"), ("", "UnparseableReply"),
    ("ten", "UnparseableReply"), ("10", "ScoreOutOfRange"), ("-0.1", "ScoreOutOfRange"), ("nan", "UnparseableReply"),
    ("1e999", "ScoreOutOfRange"), ('{"score": true}', "UnparseableReply"), ('{"score": 1, "result": 0}', "UnparseableReply"),
    ("As the grader I output 1", "UnparseableReply"), ("{not json", "UnparseableReply"),
])
def test_anything_else_is_no_score_never_a_guess(reply, kind):
    score, problem = parse_score(reply, 0.0, 1.0)
    assert score is None and problem.startswith(kind)


@pytest.mark.parametrize("reply, label", [
    ("positive", "positive"), (" Negative.\n", "negative"), ('"neutral"', "neutral"), ('{"label": "positive"}', "positive"),
    ("positive or negative", None), ("It is positive", None), ("", None), ("pos", None),
])
def test_a_label_reply_is_exactly_one_label(reply, label):
    assert parse_label(reply, ["positive", "neutral", "negative"])[0] == label


# -- the client on real sockets --------------------------------------------------------------------
def test_the_judge_scores_what_the_server_replies_and_sends_the_rendered_messages(stub):
    s = stub("1")
    grade = build(judged(SCORE_MODEL, s.url))("Paris", ROW)
    assert grade.score == 1.0 and grade.passed is True
    body = s.requests[0][0]
    assert body["model"] == "o4-mini-2025-04-16" and body["top_p"] == 1 and body["max_tokens"] == 16
    assert body["messages"][1] == {"role": "user", "content": "Reference: Paris. Model answer: Paris"}
    assert grade.details["judge"]["prompt_tokens"] == 11


def test_a_garbage_reply_scores_zero_with_the_reason(stub):
    grade = build(judged(SCORE_MODEL, stub("As the grader, I give 1").url))("x", ROW)
    assert (grade.score, grade.passed, grade.details["error"]) == (0.0, False, "UnparseableReply")
    assert "not one number" in grade.reason


def test_label_model_passes_only_passing_labels(stub):
    s = stub("positive", "negative", "maybe")
    g = build(judged(LABEL_MODEL, s.url))
    rows = [Example(id=str(i), prompt="q", fields={"response": f"statement {i}"}) for i in range(3)]  # 3 judgments
    assert [(x.score, x.passed) for x in (g("", r) for r in rows)] == [(1.0, True), (0.0, False), (0.0, False)]


def test_a_server_that_sleeps_past_the_timeout_scores_zero(stub):
    g = build(judged(SCORE_MODEL, stub(("sleep", 5)).url, timeout_s=0.3))
    grade = g("x", ROW)
    assert grade.details["error"] == "JudgeTimeout" and "0.3s" in grade.reason


def test_a_dropped_connection_is_retried(stub):
    s = stub("drop", "1")
    grade = build(judged(SCORE_MODEL, s.url))("x", ROW)
    assert grade.score == 1.0 and len(s.requests) == 2


def test_a_connection_dropped_every_time_scores_zero_after_the_retries(stub):
    s = stub("drop")
    grade = build(judged(SCORE_MODEL, s.url, retries=2))("x", ROW)
    assert grade.details["error"] == "JudgeUnreachable" and len(s.requests) == 3


def test_5xx_is_retried_and_4xx_is_not(stub):
    s = stub(("status", 503), "1")
    assert build(judged(SCORE_MODEL, s.url))("x", ROW).score == 1.0 and len(s.requests) == 2
    s = stub(("status", 400), "1")
    grade = build(judged(SCORE_MODEL, s.url))("x", ROW)
    assert grade.details["error"] == "JudgeHTTPError" and len(s.requests) == 1


def test_nothing_listening_is_unreachable():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    grade = build(judged(SCORE_MODEL, f"http://127.0.0.1:{port}/v1", retries=1))("x", ROW)
    assert grade.details["error"] == "JudgeUnreachable"


def test_the_api_key_comes_from_the_named_variable_and_never_into_the_reason(stub, monkeypatch):
    s = stub(("status", 401))
    g = build(judged(SCORE_MODEL, s.url, api_key_env="RFT_TEST_JUDGE_KEY"))
    assert g("x", ROW).details["error"] == "JudgeNoKey"
    monkeypatch.setenv("RFT_TEST_JUDGE_KEY", "sk-secret-123")
    grade = g("y", ROW)
    assert s.requests[0][1]["Authorization"] == "Bearer sk-secret-123"
    assert "sk-secret" not in grade.reason and "sk-secret" not in json.dumps(grade.details)


def test_requests_in_flight_stay_within_the_concurrency_limit(stub):
    s = stub(("sleep", 0.2))
    client = ChatClient(s.url, "m", concurrency=2, timeout_s=30)
    threads = [threading.Thread(target=client.chat, args=([{"role": "user", "content": str(i)}], {})) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(s.requests) == 6 and s.most <= 2


def test_identical_judgments_are_asked_once_and_counted_in_the_metrics(stub):
    s = stub("1", "0")
    with GraderPool(judged(SCORE_MODEL, s.url)) as pool:
        grades = pool.grade(["Paris", "Paris", "Lyon"], [ROW] * 3)
        metrics = pool.pop_stats().metrics()
    assert [g.score for g in grades] == [1.0, 1.0, 0.0] and len(s.requests) == 2
    assert metrics["grader/score_model/judge_calls"] == 2 and metrics["grader/score_model/judge_cached"] == 1
    assert metrics["grader/score_model/judge_prompt_tokens"] == 11
    assert metrics["grader/score_model/judge_failure_rate"] == 0.0


def test_a_judge_inside_a_multi_grader_is_counted_under_the_multi(stub):
    s = stub("garbage")
    spec = {"type": "multi", "graders": {"judge": judged(SCORE_MODEL, s.url),
                                         "exact": {"type": "string_check", "reference": "{{ item.reference_answer }}"}},
            "calculate_output": "0.5 * judge + 0.5 * exact"}
    with GraderPool(spec) as pool:
        (grade,) = pool.grade(["Paris"], [ROW])
        metrics = pool.pop_stats().metrics()
    assert grade.score == 0.5 and grade.details["component_errors"] == ["judge"]
    assert metrics["grader/multi/judge_failure_rate"] == 1.0


def test_an_unstarted_local_judge_outside_the_pool_is_an_error_grade_not_a_crash():
    g = build({**SCORE_MODEL, "judge": {"model": "embedded"}})
    from rft.graders.base import safe_grade

    grade = safe_grade(g, "x", ROW)
    assert grade.score == 0.0 and grade.details["error"] == "SpecError" and "grader pool" in grade.reason


def test_a_message_too_long_is_not_sent(stub):
    s = stub("1")
    grade = build(judged(SCORE_MODEL, s.url))("x" * 300_000, ROW)
    assert grade.details["error"] == "JudgeInputTooLong" and not s.requests


# -- rft doctor's judge check ----------------------------------------------------------------------
class _Pool:
    def resolve(self, spec):
        return spec


def test_the_doctor_flags_a_judge_that_answers_the_same_messages_differently(stub):
    from rft.graders.judge_doctor import judge_report

    rows = [Example(id=str(i), prompt="q", fields={"reference_answer": "x"}) for i in range(2)]
    flaky = stub("1", "0", "1", "0")
    ((verdict, summary, advice, values),) = judge_report(judged(SCORE_MODEL, flaky.url), _Pool(), rows, 16)
    assert verdict == "warn" and "not deterministic: 2 of 2" in summary and "temperature" in advice
    assert len(flaky.requests) == 4  # each completion judged twice, the cache bypassed
    steady = stub("1")
    ((verdict, summary, _, values),) = judge_report(judged(SCORE_MODEL, steady.url), _Pool(), rows, 16)
    assert verdict == "ok" and values["judge_s_per_step"] == pytest.approx(values["request_s"] * 16)


def test_the_doctor_has_no_judge_check_without_a_model_grader():
    from rft.graders.judge_doctor import judge_report

    assert judge_report({"type": "math"}, _Pool(), [ROW], 16) == []
