"""Batched gradient-based counterfactual search: Generic (Wachter) and ECCCo.

The whole batch moves as one tensor. Each step is one forward and one backward pass
of the model with respect to the inputs; converged rows stop moving.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ct_plugin.constraints import SearchConstraints
from ct_plugin.errors import CTPluginError
from ct_plugin.generators.base import CounterfactualGenerator, SearchResult
from ct_plugin.torch_utils import frozen


def _check_positive(name: str, value: float, allow_zero: bool = True) -> float:
    value = float(value)
    if not (value >= 0 if allow_zero else value > 0) or value != value:
        bound = ">= 0" if allow_zero else "> 0"
        raise CTPluginError(f"{name} must be {bound}, got {value}")
    return value


def check_search_settings(tau: float, max_steps: int, epsilon: float) -> None:
    """Raise a clear error for impossible search settings."""
    if not 0.0 < tau <= 1.0:
        raise CTPluginError(f"tau (decision threshold) must lie in (0, 1], got {tau}")
    if int(max_steps) != max_steps or max_steps < 0:
        raise CTPluginError(f"max_steps must be a non-negative integer, got {max_steps}")
    _check_positive("epsilon", epsilon)


class GradientSearch(CounterfactualGenerator):
    """Gradient descent on x' minimising yloss + lambda_cost * ||x' - x||_1 + lambda_energy * E(x', y+) (+ ridge).

    With ``lambda_energy = 0`` this is the Generic (Wachter et al.) generator; with a positive
    energy weight it is ECCCo without the conformal penalty (METHOD.md section 2). The energy
    is E(x, y+) = -logit_{y+}(x). Steps are plain SGD with ``step_size``.
    """

    name = "generic"

    def __init__(
        self,
        step_size: float = 0.25,
        lambda_cost: float = 0.001,
        lambda_energy: float = 0.0,
        energy_reg: float = 0.1,
    ):
        self.step_size = _check_positive("step_size", step_size, allow_zero=False)
        self.lambda_cost = _check_positive("lambda_cost", lambda_cost)
        self.lambda_energy = _check_positive("lambda_energy", lambda_energy)
        self.energy_reg = _check_positive("energy_reg", energy_reg)

    def penalty(self, logits: torch.Tensor, targets: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Per-row generator penalty added to yloss and cost: lambda_energy * (E + energy_reg * E^2).

        The small ridge on the energy is the reference implementation's (CounterfactualExplanations.jl
        ``energy_constraint``, ``reg_strength=0.1``): without it, a model whose target logit keeps
        growing away from the data drags x' there instead of into the target class.
        """
        if self.lambda_energy == 0:
            return torch.zeros(len(x), device=x.device)
        energy = -logits.gather(1, targets[:, None]).squeeze(1)
        return self.lambda_energy * (energy + self.energy_reg * energy**2)

    def search(
        self,
        model: torch.nn.Module,
        factuals: torch.Tensor,
        targets: torch.Tensor,
        constraints: SearchConstraints,
        *,
        tau: float,
        max_steps: int,
        epsilon: float,
        rng: torch.Generator | None = None,
    ) -> SearchResult:
        check_search_settings(tau, max_steps, epsilon)
        factuals = factuals.detach()
        n = len(factuals)
        device = factuals.device
        has_groups = bool(constraints.onehot_groups)
        rows = torch.arange(n, device=device)

        cf = factuals.clone()
        adversarial = factuals.clone()
        steps = torch.zeros(n, dtype=torch.long, device=device)
        converged = torch.zeros(n, dtype=torch.bool, device=device)
        probability = torch.zeros(n, device=device)
        final = factuals.clone()

        with frozen(model):
            for step in range(max_steps + 1):
                active = ~converged
                x = cf.detach().requires_grad_(step < max_steps)
                logits = model(x)
                if has_groups:  # convergence is judged on the valid one-hot version
                    with torch.no_grad():
                        shown = constraints.project_onehot(x.detach())
                        p = torch.softmax(model(shown), dim=1)[rows, targets]
                else:
                    shown = x.detach()
                    p = torch.softmax(logits.detach(), dim=1)[rows, targets]
                # rows still moving take this iterate's figures
                probability = torch.where(active, p, probability)
                final = torch.where(active[:, None], shown, final)
                newly = active & (p >= tau)
                converged |= newly
                active = ~converged
                if step == max_steps or not bool(active.any()):
                    break
                loss = F.cross_entropy(logits, targets, reduction="none")
                loss = loss + self.lambda_cost * (x - factuals).abs().sum(dim=1)
                loss = loss + self.penalty(logits, targets, x)
                (grad,) = torch.autograd.grad(loss.sum(), x)
                move = constraints.mask_step(-self.step_size * grad) * active[:, None]
                cf = constraints.clamp(cf + move, factuals)
                steps += active.long()
                shown_next = constraints.project_onehot(cf) if has_groups else cf
                within = (shown_next - factuals).abs().amax(dim=1) <= epsilon
                adversarial = torch.where((active & within)[:, None], shown_next, adversarial)

        return SearchResult(
            counterfactuals=final.detach(),
            converged=converged,
            adversarial=adversarial.detach(),
            steps=steps,
            target_prob=probability.detach(),
        )


class GenericGenerator(GradientSearch):
    """Wachter et al. (2017): yloss + lambda_cost * L1 distance."""

    name = "generic"

    def __init__(self, step_size: float = 0.25, lambda_cost: float = 0.001):
        super().__init__(step_size=step_size, lambda_cost=lambda_cost, lambda_energy=0.0, energy_reg=0.0)


class ECCCoGenerator(GradientSearch):
    """ECCCo (Altmeyer et al. 2024) without the conformal penalty: adds lambda_energy * E(x', y+)."""

    name = "eccco"

    def __init__(
        self, step_size: float = 0.25, lambda_cost: float = 0.001, lambda_energy: float = 5.0, energy_reg: float = 0.1
    ):
        super().__init__(step_size, lambda_cost, lambda_energy, energy_reg)
