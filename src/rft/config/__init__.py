"""The configuration language: what a user writes, validated once at load.

- :mod:`rft.config.base`: :class:`Strict` (every section's base), :class:`ConfigError`, :class:`SpecError`;
- :mod:`rft.config.run`: the run config (``Config`` and its sections, ``load_config``, ``--set`` overrides);
- :mod:`rft.config.tasks`, :mod:`rft.config.environments`: the ``data.task:`` and ``environment:`` sections,
  one model per kind;
- :mod:`rft.config.graders`: grader specs, one model per type (with :mod:`rft.config.grader_syntax`, the
  formula, template and RE2 syntax they check, and :mod:`rft.config.grader_errors`, pydantic's verdict as
  one line);
- :mod:`rft.config.listing`: ``rft config --graders / --tasks / --environments``.

Importing it loads pydantic and yaml only.
"""

from rft.config.base import ConfigError, SpecError, Strict
from rft.config.environments import EnvironmentConfig, environment_config
from rft.config.run import (CheckpointConfig, Config, DataConfig, DistributedConfig, EvalConfig, GradingConfig,
                            GRPOConfig, LoRAConfig, ModelConfig, MonitorsConfig, SamplingConfig, SFTConfig,
                            apply_overrides, config_from_dict, load_config)
from rft.config.tasks import TaskConfig, task_config

__all__ = ["CheckpointConfig", "Config", "ConfigError", "DataConfig", "DistributedConfig", "EnvironmentConfig",
           "EvalConfig", "GradingConfig", "GRPOConfig", "LoRAConfig", "ModelConfig", "MonitorsConfig",
           "SamplingConfig", "SFTConfig", "SpecError", "Strict", "TaskConfig", "apply_overrides", "config_from_dict",
           "environment_config", "load_config", "task_config"]
