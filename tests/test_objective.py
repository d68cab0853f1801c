"""Loss terms against hand computations on a 2-feature linear model with fixed weights."""

from __future__ import annotations

import math

import torch

from ct_plugin.constraints import BOTH, DECREASE, INCREASE, NONE
from ct_plugin.training import objective
from tests.conftest import linear_model

# logits = W x + b with W = [[1, 0], [0, 2]], b = [0, 1]
MODEL = linear_model([[1.0, 0.0], [0.0, 2.0]], [0.0, 1.0])


def test_energy_is_negative_target_logit():
    logits = MODEL(torch.tensor([[1.0, 2.0]]))  # [1, 5]
    assert objective.energy(logits, torch.tensor([1])).item() == -5.0
    assert objective.energy(logits, torch.tensor([0])).item() == -1.0


def test_divergence_ridge_yloss_adversarial_by_hand():
    x_plus = torch.tensor([[1.0, 2.0], [0.0, 0.0]])  # logits [1, 5], [0, 1]
    x_cf = torch.tensor([[0.5, 1.0], [2.0, 0.0]])  # logits [0.5, 3], [2, 1]
    targets = torch.tensor([1, 0])
    lp, lc = MODEL(x_plus), MODEL(x_cf)
    # E(x+) = [-5, -0], E(x') = [-3, -2]; div = mean([-5 + 3, 0 + 2]) = 0
    assert objective.contrastive_divergence(lp, lc, targets).item() == 0.0
    # ridge = mean([25 + 9, 0 + 4]) = 19
    assert objective.energy_ridge(lp, lc, targets).item() == 19.0
    # yloss of x' = (0.5, 1) (logits [0.5, 3]) with label 1: log(1 + e^{-2.5})
    expected = math.log(1 + math.exp(-2.5))
    assert abs(objective.yloss(MODEL(x_cf[:1]), torch.tensor([1])).item() - expected) < 1e-6
    # adversarial loss uses the factual's true label: label 0 for logits [0.5, 3]
    expected_adv = math.log(1 + math.exp(2.5))
    assert abs(objective.adversarial_loss(MODEL(x_cf[:1]), torch.tensor([0])).item() - expected_adv) < 1e-5


def test_divergence_gradient_lowers_target_energy_of_real_samples():
    model = linear_model([[1.0, 0.0], [0.0, 2.0]], [0.0, 1.0])
    x_plus, x_cf, t = torch.tensor([[0.0, 1.0]]), torch.tensor([[0.0, 3.0]]), torch.tensor([1])
    objective.contrastive_divergence(model(x_plus), model(x_cf), t).backward()
    # d div / d W[1] = -x+ + x' = [0, 2]: descending it lowers logit_1 at x' relative to x+
    assert torch.equal(model.weight.grad[1], torch.tensor([0.0, 2.0]))
    assert torch.equal(model.weight.grad[0], torch.zeros(2))


def test_protection_rules_per_feature():
    mutability = torch.tensor([NONE, DECREASE, INCREASE, BOTH, DECREASE, INCREASE])
    x_cf = torch.tensor([[0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    x_plus = torch.tensor([[5.0, 1.0, -1.0, 7.0, -2.0, 3.0]])
    protected = objective.protect_immutable(x_plus, x_cf, mutability)
    # (1) immutable -> x'; (2) x+ > x' but decrease-only -> x'; (3) x+ < x' but increase-only -> x';
    # allowed directions and free features keep x+
    assert protected.tolist() == [[0.0, 0.0, 0.0, 7.0, -2.0, 3.0]]


def test_protection_is_noop_when_everything_is_mutable():
    x_plus, x_cf = torch.randn(4, 3), torch.randn(4, 3)
    same = objective.protect_immutable(x_plus, x_cf, torch.full((3,), BOTH))
    assert torch.equal(same, x_plus)


def test_non_converged_counterfactuals_are_replaced_by_their_neighbour():
    x_cf = torch.tensor([[1.0, 1.0], [2.0, 2.0]])
    x_plus = torch.tensor([[0.0, 5.0], [3.0, 3.0]])
    cf, plus = objective.counterfactual_batch(x_cf, torch.tensor([True, False]), x_plus, torch.tensor([NONE, BOTH]))
    assert cf.tolist() == [[1.0, 1.0], [3.0, 3.0]]
    assert plus.tolist() == [[1.0, 5.0], [3.0, 3.0]]  # row 0: x1 immutable -> copied from x'
    logits_plus, logits_cf = MODEL(plus), MODEL(cf)
    per_row = objective.energy(logits_plus, torch.tensor([1, 1])) - objective.energy(logits_cf, torch.tensor([1, 1]))
    assert per_row[1].item() == 0.0  # no penalty from an unfinished search
