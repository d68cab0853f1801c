"""Adversarial robustness: FGSM and PGD attacks and the robust accuracy over an epsilon grid.

The definitions are stated in :mod:`ct_plugin.evaluation.metrics`; the registry items
``fgsm_accuracy`` / ``pgd_accuracy`` live in :mod:`ct_plugin.evaluation.metrics.items`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from ct_plugin.errors import CTPluginError
from ct_plugin.torch_utils import frozen, predict_classes


def fgsm(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, epsilon: float) -> torch.Tensor:
    """FGSM (Goodfellow et al. 2015): ``x + epsilon * sign(grad_x CE(M(x), y))``."""
    if epsilon < 0:
        raise CTPluginError(f"epsilon must be >= 0, got {epsilon}")
    if epsilon == 0:
        return x.detach().clone()
    with frozen(model):
        x_req = x.detach().clone().requires_grad_(True)
        loss = F.cross_entropy(model(x_req), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x_req)
    return (x.detach() + epsilon * grad.sign()).detach()


def pgd(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, epsilon: float, steps: int = 10,
    step_size: float | None = None, random_start: bool = False, seed: int = 0,
) -> torch.Tensor:
    """PGD (Madry et al. 2018) in the L-inf ball; step size ``epsilon / 4`` by default.

    ``random_start`` starts from a uniform draw in the ball (seeded by ``seed``), as the paper's
    evaluation does (40 steps of 0.01).
    """
    if epsilon < 0:
        raise CTPluginError(f"epsilon must be >= 0, got {epsilon}")
    if epsilon == 0 or steps <= 0:
        return x.detach().clone()
    alpha = epsilon / 4 if step_size is None else step_size
    x0 = x.detach()
    adv = x0.clone()
    if random_start:
        gen = torch.Generator().manual_seed(seed)
        adv = x0 + (torch.rand(x0.shape, generator=gen) * 2 - 1).to(x0) * epsilon
    with frozen(model):
        for _ in range(steps):
            adv.requires_grad_(True)
            loss = F.cross_entropy(model(adv), y, reduction="sum")
            (grad,) = torch.autograd.grad(loss, adv)
            adv = adv.detach() + alpha * grad.sign()
            adv = x0 + (adv - x0).clamp(-epsilon, epsilon)
    return adv.detach()


ATTACKS: dict[str, Callable[..., torch.Tensor]] = {"fgsm": fgsm, "pgd": pgd}


def robust_accuracy(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, epsilons: Sequence[float], attack: str = "fgsm",
    **options: object,
) -> list[float]:
    """Accuracy under ``attack`` ("fgsm" or "pgd") for every epsilon of the grid (``options`` go to the attack)."""
    if attack not in ATTACKS:
        raise CTPluginError(f"unknown attack {attack!r}; choose from {', '.join(ATTACKS)}")
    if len(x) != len(y) or len(x) == 0:
        raise CTPluginError(f"robust_accuracy needs matching, non-empty x and y; got {len(x)} and {len(y)} rows")
    out = []
    for eps in epsilons:
        adv = ATTACKS[attack](model, x, y, float(eps), **options)
        out.append(float((predict_classes(model, adv) == y).float().mean()))
    return out
