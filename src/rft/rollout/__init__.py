"""Rollout: sampling engines behind one interface (:class:`rft.rollout.base.RolloutEngine`)."""

from rft.rollout.base import Completion, RolloutEngine, SamplingParams
from rft.rollout.sampler import TorchSampler

__all__ = ["Completion", "RolloutEngine", "SamplingParams", "TorchSampler"]
