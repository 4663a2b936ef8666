"""rft: reinforcement fine-tuning of language models with verifiable rewards.

The Python API (:mod:`rft.api`)::

    import rft
    result = rft.train("config.yaml", ["grpo.steps=50"], grader=my_reward)

``import rft`` stays cheap: ``train``, ``evaluate``, ``grade``, ``build_config``, ``TrainResult`` and
``Grade`` are imported on first use, and torch with them. ``rft.evaluate`` and ``rft.grade`` are
also the names of submodules (held-out evaluation, the ``rft grade`` command); importing one sets
the package attribute of that name, so the package reads these names from the API on every access
(``from rft.evaluate import ...`` still reaches the module).
"""

from __future__ import annotations

import sys
import types
from typing import Any

__version__ = "0.1.0"
__all__ = ["train", "evaluate", "grade", "build_config", "TrainResult", "Grade", "__version__"]
_API = frozenset({"train", "evaluate", "grade", "build_config", "TrainResult"})


class _FrontDoor(types.ModuleType):
    def __getattribute__(self, name: str) -> Any:
        if name in _API:
            from rft import api

            return getattr(api, name)
        if name == "Grade":
            from rft.graders.base import Grade

            return Grade
        return super().__getattribute__(name)


sys.modules[__name__].__class__ = _FrontDoor
