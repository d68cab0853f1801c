"""Factual selectors: which training rows an epoch's counterfactual search starts from.

Each epoch with counterfactual terms asks the strategy's selector (or the config's
``factual_selector``) for ``nce`` row indices of the training rows. Built in: ``uniform`` (the
paper's: a uniform draw without replacement, with replacement when ``nce`` exceeds the rows). A
plugin registers others through ``ct_plugin_factual_selectors``; for example one that prefers the
rows the model is least sure about.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch


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
