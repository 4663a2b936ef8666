"""The ``environment:`` section of a run config: multi-turn episodes (:mod:`rft.envs`), one model per type.

Each type's model holds the fields that apply to it, each declared once with its description; a field
of another type is refused, naming the types it belongs to. ``type`` picks the model and defaults to
``single``. ``rft config --environments`` lists every type's fields from these models; the builder of
each type is :data:`rft.envs.ENVIRONMENTS`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, TypeAdapter

from rft.config.base import Strict
from rft.config.kinds import kind_union


class _Environment(Strict):
    """What every environment bounds: the tokens after the prompt, an observation's length, the wall clock."""

    max_tokens: int | None = Field(
        None, ge=1, description="tokens after the prompt per episode (model turns and observations); default "
        "turns x sampling.max_new_tokens + (turns - 1) x max_observation_tokens; at least one turn "
        "(max_new_tokens), and with several turns room for a second (2 x max_new_tokens + 1)"
    )
    max_observation_tokens: int = Field(128, ge=1, description="an observation is cut to this many tokens, its "
                                        "wrapper (chat template or newlines and cue) included; the cut is in its text")
    timeout_s: float = Field(120.0, gt=0.0, description="wall clock of one episode; past it the episode ends")

    def check_room(self, max_new_tokens: int) -> None:
        """ValueError when ``max_tokens`` cannot hold what the episode needs: one turn of
        ``max_new_tokens`` (else the first turn alone can pass the bound), and with several turns a
        second one after an observation (else every episode silently ends after its first turn)."""
        if self.max_tokens is None:
            return
        n = max_new_tokens
        need, what = (n, f"one turn (sampling.max_new_tokens={n})") if self.turns == 1 else \
            (2 * n + 1, f"a second turn (2 x sampling.max_new_tokens={n} + an observation)")
        if self.max_tokens < need:
            raise ValueError(f"environment.max_tokens={self.max_tokens} leaves no room for {what}; raise it to at "
                             f"least {need}, lower sampling.max_new_tokens, or drop environment.max_tokens for the default")

    @property
    def turns(self) -> int:
        return 1


class SingleTurn(_Environment):
    """One completion graded once (the default)."""

    type: Literal["single"] = Field("single", description="the environment; see rft config --environments")


class _MultiTurn(_Environment):
    """The model takes turns, the environment answers each with an observation (in the context, masked out
    of the loss, the KL and the entropy) or ends the episode, and the episode's last answer is graded."""

    max_turns: int | None = Field(
        None, ge=1, description="model turns per episode at most; default 3"
    )

    @property
    def turns(self) -> int:
        return self.max_turns or 3


class SqlRetry(_MultiTurn):
    """A failing query is answered with SQLite's error; the model may fix it."""

    type: Literal["sql_retry"] = Field(description="the environment; see rft config --environments")
    on_success: Literal["end", "show"] = Field(
        "end", description="a query that runs ends the episode (end), or its first rows are shown and "
        "the episode ends when the model repeats the query (show)"
    )
    feedback_rows: int = Field(3, ge=0, description="on_success show: rows shown")


class CodeRetry(_MultiTurn):
    """A failing program is answered with the failing visible tests; the model may fix it."""

    type: Literal["code_retry"] = Field(description="the environment; see rft config --environments")
    visible_tests: int | None = Field(
        None, ge=1, description="tests the prompt shows (the first N of 'tests'), when the rows do not "
        "say it in a 'visible_tests' field; only these run between turns"
    )


class TrlEnvironment(_MultiTurn):
    """A TRL ``environment_factory`` class: its public methods are the model's tools."""

    type: Literal["trl"] = Field(description="the environment; see rft config --environments")
    factory: str = Field(
        description="the environment class, 'package.module:Class' or 'path/to/file.py:Class'"
    )
    network: Literal["allow", "deny"] = Field(
        "allow", description="deny runs the class in processes with no network (refused where the machine "
        "cannot make a network namespace); allow: the caller's network"
    )
    tool_format: Literal["auto", "json", "text"] = Field(
        "auto", description="how the model calls tools: <tool_call>{json}</tool_call> (json, chat models), "
        "'CALL name(arg=value)' lines (text, plain-text models), or by the prompt's kind (auto)"
    )


ENVIRONMENT_KINDS: dict[str, type[_Environment]] = {
    "single": SingleTurn, "sql_retry": SqlRetry, "code_retry": CodeRetry, "trl": TrlEnvironment}
EnvironmentConfig = kind_union(ENVIRONMENT_KINDS, "type", "single")
_ADAPTER: TypeAdapter[_Environment] = TypeAdapter(EnvironmentConfig)


def environment_config(**fields: object) -> _Environment:
    """An environment's config from its fields (``type`` defaults to single)."""
    return _ADAPTER.validate_python(fields)
