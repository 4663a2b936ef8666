"""Environments: multi-turn episodes graded once (rft.envs.base has the contract)."""

from __future__ import annotations

from typing import Any

from rft.config import Config
from rft.envs.base import Environment, EpisodeLimits, SingleTurn


def episode_limits(cfg: Config) -> EpisodeLimits:
    e = cfg.environment
    most = e.turns * cfg.sampling.max_new_tokens + (e.turns - 1) * e.max_observation_tokens
    timeout = e.timeout_s if e.type != "single" else None  # one turn: nothing to bound but the sampler itself
    return EpisodeLimits(e.turns, e.max_tokens or most, timeout, e.max_observation_tokens)


def build_environment(cfg: Config, grader_spec: dict[str, Any] | None) -> Environment:
    """The run's environment; the sql / code ones run queries and tests with the run's grader settings
    when the grader is of their type (its bounds, its sandbox), else with that grader's defaults."""
    e, limits = cfg.environment, episode_limits(cfg)
    if e.type == "single":
        return SingleTurn(limits)
    from rft.graders.registry import build

    spec = grader_spec if grader_spec is not None else {}
    if e.type == "sql_retry":
        from rft.envs.sql_retry import SqlRetry

        return SqlRetry(limits, build(spec if spec.get("type") == "sql" else {"type": "sql"}),  # type: ignore[arg-type]
                        e.on_success, e.feedback_rows)
    if e.type == "code_retry":
        from rft.envs.code_retry import CodeRetry

        return CodeRetry(limits, build(spec if spec.get("type") == "code" else {"type": "code"}),  # type: ignore[arg-type]
                         e.visible_tests)
    from rft.envs.tools import TrlEnvironment

    return TrlEnvironment.load(e.factory or "", limits, e.tool_format, e.network)
