"""The terms of the counterfactual-training objective (docs/method.md, "The loss").

    L = yloss(M(x), y) + lambda_div * div + lambda_adv * yloss(M(x_AE), y) + lambda_reg * ridge

with the energy E(x, y+) = -M(x)[y+]. Counterfactuals, adversarial examples and
target-class samples are constants here: gradients flow into the model only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ct_plugin.constraints import DECREASE, INCREASE, NONE


def yloss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of logits against integer labels."""
    return F.cross_entropy(logits, labels)


def energy(logits: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """E(x, y) = -logit_y(x), per row."""
    return -logits.gather(1, classes[:, None]).squeeze(1)


def protect_immutable(x_plus: torch.Tensor, counterfactuals: torch.Tensor, mutability: torch.Tensor) -> torch.Tensor:
    """Copy the counterfactual's value into x+ wherever the counterfactual could not move toward x+.

    For each feature d: (1) d immutable; (2) x+[d] > x'[d] but d may only decrease;
    (3) x+[d] < x'[d] but d may only increase. In those cases x+[d] := x'[d], so the
    divergence puts no pressure on features the user cannot change.
    """
    blocked = mutability == NONE
    blocked = blocked | ((mutability == DECREASE) & (x_plus > counterfactuals))
    blocked = blocked | ((mutability == INCREASE) & (x_plus < counterfactuals))
    return torch.where(blocked, counterfactuals, x_plus)


def contrastive_divergence(logits_plus: torch.Tensor, logits_cf: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean of E(x+, y+) - E(x', y+) over the counterfactuals (JEM-style contrastive divergence)."""
    return (energy(logits_plus, targets) - energy(logits_cf, targets)).mean()


def energy_ridge(logits_plus: torch.Tensor, logits_cf: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean of M(x+)[y+]^2 + M(x')[y+]^2: keeps the energies small."""
    return (energy(logits_plus, targets) ** 2 + energy(logits_cf, targets) ** 2).mean()


def adversarial_loss(logits_adv: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """yloss of nascent counterfactuals against the factuals' true labels."""
    return F.cross_entropy(logits_adv, labels)


def counterfactual_batch(
    counterfactuals: torch.Tensor, converged: torch.Tensor, x_plus: torch.Tensor, mutability: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The (x', x+) pairs that enter the divergence.

    Non-converged counterfactuals are replaced by their x+ (zero divergence: no penalty
    from unfinished searches); then x+ is protected against immutable features.
    """
    x_cf = torch.where(converged[:, None], counterfactuals, x_plus)
    return x_cf, protect_immutable(x_plus, x_cf, mutability)
