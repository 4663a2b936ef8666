"""The parts of a model grader's spec (``score_model``, ``label_model``; :mod:`rft.config.graders` holds
those two): who answers (:class:`JudgeSpec`: a local model rft serves, or an OpenAI-compatible server
the user runs), OpenAI's ``sampling_params`` (:class:`JudgeSampling`) and one chat message of the
judge's ``input`` (:class:`JudgeMessage`, whose text is a template over ``item`` and ``sample``).
Validated like every grader spec: unknown fields are errors, types are strict, values never change.

Not covered: images and audio in a judge's messages (only text parts are read), and where the judge
runs -- :mod:`rft.graders.judge_servers` starts a local one, :mod:`rft.graders.judge_client` calls it.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, model_validator

from rft.config.grader_syntax import template_paths

Text = Annotated[str, Field(min_length=1)]
Seconds = Annotated[FiniteFloat, Field(ge=0.01, le=600)]


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _bad(field: str, value: Any, problem: str, fix: str) -> ValueError:
    return ValueError(f"field '{field}' = {value!r}: {problem}; {fix}")


class JudgeSpec(Spec):
    """who answers a model grader: a local model rft serves on the loopback, or an OpenAI-compatible server"""

    model: Text | None = Field(None, description="a local judge: any model.path rft loads (directory, preset, hub "
                               "id), served by rft on 127.0.0.1 while the grader pool runs")
    base_url: Text | None = Field(None, description="instead: an OpenAI-compatible server, e.g. "
                                  "http://127.0.0.1:8000/v1 (vLLM, llama.cpp, Ollama)")
    served_model: Text | None = Field(None, description="the model name sent to base_url; null: the grader's model")
    api_key_env: Text | None = Field(None, description="the environment variable holding base_url's API key")
    timeout_s: Seconds = Field(60.0, description="wall clock of one judgment, retries included")
    retries: int = Field(2, ge=0, le=10, description="retries after a connection error, 429 or 5xx (with backoff)")
    concurrency: int = Field(4, ge=1, le=256, description="requests in flight at once per grading process")
    max_tokens: int = Field(16, ge=1, le=4096, description="the judge's reply cap (sampling_params may lower it)")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="where a local judge runs")

    @model_validator(mode="after")
    def _one_judge(self) -> "JudgeSpec":
        if (self.model is None) == (self.base_url is None):
            raise ValueError("give exactly one of 'model' (a local judge rft serves) or 'base_url' (a server you run)")
        if self.base_url is not None and not re.fullmatch(r"https?://[^\s/]+(/\S*)?", self.base_url):
            raise _bad("base_url", self.base_url, "not an http(s) URL", "e.g. http://127.0.0.1:8000/v1")
        return self


class JudgeSampling(Spec):
    """OpenAI's sampling_params of a model grader (reasoning_effort is accepted and ignored)"""

    temperature: FiniteFloat = Field(0.0, ge=0.0, le=2.0, description="0: greedy")
    top_p: FiniteFloat = Field(1.0, gt=0.0, le=1.0, description="nucleus sampling mass")
    seed: int | None = Field(None, description="the judge's sampling seed")
    max_completions_tokens: int | None = Field(None, ge=1, description="the reply cap; judge.max_tokens bounds it")
    reasoning_effort: str | None = Field(None, description="OpenAI's o-series setting; ignored")


class JudgeMessage(Spec):
    """one chat message of a model grader's input; its text may hold {{ item.x }} / {{ sample.output_text }}"""

    role: Literal["system", "developer", "user", "assistant"]
    content: str | dict[str, Any] | list[dict[str, Any]] = Field(description="text, or input_text part(s)")
    type: Literal["message"] | None = None

    @property
    def text(self) -> str:
        parts = self.content if isinstance(self.content, list) else [self.content]
        return "".join(p if isinstance(p, str) else str(p.get("text", "")) for p in parts)

    @model_validator(mode="after")
    def _text_parts(self) -> "JudgeMessage":
        for part in self.content if isinstance(self.content, list) else [self.content]:
            if not isinstance(part, str) and not (part.get("type") in ("input_text", "output_text")
                                                  and isinstance(part.get("text"), str)):
                raise _bad("content", part, "only text parts are read", 'use {"type": "input_text", "text": "..."}')
        template_paths(self.text)
        return self

