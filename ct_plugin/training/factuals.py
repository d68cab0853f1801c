"""Factual selectors: which training rows an epoch's counterfactual search starts from.

Each epoch with counterfactual terms asks the strategy's selector (or the config's
``factual_selector``) for ``nce`` row indices of the training rows. Built in: ``uniform`` (the
paper's: a uniform draw without replacement, with replacement when ``nce`` exceeds the rows),
``entropy`` (the rows whose predicted class distribution has the highest entropy, after CAT, Luu
& Inoue 2023) and ``misclassified`` (the rows the model gets wrong first, then a uniform draw of
the others). A plugin registers others through ``ct_plugin_factual_selectors``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch

from ct_plugin.torch_utils import frozen, inference_chunk


@dataclass
class FactualPool:
    """What a selector chooses from.

    Attributes:
        model: the classifier being trained (use it under ``torch.no_grad()`` and ``frozen``).
        X, y: the training rows and labels.
        count: how many indices to return (``nce``).
        rng: the run's random generator (draw from it only, so runs stay reproducible).
        epoch: the 0-based epoch.
    """

    model: torch.nn.Module
    X: torch.Tensor
    y: torch.Tensor
    count: int
    rng: torch.Generator
    epoch: int


class FactualSelector(ABC):
    """Chooses the factuals of one epoch's search: ``select(pool)`` returns ``pool.count`` row indices."""

    name = ""

    @abstractmethod
    def select(self, pool: FactualPool) -> torch.Tensor:
        """A long tensor of ``pool.count`` indices into ``pool.X`` (repeats allowed)."""


class UniformFactuals(FactualSelector):
    """A uniform draw of ``count`` training rows (with replacement only when ``count`` exceeds the rows)."""

    name = "uniform"

    def select(self, pool: FactualPool) -> torch.Tensor:
        """``count`` distinct rows, uniformly at random (repeated rows once there are more factuals than rows)."""
        n = len(pool.X)
        if pool.count <= n:
            return torch.randperm(n, generator=pool.rng)[: pool.count]
        return torch.randint(0, n, (pool.count,), generator=pool.rng)


def _probabilities(pool: FactualPool) -> torch.Tensor:
    """The model's class probabilities of every training row (no gradient; in chunks, see ``inference_chunk``)."""
    with frozen(pool.model), torch.no_grad():
        return torch.cat([torch.softmax(pool.model(part), dim=1)
                          for part in torch.split(pool.X, inference_chunk(pool.model))])


def _ranked(scores: torch.Tensor, count: int, rng: torch.Generator) -> torch.Tensor:
    """``count`` indices of the highest ``scores`` (ties in a random order from ``rng``); all rows, then
    repeats of the ranking, when ``count`` exceeds them."""
    shuffled = torch.randperm(len(scores), generator=rng).to(scores.device)
    order = shuffled[torch.argsort(scores[shuffled], descending=True, stable=True)]
    repeats = -(-count // len(order))
    return order.repeat(repeats)[:count]


class EntropyFactuals(FactualSelector):
    """The ``count`` training rows the model is least sure about: highest entropy of its predicted classes.

    After CAT (Luu & Inoue 2023), which generates counterfactuals for high-entropy samples: rows near
    the decision boundary, whose counterfactuals are short and whose nascent examples sit where the
    model is most easily fooled. Ties (e.g. a saturated model) are broken at random.
    """

    name = "entropy"

    def select(self, pool: FactualPool) -> torch.Tensor:
        """Indices of the highest-entropy rows, ``H(p) = -sum_k p_k log p_k``."""
        p = _probabilities(pool)
        entropy = -(p * torch.log(p.clamp_min(1e-12))).sum(dim=1)
        return _ranked(entropy, pool.count, pool.rng)


class MisclassifiedFactuals(FactualSelector):
    """The rows the model misclassifies first (in a random order), then a uniform draw of the rest.

    Searching from a misclassified row asks the model to move it to another class than its
    prediction: often its true class, so the divergence pulls the mistake towards the data.
    """

    name = "misclassified"

    def select(self, pool: FactualPool) -> torch.Tensor:
        """``count`` indices: misclassified rows first, each group in a random order."""
        wrong = (_probabilities(pool).argmax(dim=1) != pool.y).float()
        return _ranked(wrong, pool.count, pool.rng)
