import math

import pytest
import torch

from rft.grpo.loss import AGGREGATIONS, LossNorm, k3_kl, per_token_loss

# Two sequences: the first has 2 completion tokens, the second 1 (its second column is padding).
LOGP = torch.tensor([[-1.0, -2.0], [-0.5, -9.0]])
MASK = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
ADV = torch.tensor([1.0, -3.0])
# With ratio 1 (old = logp), the per-token loss is -A: [[-1, -1], [3, 3]]


def _loss(variant: str, norm: LossNorm) -> float:
    loss_BT, _ = per_token_loss(LOGP, LOGP.detach(), ADV, 0.2, 0.2)
    return float(AGGREGATIONS[variant](loss_BT, MASK, norm))


@pytest.mark.parametrize(
    "variant, expected",
    [
        ("grpo", (-1.0 + 3.0) / 2),          # per-sequence means -1 and 3, averaged over 2 sequences
        ("bnpo", (-2.0 + 3.0) / 3 / 2),      # token mean of this micro-batch, / 2 micro-batches
        ("dr_grpo", (-2.0 + 3.0) / (2 * 4)),  # / (sequences * max_completion_length)
        ("dapo", (-2.0 + 3.0) / 5),          # / tokens of the whole step batch
    ],
)
def test_aggregation_variants_match_hand_computed_values(variant, expected):
    norm = LossNorm(num_sequences=2, num_tokens=5, num_micro_batches=2, max_completion_length=4)
    assert _loss(variant, norm) == pytest.approx(expected)


def test_aggregations_are_an_explicit_dict_of_the_four_variants():
    assert sorted(AGGREGATIONS) == ["bnpo", "dapo", "dr_grpo", "grpo"]


def test_gradient_of_unit_ratio_loss_is_minus_advantage_over_normaliser():
    logp = LOGP.clone().requires_grad_(True)
    loss_BT, _ = per_token_loss(logp, logp.detach(), ADV, 0.2, 0.2)
    AGGREGATIONS["dapo"](loss_BT, MASK, LossNorm(2, 3, 1, 4)).backward()
    assert logp.grad.flatten().tolist() == pytest.approx([-1 / 3, -1 / 3, 1.0, 0.0])


@pytest.mark.parametrize(
    "adv, eps_high, expected",
    [
        (1.0, 0.2, -1.2),    # positive advantage: ratio 1.5 clipped to 1.2
        (1.0, 0.28, -1.28),  # clip-higher widens the upper bound
        (-1.0, 0.2, 1.5),    # negative advantage: the unclipped (larger) loss is kept
    ],
)
def test_ratio_is_clipped_pessimistically(adv, eps_high, expected):
    logp = torch.tensor([[math.log(1.5)]])
    loss_BT, clipped = per_token_loss(logp, torch.zeros(1, 1), torch.tensor([adv]), 0.2, eps_high)
    assert float(loss_BT) == pytest.approx(expected, rel=1e-6)
    assert bool(clipped) == (adv > 0)


def test_k3_kl_matches_hand_computed_value_and_is_zero_at_equality():
    logp, ref = torch.tensor([math.log(0.5)]), torch.tensor([math.log(0.25)])
    # delta = ln 0.5; exp(delta) - delta - 1 = 0.5 + ln 2 - 1
    assert float(k3_kl(logp, ref)) == pytest.approx(0.5 + math.log(2) - 1)
    assert float(k3_kl(logp, logp)) == 0.0


def test_kl_penalty_adds_beta_times_k3():
    logp, ref = torch.tensor([[math.log(0.5)]]), torch.tensor([[math.log(0.25)]])
    base, _ = per_token_loss(logp, logp, torch.tensor([0.0]), 0.2, 0.2)
    with_kl, _ = per_token_loss(logp, logp, torch.tensor([0.0]), 0.2, 0.2, beta=0.1, ref_logp_BT=ref)
    assert float(with_kl - base) == pytest.approx(0.1 * (0.5 + math.log(2) - 1))


def test_beta_without_reference_logprobs_is_an_error():
    with pytest.raises(ValueError, match="reference"):
        per_token_loss(LOGP, LOGP, ADV, 0.2, 0.2, beta=0.1)
