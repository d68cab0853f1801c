"""Vectorised sampling of counterfactual targets and target-class neighbours."""

from __future__ import annotations

import torch

from ct_plugin.errors import CTPluginError


def other_class(offsets: torch.Tensor, excluded: torch.Tensor) -> torch.Tensor:
    """The ``offsets``-th class (0-based) among the classes other than ``excluded``, per row.

    With ``offsets`` uniform in ``[0, n_classes - 1)`` this is a uniform draw among the other classes.
    """
    return offsets + (offsets >= excluded).long()


def sample_targets(predicted: torch.Tensor, n_classes: int, rng: torch.Generator | None = None) -> torch.Tensor:
    """Draw, per row, a target class uniformly from the classes other than ``predicted``."""
    offset = torch.randint(0, n_classes - 1, predicted.shape, generator=rng, device="cpu").to(predicted.device)
    return other_class(offset, predicted)


class ClassSampler:
    """Draws observed training samples of given classes, all rows at once.

    The training rows' indices are sorted by label once; a draw is then an offset into the
    block of the requested class, gathered from ``X`` itself (no sorted copy of the data: on
    Fashion-MNIST that copy alone was 188 MB, nearly the training matrix again).
    """

    def __init__(self, X: torch.Tensor, y: torch.Tensor, n_classes: int):
        self.X = X
        self.order = torch.argsort(y, stable=True)
        counts = torch.bincount(y, minlength=n_classes)
        if (counts == 0).any():
            empty = torch.nonzero(counts == 0).flatten().tolist()
            raise CTPluginError(f"the training data has no sample of class(es) {empty}")
        self.counts = counts
        self.starts = torch.cumsum(counts, 0) - counts

    def indices(self, classes: torch.Tensor, rng: torch.Generator | None = None) -> torch.Tensor:
        """Row indices into ``X`` of one random sample per requested class."""
        u = torch.rand(classes.shape, generator=rng, device="cpu").to(classes.device)
        within = (u * self.counts[classes]).long().clamp_max(self.counts[classes] - 1)
        return self.order[self.starts[classes] + within]

    def sample(self, classes: torch.Tensor, rng: torch.Generator | None = None) -> torch.Tensor:
        """One random training sample of each requested class, shape (len(classes), d)."""
        return self.X[self.indices(classes, rng)]
