"""rft: reinforcement fine-tuning of language models with verifiable rewards.

The Python API (:mod:`rft.api`)::

    import rft
    result = rft.train("config.yaml", ["grpo.steps=50"], grader=my_reward)

``import rft`` stays cheap: ``train``, ``evaluate``, ``grade``, ``build_config``, ``TrainResult`` and
``Grade`` are imported on first use, and torch with them.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["train", "evaluate", "grade", "build_config", "TrainResult", "Grade", "__version__"]
_API = frozenset({"train", "evaluate", "grade", "build_config", "TrainResult"})


def __getattr__(name: str) -> Any:
    if name in _API:
        from rft import api

        return getattr(api, name)
    if name == "Grade":
        from rft.graders.base import Grade

        return Grade
    raise AttributeError(f"module 'rft' has no attribute {name!r}")
