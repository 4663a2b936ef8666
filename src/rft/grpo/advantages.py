"""Group-relative advantages (Shao et al. 2024, DeepSeekMath, eq. 3; no critic).

For a group of G rewards r_1..r_G of the same prompt:

    A_i = r_i - mean(r)                      scale_rewards="none"   (Dr. GRPO, Liu et al. 2025)
    A_i = (r_i - mean(r)) / (std(r) + eps)   scale_rewards="group"  (DeepSeekMath)
    A_i = (r_i - mean(r)) / (std(R) + eps)   scale_rewards="batch"  (std over the whole batch R)

std is the unbiased sample standard deviation (as in TRL and verl); eps = 1e-4. A group whose
rewards are all equal gets exactly A = 0 for every member: it carries no learning signal, and its
share is logged as ``frac_zero_std_groups``. "Exactly" is enforced, not left to arithmetic: the
float32 mean of seven rewards of 0.99 is one ulp off 0.99, and group scaling divides that rounding
by std + eps into |A| ~ 1e-3, a gradient of pure noise that Adam scales to full-size steps.
"""

from __future__ import annotations

import torch

EPS = 1e-4


def group_advantages(rewards_B: torch.Tensor, group_size: int, scale_rewards: str = "group") -> torch.Tensor:
    """Advantages for rewards laid out group by group: ``rewards_B[g*G:(g+1)*G]`` is group g."""
    if rewards_B.numel() % group_size:
        raise ValueError(f"{rewards_B.numel()} rewards do not split into groups of {group_size}")
    r_NG = rewards_B.view(-1, group_size).float()
    flat_N1 = r_NG.amax(dim=1, keepdim=True) == r_NG.amin(dim=1, keepdim=True)
    centered_NG = torch.where(flat_N1, 0.0, r_NG - r_NG.mean(dim=1, keepdim=True))
    if scale_rewards == "none" or group_size == 1:
        return centered_NG.flatten()
    if scale_rewards == "group":
        std_N1 = r_NG.std(dim=1, keepdim=True)
        return (centered_NG / (std_N1 + EPS)).flatten()
    if scale_rewards == "batch":
        return (centered_NG / (r_NG.std() + EPS)).flatten()
    raise ValueError(f"scale_rewards must be 'group', 'batch' or 'none', got {scale_rewards!r}")


def zero_std_fraction(rewards_B: torch.Tensor, group_size: int) -> float:
    """Share of groups whose rewards are all equal (no signal)."""
    r_NG = rewards_B.view(-1, group_size)
    return float((r_NG.max(dim=1).values == r_NG.min(dim=1).values).float().mean())
