import math

import pytest
import torch

from rft.grpo.advantages import EPS, group_advantages, zero_std_fraction

REWARDS = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0])


def test_group_scaling_matches_hand_computed_values():
    # group 1: mean 0.25, centered [.75, -.25, -.25, -.25], unbiased std sqrt(0.75/3) = 0.5
    # group 2: all equal -> 0
    expected = [0.75 / (0.5 + EPS)] + [-0.25 / (0.5 + EPS)] * 3 + [0.0] * 4
    assert group_advantages(REWARDS, 4, "group").tolist() == pytest.approx(expected, abs=1e-6)


def test_no_scaling_is_reward_minus_group_mean():
    expected = [0.75, -0.25, -0.25, -0.25, 0.0, 0.0, 0.0, 0.0]
    assert group_advantages(REWARDS, 4, "none").tolist() == pytest.approx(expected, abs=1e-7)


def test_batch_scaling_divides_by_the_std_of_the_whole_batch():
    # batch mean 0.625; squared deviations 5 * 0.140625 + 3 * 0.390625 = 1.875; / 7 -> std 0.5175492
    std = math.sqrt(1.875 / 7)
    expected = [0.75 / (std + EPS)] + [-0.25 / (std + EPS)] * 3 + [0.0] * 4
    assert group_advantages(REWARDS, 4, "batch").tolist() == pytest.approx(expected, abs=1e-6)


def test_advantages_sum_to_zero_within_each_group():
    r = torch.rand(6 * 8)
    adv = group_advantages(r, 8, "none").view(6, 8)
    assert adv.sum(dim=1).abs().max() < 1e-6


def test_zero_std_fraction_counts_groups_with_equal_rewards():
    assert zero_std_fraction(REWARDS, 4) == 0.5
    assert zero_std_fraction(torch.tensor([0.0, 0.0, 0.5, 0.5]), 2) == 1.0


def test_rewards_that_do_not_split_into_groups_are_rejected():
    with pytest.raises(ValueError, match="groups of 4"):
        group_advantages(torch.zeros(6), 4)


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_groups_of_equal_rewards_get_exactly_zero_advantage_for_every_group_size(scale):
    # float32 means of equal values are not always exact (7 x 0.99 is 1 ulp off); the rule must not
    # depend on that rounding, or a step without signal moves the weights
    for G in range(2, 17):
        for value in [0.99, 0.1, 0.3, 0.7, 1 / 3, 0.9, -0.25]:
            one_right = torch.zeros(G).index_fill_(0, torch.tensor([0]), 1.0)
            rewards = torch.cat([torch.full((G,), value), one_right])
            adv = group_advantages(rewards, G, scale)
            assert torch.equal(adv[:G], torch.zeros(G)), (G, value)
            assert adv[G:].abs().min() > 0  # the group with signal keeps it
