"""Update schedules: how one batch's active loss terms become optimiser steps.

The training loop hands a schedule an :class:`UpdateStep` per batch; the schedule calls
:meth:`UpdateStep.descend` once per optimiser step with the terms that step descends on. Each
``descend`` runs a fresh forward pass (so a second step sees the weights the first one left),
skips a step whose loss is not finite (with a warning; the divergence guard counts it), and
records the terms' values for the epoch's log.

Built in: ``joint`` (the paper's: one step on the weighted sum of every active term) and
``blockwise`` (after CounterNet, Guo et al. 2023: a step on ``yloss`` alone, then a step on the
other terms). A plugin registers others through ``ct_plugin_update_schedules``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from ct_plugin.training.strategies import CLASSIFICATION_TERM

if TYPE_CHECKING:
    import torch

    from ct_plugin.plugins.registry import LossTerm
    from ct_plugin.training.strategies import TrainingStrategy


class UpdateStep(Protocol):
    """What a schedule may use for one batch (the training loop provides it).

    Attributes:
        terms: the batch's active loss terms, in summation order.
        model: the classifier being trained.
        optimiser: the model's optimiser.
        strategy: the run's strategy (its auxiliary networks, if any).
        epoch, batch: the 0-based epoch and batch index.
        x, y: the batch's rows and labels.
    """

    terms: Sequence[LossTerm]
    model: torch.nn.Module
    optimiser: torch.optim.Optimizer
    strategy: TrainingStrategy
    epoch: int
    batch: int
    x: torch.Tensor
    y: torch.Tensor

    def descend(self, terms: Sequence[LossTerm]) -> dict[str, float] | None:
        """One optimiser step on the weighted sum of ``terms`` (a fresh forward pass); their values, None if skipped."""
        ...


class UpdateSchedule(ABC):
    """How a batch's active terms update the model (one or more calls of :meth:`UpdateStep.descend`)."""

    name = ""

    @abstractmethod
    def step(self, update: UpdateStep) -> None:
        """Update the model on one batch."""


class JointUpdate(UpdateSchedule):
    """One optimiser step on the weighted sum of every active term (the paper's update)."""

    name = "joint"

    def step(self, update: UpdateStep) -> None:
        """Descend once on all of the batch's terms."""
        update.descend(update.terms)


class BlockwiseUpdate(UpdateSchedule):
    """Two optimiser steps per batch: ``yloss`` alone, then the other active terms (block-wise, CounterNet).

    Guo et al. (2023) observed that the gradients of the classification loss and of the
    counterfactual losses point in opposite directions, and updated the predictor on its own loss
    before the others. The second step sees the weights the first left (a fresh forward pass); a
    batch whose only active term is ``yloss`` (burn-in, vanilla epochs) takes one step.
    """

    name = "blockwise"

    def step(self, update: UpdateStep) -> None:
        """Descend on the classification term, then on the rest."""
        first = [term for term in update.terms if term.name == CLASSIFICATION_TERM]
        rest = [term for term in update.terms if term.name != CLASSIFICATION_TERM]
        if first:
            update.descend(first)
        if rest:
            update.descend(rest)
