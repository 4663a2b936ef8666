"""The ``environment:`` section of a run config: multi-turn episodes (rft.envs), validated at load."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from rft.config.base import Strict


class EnvironmentConfig(Strict):
    """Multi-turn episodes (rft.envs): the model takes turns, the environment answers each with an
    observation (in the context, masked out of the loss, the KL and the entropy) or ends the episode,
    and the episode's last answer is graded. ``single`` is one completion graded once."""

    type: Literal["single", "sql_retry", "code_retry", "trl"] = Field(
        "single", description="single: one turn; sql_retry: SQLite's error after a failing query; code_retry: the "
        "failing visible tests after a program; trl: a TRL environment_factory class (factory)"
    )
    max_turns: int | None = Field(
        None, ge=1, description="model turns per episode at most; default 1 for single, 3 for the others"
    )
    max_tokens: int | None = Field(
        None, ge=1, description="tokens after the prompt per episode (model turns and observations); default "
        "max_turns x sampling.max_new_tokens + (max_turns - 1) x max_observation_tokens; at least one turn "
        "(max_new_tokens), and with several turns room for a second (2 x max_new_tokens + 1)"
    )
    max_observation_tokens: int = Field(128, ge=1, description="an observation is cut to this many tokens, its "
                                        "wrapper (chat template or newlines and cue) included; the cut is in its text")
    timeout_s: float = Field(120.0, gt=0.0, description="wall clock of one episode; past it the episode ends")
    on_success: Literal["end", "show"] = Field(
        "end", description="sql_retry: a query that runs ends the episode (end), or its first rows are shown and "
        "the episode ends when the model repeats the query (show)"
    )
    feedback_rows: int = Field(3, ge=0, description="sql_retry, on_success show: rows shown")
    visible_tests: int | None = Field(
        None, ge=1, description="code_retry: tests the prompt shows (the first N of 'tests'), when the rows do not "
        "say it in a 'visible_tests' field; only these run between turns"
    )
    factory: str | None = Field(
        None, description="trl: the environment class, 'package.module:Class' or 'path/to/file.py:Class'"
    )
    network: Literal["allow", "deny"] = Field(
        "allow", description="trl: deny runs the class in processes with no network (refused where the machine "
        "cannot make a network namespace); allow: the caller's network"
    )
    tool_format: Literal["auto", "json", "text"] = Field(
        "auto", description="trl: how the model calls tools: <tool_call>{json}</tool_call> (json, chat models), "
        "'CALL name(arg=value)' lines (text, plain-text models), or by the prompt's kind (auto)"
    )

    @model_validator(mode="after")
    def _turns_fit_the_type(self) -> "EnvironmentConfig":
        if self.type == "single" and (self.max_turns or 1) != 1:
            raise ValueError("environment.type 'single' has one turn; pick a multi-turn type or drop max_turns")
        if (self.type == "trl") != (self.factory is not None):
            raise ValueError("environment.factory names the TRL environment class of type 'trl' (and only of it); "
                             "set both or neither")
        return self

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
        return self.max_turns or (1 if self.type == "single" else 3)
