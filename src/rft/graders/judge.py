"""OpenAI's model graders, on a judge the user owns: ``score_model`` (the judge replies a number) and
``label_model`` (the judge replies one of ``labels``).

Spec (OpenAI's, plus ``judge``, which says who answers)::

    {"type": "score_model", "model": "gpt-4o-2024-08-06", "range": [0, 1], "pass_threshold": 0.5,
     "input": [{"role": "system", "content": "Score the answer from 0 to 1. Reply with the number only."},
               {"role": "user", "content": "Reference: {{ item.answer }}\\nAnswer: {{ sample.output_text }}"}],
     "judge": {"model": "smollm2-135m-instruct"}}        # or {"base_url": "http://127.0.0.1:8000/v1"}

Each message's text is a template (:mod:`rft.graders.templates`) filled from the row and the
completion; the messages go to the judge through :class:`~rft.graders.judge_client.ChatClient`
(``judge.model``: the loopback server the grader pool started, :mod:`rft.graders.judge_servers`).

The reply is parsed strictly (:func:`parse_score`, :func:`parse_label`), never guessed from:

- score_model: the whole reply, stripped, is one number (``0.8``, ``7``, ``-1e-1``) or a JSON object
  with one number under ``score`` or ``result``; it must lie in ``range``. Score = that number (not
  rescaled, as OpenAI's); passed = score >= ``pass_threshold`` when set. OpenAI clips an
  out-of-range number into the range; rft scores it 0 (a judge out of range is not judging);
- label_model: the whole reply, stripped (and of one pair of quotes or a final '.'), equals one
  label ignoring case, or is JSON with it under ``label`` or ``result``. Score 1 and passed for a
  passing label, 0 and not passed for another;
- anything else -- prose around the number, two numbers, no reply, a server error, a timeout --
  scores 0 with the reason in ``details["error"]`` (``UnparseableReply``, ``ScoreOutOfRange``,
  ``UnknownLabel``, or the client's ``Judge*`` kinds).

``details["judge"]`` carries the judgment's cost -- ``prompt_tokens``, ``completion_tokens`` (the
server's ``usage``), ``seconds``, ``calls`` (0 when cached), ``failures`` -- which the pool's
statistics sum into ``grader/<type>/judge_*`` metrics. Identical judgments (the same rendered
messages and sampling) are answered once per process from a bounded cache of :data:`CACHE_SIZE`
(a group of G identical completions asks the judge once).

Not covered: OpenAI's structured-output enforcement (the reply is read, not constrained), images
in messages, and a judge's reasoning before its verdict (ask for the verdict alone, or use a
python grader that parses your judge's format).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from rft.config.base import SpecError
from rft.config.graders import LabelModelSpec, ScoreModelSpec
from rft.data import Example
from rft.graders.base import Grade
from rft.graders.judge_client import ChatClient, JudgeError, Reply
from rft.graders.templates import MissingField, Template

CACHE_SIZE = 4096
MAX_MESSAGE_CHARS = 200_000  # a rendered message past this is not sent: score 0 with the reason
_NUMBER = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")


def parse_score(reply: str, low: float, high: float) -> tuple[float | None, str]:
    """(score, "") when ``reply`` is one number in [low, high]; else (None, the error kind: problem)."""
    text = reply.strip()
    if text.startswith("{"):
        try:
            doc = json.loads(text)
        except ValueError:
            return None, f"UnparseableReply: not one number: {text[:80]!r}"
        values = [doc[k] for k in ("score", "result") if isinstance(doc, dict) and k in doc]
        if len(values) != 1 or isinstance(values[0], bool) or not isinstance(values[0], (int, float)):
            return None, f"UnparseableReply: JSON without one number under 'score' or 'result': {text[:80]!r}"
        value = float(values[0])
    elif _NUMBER.fullmatch(text):
        value = float(text)
    else:
        return None, f"UnparseableReply: not one number: {text[:80]!r}"
    if not math.isfinite(value) or not low <= value <= high:
        return None, f"ScoreOutOfRange: {value:g} is outside range [{low:g}, {high:g}]"
    return value, ""


def parse_label(reply: str, labels: list[str]) -> tuple[str | None, str]:
    """(the label, "") when ``reply`` is exactly one of ``labels`` (ignoring case); else (None, kind: problem)."""
    text = reply.strip()
    if text.startswith("{"):
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        values = [doc[k] for k in ("label", "result") if isinstance(doc, dict) and k in doc]
        text = values[0] if len(values) == 1 and isinstance(values[0], str) else text
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'`":
        text = text[1:-1].strip()
    text = text[:-1] if text.endswith(".") else text
    found = [label for label in labels if label.lower() == text.lower()]
    if len(found) != 1:
        return None, f"UnknownLabel: {reply.strip()[:80]!r} is not one of {labels}"
    return found[0], ""


@dataclass
class JudgeGrader:
    """A ``score_model`` or ``label_model`` grader (the module docstring has the rules)."""

    spec: ScoreModelSpec | LabelModelSpec
    templates: list[tuple[str, Template]]
    cache: OrderedDict[str, Reply] = field(default_factory=OrderedDict)

    @classmethod
    def from_spec(cls, spec: ScoreModelSpec | LabelModelSpec) -> "JudgeGrader":
        return cls(spec, [(m.role, Template.parse(m.text, spec.type, "input")) for m in spec.input])

    @property
    def timeout_s(self) -> float:
        return self.spec.judge.timeout_s  # type: ignore[union-attr]

    def client(self) -> ChatClient:
        """The client of this grader's judge: its ``base_url``; a local judge's is the loopback server's."""
        j = self.spec.judge
        assert j is not None  # the spec refuses a model grader without a judge
        if j.base_url is None:
            raise SpecError(f"{self.spec.type} grader: judge.model {j.model!r} is a local judge with no server "
                            "running; grade through rft's grader pool (rft train/grade/audit), which starts it")
        return ChatClient(j.base_url, j.served_model or self.spec.model, j.api_key_env, j.timeout_s, j.retries,
                          j.concurrency)

    def params(self) -> dict[str, Any]:
        s, cap = self.spec.sampling_params, self.spec.judge.max_tokens  # type: ignore[union-attr]
        out: dict[str, Any] = {"temperature": s.temperature, "top_p": s.top_p,
                               "max_tokens": min(cap, s.max_completions_tokens or cap)}
        if s.seed is not None:
            out["seed"] = s.seed
        return out

    def messages(self, completion: str, example: Example) -> list[dict[str, str]]:
        """The judge's messages for one completion; :class:`MissingField` when the row lacks a field."""
        return [{"role": role, "content": t.render(completion, example)} for role, t in self.templates]

    def ask(self, messages: list[dict[str, str]], use_cache: bool = True) -> tuple[Reply, bool]:
        """(the judge's reply, whether it came from the cache)."""
        params = self.params()
        key = hashlib.sha256(json.dumps([messages, params], sort_keys=True).encode()).hexdigest()
        if use_cache and key in self.cache:
            self.cache.move_to_end(key)
            return self.cache[key], True
        reply = self.client().chat(messages, params)
        self.cache[key] = reply
        if len(self.cache) > CACHE_SIZE:
            self.cache.popitem(last=False)
        return reply, False

    def __call__(self, completion: str, example: Example) -> Grade:
        try:
            messages = self.messages(completion, example)
        except MissingField as e:
            return Grade(0.0, None, f"cannot fill template: {e}", {"skipped": True})
        longest = max(len(m["content"]) for m in messages)
        if longest > MAX_MESSAGE_CHARS:
            return Grade(0.0, False, f"a judge message of {longest} characters (over {MAX_MESSAGE_CHARS}) was not sent",
                         {"error": "JudgeInputTooLong", "judge": _cost(None, False, failed=True)})
        try:
            reply, cached = self.ask(messages)
        except JudgeError as e:
            return Grade(0.0, False, f"judge failed: {e}"[:300], {"error": e.kind, "judge": _cost(None, False, True)})
        return self.verdict(reply, cached)

    def verdict(self, reply: Reply, cached: bool) -> Grade:
        spec = self.spec
        if isinstance(spec, ScoreModelSpec):
            score, problem = parse_score(reply.text, *spec.range)
            passed = None if score is None or spec.pass_threshold is None else score >= spec.pass_threshold
            reason = f"judge replied {score:g}" if score is not None else ""
        else:
            label, problem = parse_label(reply.text, spec.labels)
            score = None if label is None else float(label in spec.passing_labels)
            passed = None if label is None else label in spec.passing_labels
            reason = f"judge labelled {label!r}" if label is not None else ""
        details: dict[str, Any] = {"reply": reply.text[:200], "judge": _cost(reply, cached, score is None)}
        if score is None:
            kind, _, what = problem.partition(": ")
            return Grade(0.0, False, f"judge reply rejected: {what}"[:300], {**details, "error": kind})
        return Grade(score, passed, reason, details)


def _cost(reply: Reply | None, cached: bool, failed: bool) -> dict[str, float]:
    fresh = reply is not None and not cached
    return {"judgments": 1.0, "calls": float(fresh), "cached": float(cached), "failures": float(failed),
            "prompt_tokens": float(reply.prompt_tokens) if fresh else 0.0,  # type: ignore[union-attr]
            "completion_tokens": float(reply.completion_tokens) if fresh else 0.0,  # type: ignore[union-attr]
            "seconds": reply.seconds if fresh else 0.0}  # type: ignore[union-attr]
