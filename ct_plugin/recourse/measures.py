"""What ``explain`` says about each counterfactual: probabilities, validity, cost, plausibility, active limits.

All measures are batched over people. Distances are Euclidean in standardised units (the space the
model and the paper's IP work in); costs are given both as the L1 distance in standardised units
(the protocol's cost) and feature by feature in original units.
"""

from __future__ import annotations

import numpy as np
import torch

from ct_plugin.data.spec import DatasetSpec
from ct_plugin.evaluation.metrics.counterfactual import implausibility
from ct_plugin.torch_utils import model_device

AT_BOUND_TOLERANCE = 1e-3
"""A feature lies on a bound when within this many standard deviations of it."""

CHANGE_TOLERANCE = 1e-6
"""A feature has changed when it moved by more than this many standard deviations."""

REFERENCE_ROWS = 5000
"""Desired-class training rows the plausibility measures compare with (a seeded sample above this)."""


def probabilities(model: torch.nn.Module, x: np.ndarray, batch: int = 65536) -> np.ndarray:
    """Softmax probabilities of every class for encoded rows ``x`` (n, K)."""
    device = model_device(model)
    with torch.no_grad():
        parts = [torch.softmax(model(torch.as_tensor(x[i:i + batch]).to(device)), dim=1).cpu()
                 for i in range(0, len(x), batch)]
    return torch.cat(parts).numpy() if parts else np.zeros((0, 0), dtype=np.float32)


def class_samples(spec: DatasetSpec, target: int, seed: int = 0, limit: int = REFERENCE_ROWS) -> torch.Tensor:
    """The training rows of class ``target`` (a seeded sample of ``limit`` rows when there are more)."""
    rows = spec.X_train[spec.y_train == target]
    if len(rows) > limit:
        rows = rows[np.random.default_rng(seed).choice(len(rows), limit, replace=False)]
    return torch.as_tensor(rows, dtype=torch.float32)


def plausibility(
    counterfactuals: np.ndarray, targets: np.ndarray, spec: DatasetSpec, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Per row: distance to the nearest training row of its target class, and the IP (mean distance to them)."""
    nearest = np.full(len(counterfactuals), np.nan)
    ip = np.full(len(counterfactuals), np.nan)
    for target in np.unique(targets):
        samples = class_samples(spec, int(target), seed)
        if not len(samples):
            continue
        rows = np.flatnonzero(targets == target)
        x = torch.as_tensor(counterfactuals[rows], dtype=torch.float32)
        nearest[rows] = torch.cat([torch.cdist(part, samples).amin(dim=1) for part in torch.split(x, 1024)]).numpy()
        ip[rows] = implausibility(x, samples).numpy()
    return nearest, ip


def nearest_neighbour_scale(spec: DatasetSpec, target: int, seed: int = 0, rows: int = 500) -> float:
    """The median distance of a training row of class ``target`` to its nearest other row of that class.

    The yardstick for the nearest-row distance of a counterfactual: one near this value looks like
    a member of the class, one many times larger lies where the class has no data.
    """
    samples = class_samples(spec, target, seed)
    if len(samples) < 2:
        return float("nan")
    probe = samples[: min(rows, len(samples))]
    distances = torch.cdist(probe, samples)
    distances[torch.arange(len(probe)), torch.arange(len(probe))] = float("inf")
    return float(distances.amin(dim=1).median())


def changed_columns(factuals: np.ndarray, counterfactuals: np.ndarray) -> np.ndarray:
    """(n, d) mask of the encoded columns a counterfactual changed."""
    return np.abs(counterfactuals - factuals) > CHANGE_TOLERANCE


def observed_bounds(spec: DatasetSpec) -> tuple[np.ndarray, np.ndarray]:
    """Per encoded column the bounds a person's value can take: the training range of each continuous
    feature (within the spec's domain), the domain itself for one-hot columns (standardised units)."""
    lower, upper = np.asarray(spec.lower, dtype=np.float64).copy(), np.asarray(spec.upper, dtype=np.float64).copy()
    if len(spec.X_train):
        for name in spec.continuous:
            j = spec.columns_of(name)[0]
            lower[j] = max(lower[j], float(spec.X_train[:, j].min()))
            upper[j] = min(upper[j], float(spec.X_train[:, j].max()))
    return lower, upper


def at_bounds(
    spec: DatasetSpec, factuals: np.ndarray, counterfactuals: np.ndarray,
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """(n, d) mask: a changed continuous column that ends on a bound the factual was not on.

    ``bounds``: (lower, upper) per column, standardised; default the spec's domain.
    """
    lower, upper = bounds if bounds is not None else (spec.lower, spec.upper)
    lower, upper = np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)
    continuous = np.zeros(spec.n_features, dtype=bool)
    continuous[[spec.columns_of(name)[0] for name in spec.continuous]] = True
    ends_low = np.abs(counterfactuals - lower) <= AT_BOUND_TOLERANCE
    ends_high = np.abs(counterfactuals - upper) <= AT_BOUND_TOLERANCE
    was_low = np.abs(factuals - lower) <= AT_BOUND_TOLERANCE
    was_high = np.abs(factuals - upper) <= AT_BOUND_TOLERANCE
    return changed_columns(factuals, counterfactuals) & continuous & ((ends_low & ~was_low) | (ends_high & ~was_high))


def at_limits(max_change: np.ndarray | None, factuals: np.ndarray, counterfactuals: np.ndarray) -> np.ndarray:
    """(n, d) mask: a column that moved by its largest allowed change (``max_change``, standardised)."""
    if max_change is None:
        return np.zeros(factuals.shape, dtype=bool)
    moved = np.abs(counterfactuals - factuals)
    return np.isfinite(max_change) & (moved >= max_change - AT_BOUND_TOLERANCE) & (moved > CHANGE_TOLERANCE)
