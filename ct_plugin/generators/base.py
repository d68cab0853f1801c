"""The contract every counterfactual generator honours, and helpers for generators without a search path."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch

from ct_plugin.constraints import SearchConstraints
from ct_plugin.data.spec import DatasetSpec
from ct_plugin.torch_utils import frozen


@dataclass
class SearchResult:
    """Per-factual outcome of one batched counterfactual search (all tensors have n rows).

    Attributes:
        counterfactuals: final x' of every row; a *mature* counterfactual where ``converged``.
        converged: whether the target probability reached the threshold tau.
        adversarial: nascent counterfactual: the last iterate within the L-inf ball of
            radius epsilon around the factual (the factual itself if none).
        steps: number of search steps the row used.
        target_prob: softmax probability of the target class at ``counterfactuals``.
        repaired: rows whose returned counterfactual had to be projected onto the constraints
            (host libraries that ignore them); all False for native generators.
    """

    counterfactuals: torch.Tensor
    converged: torch.Tensor
    adversarial: torch.Tensor
    steps: torch.Tensor
    target_prob: torch.Tensor
    repaired: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.converged)

    def detach(self) -> SearchResult:
        """The same result with every tensor detached."""
        return SearchResult(
            self.counterfactuals.detach(),
            self.converged.detach(),
            self.adversarial.detach(),
            self.steps.detach(),
            self.target_prob.detach(),
            None if self.repaired is None else self.repaired.detach(),
        )


class CounterfactualGenerator(ABC):
    """Finds counterfactuals for a batch of factuals under a model, with constraints.

    A generator knows nothing about training: the trainer calls :meth:`fit` once with the
    dataset (for data-only preparation such as a VAE) and :meth:`search` whenever it needs
    counterfactuals of the current model.
    """

    #: name under which the generator is registered
    name: str = "generator"
    #: whether nascent adversarial examples come from the real search path
    provides_path: bool = True

    def fit(self, spec: DatasetSpec, device: torch.device | str = "cpu") -> None:  # noqa: B027
        """Prepare anything that depends on the data only (called once). Default: nothing."""

    @abstractmethod
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
        """Search counterfactuals of ``factuals`` (n, d) towards ``targets`` (n,) for ``model``.

        Must not change the model's parameters or leave gradients on them.
        """


def target_probability(model: torch.nn.Module, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Softmax probability of each row's target class (no gradient)."""
    with torch.no_grad():
        return torch.softmax(model(x), dim=1).gather(1, targets[:, None]).squeeze(1)


def nascent_by_fgsm(
    model: torch.nn.Module,
    factuals: torch.Tensor,
    targets: torch.Tensor,
    constraints: SearchConstraints,
    epsilon: float,
    steps: int = 3,
) -> torch.Tensor:
    """Nascent adversarial examples for generators that return no search path.

    Takes ``steps`` signed-gradient steps of size ``epsilon / steps`` towards the target
    class (iterative FGSM), masked by the mutability constraints (one-hot groups keep their
    level) and clamped to the domain, so every result is valid and lies within the L-inf ball
    of radius ``epsilon``.
    """
    x = factuals.detach().clone()
    if epsilon <= 0 or steps <= 0:
        return x
    # a one-hot group cannot move by a fraction and stay valid: categoricals keep their level
    categorical = torch.zeros(factuals.shape[1], dtype=torch.bool, device=factuals.device)
    for group in constraints.onehot_groups:
        categorical[group] = True
    with frozen(model):
        for _ in range(steps):
            x.requires_grad_(True)
            loss = torch.nn.functional.cross_entropy(model(x), targets, reduction="sum")
            (grad,) = torch.autograd.grad(loss, x)
            step = constraints.mask_step(-(epsilon / steps) * grad.sign()).masked_fill(categorical, 0.0)
            x = constraints.clamp(x.detach() + step, factuals)
            x = factuals + (x - factuals).clamp(-epsilon, epsilon)
    return x.detach()


def finish_external(
    model: torch.nn.Module,
    factuals: torch.Tensor,
    targets: torch.Tensor,
    candidates: torch.Tensor,
    found: torch.Tensor,
    constraints: SearchConstraints,
    *,
    tau: float,
    epsilon: float,
    steps: int | torch.Tensor = 0,
) -> SearchResult:
    """Turn counterfactuals from a host library (CARLA, DiCE) into a :class:`SearchResult`.

    Rows without a candidate keep the factual. Every candidate is projected onto the
    constraints (immutable columns reset, monotone directions enforced, bounds clamped,
    one-hot groups made valid); rows that needed it are flagged as ``repaired``. A row is
    converged when its projected counterfactual reaches ``tau``. Nascent adversarial
    examples come from :func:`nascent_by_fgsm`.
    """
    candidates = torch.where(found[:, None], candidates.to(factuals), factuals)
    projected = constraints.project_onehot(constraints.clamp(candidates, factuals))
    projected = torch.where(constraints.frozen_columns, factuals, projected)
    repaired = found & ((projected - candidates).abs().amax(dim=1) > 1e-5)
    probability = target_probability(model, projected, targets)
    converged = found & (probability >= tau)
    if not torch.is_tensor(steps):
        steps = torch.full((len(factuals),), int(steps), dtype=torch.long, device=factuals.device)
    return SearchResult(
        counterfactuals=projected,
        converged=converged,
        adversarial=nascent_by_fgsm(model, factuals, targets, constraints, epsilon),
        steps=steps,
        target_prob=probability,
        repaired=repaired,
    )
