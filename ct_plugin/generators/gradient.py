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


def clip_rows(grad: torch.Tensor, max_norm: float) -> torch.Tensor:
    """Scale each row of ``grad`` so that its L-inf norm is at most ``max_norm``."""
    norm = grad.abs().amax(dim=1, keepdim=True)
    return grad * (max_norm / norm.clamp_min(max_norm))


class GradientSearch(CounterfactualGenerator):
    """Gradient descent on x' minimising yloss + lambda_cost * ||x' - x||_1 + lambda_energy * E(x', y+) (+ ridge).

    With ``lambda_energy = 0`` this is the Generic (Wachter et al.) generator; with a positive
    energy weight it is ECCCo without the conformal penalty (docs/method.md, "The search inside training"). The energy
    is E(x, y+) = -logit_{y+}(x). Steps are plain SGD with ``step_size`` (the reference's).

    ``clip_grad`` (default ``None``: off) clips each row's gradient to that L-inf norm first, so no
    feature moves more than ``step_size * clip_grad`` standard deviations in one step. Without it, one
    step on the gradient of a confident model (large logits, ``lambda_energy`` 5) can overshoot the
    decision boundary by several standard deviations and land on the domain bounds. The default stays
    the reference's plain SGD; see docs/results.md for what the clip changes.
    """

    name = "generic"

    def __init__(
        self,
        step_size: float = 0.25,
        lambda_cost: float = 0.001,
        lambda_energy: float = 0.0,
        energy_reg: float = 0.1,
        clip_grad: float | None = None,
    ):
        self.step_size = _check_positive("step_size", step_size, allow_zero=False)
        self.clip_grad = None if clip_grad is None else _check_positive("clip_grad", clip_grad, allow_zero=False)
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
        # per-search constants: the clamp box of every row and the allowed step directions
        low, high = constraints.bounds(factuals)
        up, down = constraints.directions()

        cf = factuals.clone()
        adversarial = factuals.clone()
        steps = torch.zeros(n, dtype=torch.long, device=device)
        converged = torch.zeros(n, dtype=torch.bool, device=device)
        probability = torch.zeros(n, device=device)
        final = factuals.clone()
        # only the rows still moving are computed: `rows` indexes them, `x_rows` are their iterates
        # and `shown` their valid one-hot versions (on which convergence is judged)
        rows = torch.arange(n, device=device)
        x_rows = factuals
        shown = constraints.project_onehot(x_rows) if has_groups else x_rows

        with frozen(model):
            for step in range(max_steps + 1):
                row_targets = targets[rows]
                x = x_rows.detach().requires_grad_(step < max_steps)
                logits = model(x)
                with torch.no_grad():
                    judged = model(shown) if has_groups else logits.detach()
                    p = torch.softmax(judged, dim=1).gather(1, row_targets[:, None]).squeeze(1)
                probability[rows] = p
                final[rows] = shown
                done = p >= tau
                converged[rows] = done
                moving = ~done
                if step == max_steps or not bool(moving.any()):
                    break
                loss = F.cross_entropy(logits, row_targets, reduction="none")
                loss = loss + self.lambda_cost * (x - factuals[rows]).abs().sum(dim=1)
                loss = loss + self.penalty(logits, row_targets, x)
                (grad,) = torch.autograd.grad((loss * moving).sum(), x)
                rows = rows[moving]
                grad = grad[moving]
                if self.clip_grad is not None:
                    grad = clip_rows(grad, self.clip_grad)
                move = -self.step_size * grad
                move = torch.where(torch.where(move > 0, up, down), move, 0.0)  # = constraints.mask_step
                x_rows = torch.maximum(torch.minimum(x.detach()[moving] + move, high[rows]), low[rows])  # = clamp
                cf[rows] = x_rows
                steps[rows] += 1
                shown = constraints.project_onehot(x_rows) if has_groups else x_rows
                within = (shown - factuals[rows]).abs().amax(dim=1) <= epsilon
                adversarial[rows[within]] = shown[within]

        return SearchResult(
            counterfactuals=final,
            converged=converged,
            adversarial=adversarial,
            steps=steps,
            target_prob=probability,
        )


class GenericGenerator(GradientSearch):
    """Wachter et al. (2017): yloss + lambda_cost * L1 distance."""

    name = "generic"

    def __init__(self, step_size: float = 0.25, lambda_cost: float = 0.001, clip_grad: float | None = None):
        super().__init__(step_size, lambda_cost, lambda_energy=0.0, energy_reg=0.0, clip_grad=clip_grad)


class ECCCoGenerator(GradientSearch):
    """ECCCo (Altmeyer et al. 2024) without the conformal penalty: adds lambda_energy * E(x', y+)."""

    name = "eccco"

    def __init__(
        self,
        step_size: float = 0.25,
        lambda_cost: float = 0.001,
        lambda_energy: float = 5.0,
        energy_reg: float = 0.1,
        clip_grad: float | None = None,
    ):
        super().__init__(step_size, lambda_cost, lambda_energy, energy_reg, clip_grad)
