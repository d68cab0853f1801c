"""The counterfactual-training objective as registered loss terms (docs/method.md, "The loss").

    L = lambda_yloss * yloss(M(x), y) + lambda_div * div + lambda_reg * ridge + lambda_adv * yloss(M(x_AE), y)

with the energy E(x, y+) = -M(x)[y+]. Each term is a :class:`~ct_plugin.plugins.registry.LossTerm`:
a name, a default weight (``lambda_<name>``), a docstring and one batched function over a
:class:`BatchContext`. The four functions here are registered by the built-in plugin
(:mod:`ct_plugin.builtin`) exactly as a third party registers its own terms
(``ct_plugin_loss_terms``); the training loop calls :func:`batch_losses` for a batch's active terms.
Counterfactuals, adversarial examples and target-class samples are constants here: gradients flow
into the model only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ct_plugin.config import TrainConfig
from ct_plugin.constraints import DECREASE, INCREASE, NONE, SearchConstraints
from ct_plugin.errors import CTPluginError
from ct_plugin.plugins.registry import LossTerm


# ------------------------------------------------------------------ the math
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


# ------------------------------------------------------------ what a term sees
@dataclass
class CounterfactualBatch:
    """The counterfactuals of one optimiser step, row-aligned.

    Attributes:
        factuals: the searched training rows (x).
        x_cf: their counterfactuals (x'; an unfinished search's row holds its x+).
        x_plus: an observed training sample of each target class, protected against immutable features.
        x_adv: the nascent counterfactuals (the search's last iterate within epsilon of x).
        targets: the target classes (y+).
        labels: the factuals' true labels.
        adversarial_mask: the rows whose nascent example counts as adversarial (None: every row);
            a strategy's ``after_search`` may set it (e.g. only examples that flip the label).
    """

    factuals: torch.Tensor
    x_cf: torch.Tensor
    x_plus: torch.Tensor
    x_adv: torch.Tensor
    targets: torch.Tensor
    labels: torch.Tensor
    adversarial_mask: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.targets)

    def split(self, sizes: Sequence[int]) -> list[CounterfactualBatch]:
        """Consecutive pieces of ``sizes`` rows each (one per mini-batch of an epoch)."""
        names = ("factuals", "x_cf", "x_plus", "x_adv", "targets", "labels")
        parts = [torch.split(getattr(self, name), list(sizes)) for name in names]
        masks = torch.split(self.adversarial_mask, list(sizes)) if self.adversarial_mask is not None else None
        return [CounterfactualBatch(*(p[i] for p in parts), adversarial_mask=None if masks is None else masks[i])
                for i in range(len(sizes))]


def joined_batch(X: torch.Tensor, index: torch.Tensor, counterfactuals: CounterfactualBatch | None) -> torch.Tensor:
    """The rows ``X[index]`` followed by the counterfactuals' x+, x' and x_AE, gathered into one tensor.

    A batch's one forward pass runs on it. Gathering the rows straight into it saves the copy and the
    fresh allocation that ``torch.cat([X[index], ...])`` costs on top of ``X[index]`` (on 784 pixels,
    0.3-0.5 ms a batch); the batch's own rows are its first ``len(index)`` rows.
    """
    if counterfactuals is None or not len(counterfactuals):
        return X[index]
    n, m = len(index), len(counterfactuals)
    joined = X.new_empty((n + 3 * m, *X.shape[1:]))
    torch.index_select(X, 0, index, out=joined[:n])
    for k, part in enumerate((counterfactuals.x_plus, counterfactuals.x_cf, counterfactuals.x_adv)):
        joined[n + k * m: n + (k + 1) * m].copy_(part)
    return joined


class BatchContext:
    """What a loss term may use for one batch: the rows, the model's logits, the counterfactuals.

    The model runs once for the batch and the three counterfactual sets together
    (``logits_x``, ``logits_plus``, ``logits_cf``, ``logits_adv``), on first use; terms share
    those logits and the energies of x+ and x' (:meth:`energies`), so a batch costs one forward
    pass whatever the number of terms. ``counterfactuals`` is None when the batch has none (a
    vanilla epoch, burn-in, or a batch without counterfactuals); terms that need them are then
    not computed.

    Attributes:
        model: the classifier being trained (in train mode; gradients flow into its parameters).
        x, y: the batch's rows and labels.
        counterfactuals: the batch's :class:`CounterfactualBatch`, or None.
        constraints: the dataset's mutability, bounds and one-hot groups (a :class:`SearchConstraints`).
        config: the run's :class:`~ct_plugin.config.TrainConfig`.
        epoch: the 0-based epoch.
        desired: the index of the dataset's favourable class (``spec.desired``), None where it has none.
        strategy: the run's training strategy (its auxiliary networks, e.g. CounterNet's generator), or None.
        joined: ``x`` followed by the counterfactuals' x+, x' and x_AE in one tensor (:func:`joined_batch`),
            or None (then they are concatenated on first use).
    """

    def __init__(
        self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
        counterfactuals: CounterfactualBatch | None, constraints: SearchConstraints, config: TrainConfig, epoch: int,
        desired: int | None = None, strategy: Any = None, joined: torch.Tensor | None = None,
    ):
        self.model, self.x, self.y, self.strategy = model, x, y, strategy
        self.joined = joined
        self.counterfactuals = counterfactuals if counterfactuals is not None and len(counterfactuals) else None
        self.constraints, self.config, self.epoch, self.desired = constraints, config, epoch, desired
        self._logits: tuple[torch.Tensor, ...] | None = None
        self._energies: tuple[torch.Tensor, torch.Tensor] | None = None
        self.cache: dict[str, Any] = {}
        """Room for plugin terms to share what they compute within the batch."""

    def _forward(self) -> tuple[torch.Tensor, ...]:
        if self._logits is None:
            cf = self.counterfactuals
            if cf is None:
                self._logits = (self.model(self.x),)
            else:  # one forward pass for the batch and the three counterfactual sets
                m = len(cf)
                joined = self.joined if self.joined is not None else torch.cat([self.x, cf.x_plus, cf.x_cf, cf.x_adv])
                logits = self.model(joined)
                self._logits = tuple(torch.split(logits, [len(self.x), m, m, m]))
        return self._logits

    @property
    def logits_x(self) -> torch.Tensor:
        """Logits of the batch's rows."""
        return self._forward()[0]

    def _counterfactual_logits(self, index: int) -> torch.Tensor:
        if self.counterfactuals is None:
            raise RuntimeError("this batch has no counterfactuals (the term should declare uses_counterfactuals)")
        return self._forward()[index]

    @property
    def logits_plus(self) -> torch.Tensor:
        """Logits of x+ (the observed target-class samples)."""
        return self._counterfactual_logits(1)

    @property
    def logits_cf(self) -> torch.Tensor:
        """Logits of x' (the counterfactuals)."""
        return self._counterfactual_logits(2)

    @property
    def logits_adv(self) -> torch.Tensor:
        """Logits of x_AE (the nascent counterfactuals)."""
        return self._counterfactual_logits(3)

    def energies(self) -> tuple[torch.Tensor, torch.Tensor]:
        """E(x+, y+) and E(x', y+), computed once per batch for every term that needs them."""
        if self._energies is None:
            assert self.counterfactuals is not None
            targets = self.counterfactuals.targets
            self._energies = (energy(self.logits_plus, targets), energy(self.logits_cf, targets))
        return self._energies


# ----------------------------------------------------------------- the terms
def yloss_term(ctx: BatchContext) -> torch.Tensor:
    """Cross-entropy of the batch's logits against its labels."""
    return yloss(ctx.logits_x, ctx.y)


def divergence_term(ctx: BatchContext) -> torch.Tensor:
    """Contrastive divergence: the mean of E(x+, y+) - E(x', y+)."""
    e_plus, e_cf = ctx.energies()
    return (e_plus - e_cf).mean()


def ridge_term(ctx: BatchContext) -> torch.Tensor:
    """Energy ridge: the mean of E(x+, y+)^2 + E(x', y+)^2 (keeps the energies bounded)."""
    e_plus, e_cf = ctx.energies()
    return (e_plus**2 + e_cf**2).mean()


def adversarial_term(ctx: BatchContext) -> torch.Tensor:
    """Cross-entropy of the nascent counterfactuals against the factuals' true labels.

    With an ``adversarial_mask``, only the masked rows count (zero when none does).
    """
    cf = ctx.counterfactuals
    assert cf is not None
    if cf.adversarial_mask is None:
        return adversarial_loss(ctx.logits_adv, cf.labels)
    per_row = F.cross_entropy(ctx.logits_adv, cf.labels, reduction="none")
    mask = cf.adversarial_mask.to(per_row.dtype)
    return (per_row * mask).sum() / mask.sum().clamp_min(1.0)


def augmentation_term(ctx: BatchContext) -> torch.Tensor:
    """Counterfactual augmentation (CAT, Luu & Inoue 2023): cross-entropy of M(x') against the target class y+.

    The counterfactuals join the training data labelled with the class they were searched for, so
    the model learns that its own counterfactuals belong there. A search that did not finish
    contributes its x+ (an observed row of the target class) instead, as in the divergence.
    """
    cf = ctx.counterfactuals
    assert cf is not None
    return F.cross_entropy(ctx.logits_cf, cf.targets)


def batch_losses(terms: Sequence[LossTerm], context: BatchContext) -> dict[str, torch.Tensor]:
    """The value of each term on the batch, in the order given (terms needing counterfactuals skipped without)."""
    return {term.name: term.compute(context) for term in terms
            if context.counterfactuals is not None or not term.uses_counterfactuals}


def weighted_total(losses: dict[str, torch.Tensor], weight_of: Callable[[str], float]) -> torch.Tensor:
    """The objective: the weighted sum of the terms (summed in the order of ``losses``)."""
    return sum(weight_of(name) * value for name, value in losses.items())  # type: ignore[return-value]


def gradient_supervision_term(ctx: BatchContext) -> torch.Tensor:
    """Gradient supervision (Teney et al. 2020): the mean of ``1 - cos(grad_x M(x)[y+], x' - x)``.

    The model's input gradient of the target class's logit at each factual x is aligned with the
    vector from x to its counterfactual x' (to its x+ where the search did not finish), so that the
    direction in which the model's score for y+ rises is the direction a counterfactual moves. Rows
    whose x' equals x carry no direction and are left out. Needs a second-order backward pass
    (``create_graph``): about one more forward and two more backward passes of the factual batch.
    """
    cf = ctx.counterfactuals
    assert cf is not None
    x = cf.factuals.detach().requires_grad_(True)
    with torch.enable_grad():
        score = ctx.model(x).gather(1, cf.targets[:, None]).sum()
        (gradient,) = torch.autograd.grad(score, x, create_graph=True)
    direction = (cf.x_cf - cf.factuals).detach()
    moved = (direction.abs().sum(dim=1) > 0).to(gradient.dtype)
    cosine = F.cosine_similarity(gradient, direction, dim=1, eps=1e-12)
    return ((1.0 - cosine) * moved).sum() / moved.sum().clamp_min(1.0)


def recourse_term(ctx: BatchContext) -> torch.Tensor:
    """Recourse-adversarial loss after Ross, Lakkaraju & Bastani (2021), with their first-order step.

    For the batch's rows the model does not give the desired class, one Taylor step towards it: an
    action ``delta = epsilon * sign(-grad_x yloss(M(x), y+))`` on the features that may move that way
    (immutable and monotone constraints respected), clamped to the domain, one-hot groups projected;
    the term is the mean ``yloss(M(x + delta), y+)`` over those rows (0 when every row already gets
    it), so that recourse within the budget ``epsilon`` (``--epsilon``, the L-inf radius also used for
    nascent examples) exists. Needs a dataset with a desired class.
    """
    if ctx.desired is None:
        raise CTPluginError(
            "loss term 'recourse' needs the dataset's desired class (the outcome recourse aims at): name it "
            "(--desired with --csv, desired= in from_dataframe); this dataset has none"
        )
    x = ctx.x.detach()
    target = torch.full((len(x),), ctx.desired, dtype=torch.long, device=x.device)
    denied = (ctx.logits_x.detach().argmax(dim=1) != ctx.desired).to(x.dtype)
    probe = x.clone().requires_grad_(True)
    with torch.enable_grad():
        (gradient,) = torch.autograd.grad(F.cross_entropy(ctx.model(probe), target, reduction="sum"), probe)
    step = -torch.sign(gradient)
    up, down = ctx.constraints.directions()
    step = torch.where(torch.where(step > 0, up, down), step, 0.0)
    low, high = ctx.constraints.bounds(x)
    acted = torch.maximum(torch.minimum(x + ctx.config.epsilon * step, high), low)
    if ctx.constraints.onehot_groups:
        acted = ctx.constraints.project_onehot(acted)
    per_row = F.cross_entropy(ctx.model(acted), target, reduction="none")
    return (per_row * denied).sum() / denied.sum().clamp_min(1.0)
