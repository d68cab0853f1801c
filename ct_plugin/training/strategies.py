"""Training strategies: which loss terms are on when, and how a strategy shapes the training it runs.

A :class:`TrainingStrategy` names its loss terms (registered :class:`~ct_plugin.plugins.registry.LossTerm`
names), the epochs they wait for (``burnin``), the update schedule that turns a batch's terms into
optimiser steps (:mod:`ct_plugin.training.schedules`), the rule that chooses the factuals of the
counterfactual search (:mod:`ct_plugin.training.factuals`) and when searches run. A third party
subclasses it to change more: the methods below are called by the training loop
(:class:`~ct_plugin.training.loop.Trainer`) at fixed points and do nothing by default.

Which terms are on in an epoch: ``yloss`` always; once the burn-in is over, the strategy's terms
plus every plugin term whose weight the user set above 0 (``--lambda-<term>``), with any strategy.

This module imports no torch (the registry builds strategies without loading it).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ct_plugin.errors import CTPluginError

if TYPE_CHECKING:  # the hooks' argument types, named for readers and type checkers
    import torch

    from ct_plugin.generators.base import CounterfactualGenerator, SearchResult
    from ct_plugin.training.objective import CounterfactualBatch
    from ct_plugin.training.schedules import UpdateStep

CLASSIFICATION_TERM = "yloss"
"""The term every strategy trains on in every epoch."""


@dataclass(eq=False)
class TrainingStrategy:
    """Which loss terms are on when, and how they train the model.

    Attributes:
        name: registry name.
        terms: the loss terms switched on after ``burnin`` (registered term names; ``yloss`` is always on).
        burnin: fraction of epochs in [0, 1) trained with yloss only before the terms switch on.
        update_schedule: registered update schedule (``joint``: one step on the weighted sum).
        factual_selector: registered rule choosing the factuals of each search (``uniform``).
        search_every: ``epoch`` or ``batch``; None leaves it to the config's ``search_every``.
    """

    name: str
    terms: Iterable[str]
    burnin: float = 0.0
    update_schedule: str = "joint"
    factual_selector: str = "uniform"
    search_every: str | None = None

    def __post_init__(self) -> None:
        self.terms = frozenset(self.terms)
        if not 0.0 <= self.burnin < 1.0:
            raise CTPluginError(f"burnin must be a fraction in [0, 1), got {self.burnin}")
        if self.search_every not in (None, "epoch", "batch"):
            raise CTPluginError(f"strategy {self.name!r}: search_every must be 'epoch', 'batch' or None, "
                                f"got {self.search_every!r}")

    # ------------------------------------------------------------- which terms
    def first_ct_epoch(self, epochs: int) -> int:
        """The first epoch (0-based) in which the terms beyond yloss are on."""
        return math.floor(self.burnin * epochs + 1e-9)

    def active_terms(self, epoch: int, epochs: int, weighted: Iterable[str] = ()) -> frozenset[str]:
        """Terms on in ``epoch``: yloss, then (after burn-in) the strategy's and the ``weighted`` plugin terms."""
        extra = frozenset(self.terms) | frozenset(weighted)
        if extra and epoch >= self.first_ct_epoch(epochs):
            return frozenset({CLASSIFICATION_TERM}) | extra
        return frozenset({CLASSIFICATION_TERM})

    def needs_counterfactuals(self, epoch: int, epochs: int) -> bool:
        """Whether the strategy's own terms are on in ``epoch`` (0-based)."""
        return bool(self.terms) and epoch >= self.first_ct_epoch(epochs)

    # ------------------------------------------------------- training behaviour
    def setup(self, model: torch.nn.Module, spec: Any, config: Any, device: torch.device) -> None:
        """Called once before training (and before a resumed run restores its state).

        Build auxiliary networks and their optimisers here (keep them on ``self``); their
        parameters are saved in every checkpoint through :meth:`state_dict`.
        """

    def in_training_generator(self, generator: CounterfactualGenerator | None) -> CounterfactualGenerator | None:
        """The generator the searches use: ``generator`` (the config's) unless the strategy brings its own."""
        return generator

    def after_search(
        self, batch: CounterfactualBatch, result: SearchResult, model: torch.nn.Module
    ) -> CounterfactualBatch:
        """Adjust the counterfactual batch of a search before the terms see it (default: as found).

        For example, set ``batch.adversarial_mask`` so only some nascent examples count as adversarial.
        """
        return batch

    def epoch_data(self, epoch: int, X: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The rows the epoch's mini-batches train on (default: the training rows); e.g. augment them."""
        return X, y

    def after_update(self, step: UpdateStep) -> None:
        """Called after each batch's update (step an auxiliary network's optimiser here)."""

    def state_dict(self) -> dict[str, Any]:
        """The strategy's own state (auxiliary networks, their optimisers), saved in every checkpoint."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` when a run resumes."""


BUILTIN_STRATEGIES = {
    "vanilla": (frozenset(), "yloss only (conventional training)"),
    "ct": (frozenset({"div", "reg", "adv"}), "full counterfactual training: yloss + div + ridge + adversarial"),
    "energy": (frozenset({"div", "reg"}), "yloss + contrastive divergence + ridge (no adversarial term)"),
    "adversarial": (frozenset({"adv"}), "yloss + adversarial loss on nascent counterfactuals"),
    "ct_blockwise": (frozenset({"div", "reg", "adv"}), "full counterfactual training, updated block-wise "
                     "(CounterNet): a step on yloss, then a step on div + ridge + adversarial"),
    "cat": (frozenset({"augment"}), "counterfactual adversarial training (CAT, Luu & Inoue 2023): vanilla for the "
            "first half of the epochs (--burnin), then fine-tuning on the counterfactuals of the highest-entropy "
            "rows, labelled with their target class"),
    "recourse": (frozenset({"recourse"}), "recourse-adversarial training (Ross, Lakkaraju & Bastani 2021): yloss + "
                 "the recourse loss of a first-order step towards the desired class (no counterfactual search)"),
}
BUILTIN_SCHEDULES = {"ct_blockwise": "blockwise"}
"""The update schedule of the built-in strategies that do not take the paper's ``joint`` one."""
BUILTIN_SELECTORS = {"cat": "entropy"}
"""The factual selector of the built-in strategies that do not draw the paper's ``uniform`` factuals."""
DEFAULT_BURNIN = {"cat": 0.5}
"""The burn-in of the built-in strategies that pretrain before their terms switch on, where the user sets none.

CAT fine-tunes a trained model; here the first half of the epochs trains it (yloss only)."""


def make_strategy(name: str, burnin: float = 0.0) -> TrainingStrategy:
    """Build one of the built-in strategies (``burnin`` 0 takes the strategy's :data:`DEFAULT_BURNIN`)."""
    terms, _ = BUILTIN_STRATEGIES[name]
    return TrainingStrategy(name, terms, burnin or DEFAULT_BURNIN.get(name, 0.0),
                            update_schedule=BUILTIN_SCHEDULES.get(name, "joint"),
                            factual_selector=BUILTIN_SELECTORS.get(name, "uniform"))
