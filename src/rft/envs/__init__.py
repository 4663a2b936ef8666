"""Environments: multi-turn episodes graded once (rft.envs.base has the contract)."""

from __future__ import annotations

from typing import Any, Callable

from rft.config import Config
from rft.envs.base import Environment, EpisodeLimits, SingleTurn


def episode_limits(cfg: Config) -> EpisodeLimits:
    e = cfg.environment
    most = e.turns * cfg.sampling.max_new_tokens + (e.turns - 1) * e.max_observation_tokens
    timeout = e.timeout_s if e.type != "single" else None  # one turn: nothing to bound but the sampler itself
    return EpisodeLimits(e.turns, e.max_tokens or most, timeout, e.max_observation_tokens)


def _single(e: Any, limits: EpisodeLimits, spec: dict[str, Any]) -> Environment:
    return SingleTurn(limits)


def _sql_retry(e: Any, limits: EpisodeLimits, spec: dict[str, Any]) -> Environment:
    from rft.envs.sql_retry import SqlRetry
    from rft.graders.registry import build

    return SqlRetry(limits, build(spec if spec.get("type") == "sql" else {"type": "sql"}),  # type: ignore[arg-type]
                    e.on_success, e.feedback_rows)


def _code_retry(e: Any, limits: EpisodeLimits, spec: dict[str, Any]) -> Environment:
    from rft.envs.code_retry import CodeRetry
    from rft.graders.registry import build

    return CodeRetry(limits, build(spec if spec.get("type") == "code" else {"type": "code"}),  # type: ignore[arg-type]
                     e.visible_tests)


def _trl(e: Any, limits: EpisodeLimits, spec: dict[str, Any]) -> Environment:
    from rft.envs.tools import TrlEnvironment

    return TrlEnvironment.load(e.factory, limits, e.tool_format, e.network)


# environment.type -> builder (its config model is rft.config.environments.ENVIRONMENT_KINDS[type]); the sql and
# code ones run queries and tests with the run's grader when it is of their type (its bounds, its sandbox), else
# with that grader's defaults.
ENVIRONMENTS: dict[str, Callable[[Any, EpisodeLimits, dict[str, Any]], Environment]] = {
    "single": _single, "sql_retry": _sql_retry, "code_retry": _code_retry, "trl": _trl}


def build_environment(cfg: Config, grader_spec: dict[str, Any] | None) -> Environment:
    """The run's environment, from ``cfg.environment`` by its type."""
    return ENVIRONMENTS[cfg.environment.type](cfg.environment, episode_limits(cfg), grader_spec or {})
