"""The control arm's rewards: what GRPO would do with a reward that carries no information.

A rising held-out curve does not prove that the grader taught it: GRPO with *random* rewards raised
Qwen2.5-Math's MATH-500 score by ~20 points (Shao et al. 2025, "Spurious Rewards: Rethinking Training
Signals in RLVR"), through clipping and format drift alone. A control run is the same config with the
link between each completion and its reward destroyed right before advantages are formed; the
difference between the real run's held-out gain and the control's is what the grader explains
(``rft.report.attribution``).

- ``shuffled``: the step's rewards permuted across the whole batch (every group, every rank's rows).
  The reward distribution is the real one, its mean and spread included; which completion earned
  which reward is gone.
- ``random``: pass/fail drawn independently for each completion at the step's own pass rate (the
  share of its grades that pass, ``rft.graders.base.passed_of``), scored 1.0 / 0.0.

The draw is seeded by (seed, step), so a control run is reproducible and resumes exactly; every rank
draws the same permutation from the same gathered batch. Not covered: the random arm uses the control
run's own pass rate at each step, not the real run's (both start from the same model, prompts and
samples, so they agree at step 1 and drift apart only as the arms do); metrics, monitors and dynamic
sampling read the grader's true rewards, so a control's logged reward shows whether it gained real
reward by accident.
"""

from __future__ import annotations

import torch

from rft.config import Config
from rft.graders.base import passed_of
from rft.grpo.groups import Group

CONTROLS = ("shuffled", "random")


def control_generator(seed: int, step: int) -> torch.Generator:
    """The control's random stream for one step: independent of training's sampling streams."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step * 7_919 + 17) % (2**63))


def control_rewards(rewards_B: torch.Tensor, passed_B: torch.Tensor, control: str,
                    gen: torch.Generator) -> torch.Tensor:
    """The rewards a control arm trains on, for one step's whole batch (B = groups x G, group-major).

    rewards_B: float, the grader's rewards; passed_B: bool, whether each grade passes."""
    if control == "shuffled":
        return rewards_B[torch.randperm(rewards_B.numel(), generator=gen)]
    if control == "random":
        rate = passed_B.float().mean() if passed_B.numel() else torch.tensor(0.0)
        return torch.bernoulli(rate.expand(rewards_B.shape).contiguous(), generator=gen).to(rewards_B.dtype)
    raise ValueError(f"unknown control {control!r}; choose one of {', '.join(CONTROLS)}")


def step_rewards(groups: list[Group], control: str, seed: int, step: int) -> torch.Tensor:
    """The step's reward tensor (B, group-major): the grader's scores, or with ``control`` set the
    control arm's."""
    rewards_B = torch.tensor([gr.score for grp in groups for gr in grp.grades], dtype=torch.float32)
    if control == "none":
        return rewards_B
    passed_B = torch.tensor([passed_of(gr) for grp in groups for gr in grp.grades], dtype=torch.bool)
    return control_rewards(rewards_B, passed_B, control, control_generator(seed, step))


def control_config(cfg: Config, control: str) -> Config:
    """The control arm of ``cfg``: the same config (seed, data order, steps, sampling, held-out set),
    rewards as ``control`` says, its run directory beside the real one: ``NAME-control-CONTROL``."""
    if control not in CONTROLS:
        raise ValueError(f"--control {control!r}: choose one of {', '.join(CONTROLS)}")
    return cfg.model_copy(update={"name": f"{cfg.name}-control-{control}",
                                  "grpo": cfg.grpo.model_copy(update={"control": control})})
