"""Training strategies: which objective terms are active in which epoch."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ct_plugin.errors import CTPluginError

TERMS = ("yloss", "div", "reg", "adv")


@dataclass(frozen=True)
class TrainingStrategy:
    """A set of active loss terms, switched on after ``burnin`` of the epochs.

    Attributes:
        name: registry name.
        terms: the counterfactual terms used once CT is on (subset of div, reg, adv);
            yloss is always on.
        burnin: fraction of epochs in [0, 1) trained with yloss only before the terms switch on.
    """

    name: str
    terms: frozenset[str]
    burnin: float = 0.0

    def __post_init__(self) -> None:
        unknown = set(self.terms) - set(TERMS)
        if unknown:
            raise CTPluginError(f"strategy {self.name!r} names unknown loss terms {sorted(unknown)}; known: {TERMS}")
        if not 0.0 <= self.burnin < 1.0:
            raise CTPluginError(f"burnin must be a fraction in [0, 1), got {self.burnin}")

    def needs_counterfactuals(self, epoch: int, epochs: int) -> bool:
        """Whether epoch ``epoch`` (0-based) uses counterfactual terms."""
        return bool(self.terms) and epoch >= self.first_ct_epoch(epochs)

    def first_ct_epoch(self, epochs: int) -> int:
        """The first epoch in which the counterfactual terms are on."""
        return math.floor(self.burnin * epochs + 1e-9)

    def active_terms(self, epoch: int, epochs: int) -> frozenset[str]:
        """Terms active in ``epoch`` (always including yloss)."""
        if self.needs_counterfactuals(epoch, epochs):
            return frozenset({"yloss"}) | self.terms
        return frozenset({"yloss"})


BUILTIN_STRATEGIES = {
    "vanilla": (frozenset(), "yloss only (conventional training)"),
    "ct": (frozenset({"div", "reg", "adv"}), "full counterfactual training: yloss + div + ridge + adversarial"),
    "energy": (frozenset({"div", "reg"}), "yloss + contrastive divergence + ridge (no adversarial term)"),
    "adversarial": (frozenset({"adv"}), "yloss + adversarial loss on nascent counterfactuals"),
}


def make_strategy(name: str, burnin: float = 0.0) -> TrainingStrategy:
    """Build one of the built-in strategies."""
    terms, _ = BUILTIN_STRATEGIES[name]
    return TrainingStrategy(name, terms, burnin)
