"""Class balancing by undersampling, as the reference did for GMSC, California housing and Credit."""

from __future__ import annotations

import numpy as np


def undersample_indices(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """Row indices that keep every row of the smallest class and as many seeded draws of each other class.

    Rows are drawn without replacement with ``numpy.random.default_rng(seed)``; the result is
    sorted, so the kept rows stay in their original order (the train/test split shuffles later).
    """
    labels = np.asarray(labels)
    classes, counts = np.unique(labels, return_counts=True)
    n_min = int(counts.min())
    rng = np.random.default_rng(seed)
    kept = []
    for cls, count in zip(classes, counts, strict=True):
        rows = np.flatnonzero(labels == cls)
        kept.append(rows if count == n_min else rng.choice(rows, size=n_min, replace=False))
    return np.sort(np.concatenate(kept))
