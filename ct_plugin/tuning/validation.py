"""A validation split carved out of a spec's training rows (the real test split is never read).

TODO(merge): replace :func:`validation_split` by ``DatasetSpec.validation_split`` once the
branch adding it is merged; the signature and behaviour are meant to be the same.
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

from ct_plugin.data.spec import DatasetSpec
from ct_plugin.errors import CTPluginError

MAX_VALIDATION_ROWS = 1000
VALIDATION_SHARE = 0.2
MIN_TRAIN_PER_CLASS = 2


def default_validation_size(n_train: int) -> int:
    """``min(1000, round(0.2 * n_train))``: the paper holds out 1000 rows; small tables give a fifth."""
    return min(MAX_VALIDATION_ROWS, int(round(VALIDATION_SHARE * n_train)))


def validation_split(spec: DatasetSpec, size: int | None = None, seed: int = 0) -> DatasetSpec:
    """A copy of ``spec`` whose test rows are ``size`` validation rows carved from its training rows.

    The carve is stratified by class (each class keeps its share, at least one validation row and
    at least two training rows) and seeded. The real test split is dropped, so nothing trained or
    evaluated on the result can read it. The standardiser and domain bounds stay those of ``spec``.

    Args:
        spec: the dataset spec (its training rows are split).
        size: number of validation rows; default ``min(1000, round(0.2 * n_train))``.
        seed: seed of the carve.

    Raises:
        CTPluginError: ``size`` is not a positive integer, or the training rows are too few to
            give every class a validation row and two training rows.
    """
    y = np.asarray(spec.y_train)
    n = len(y)
    if size is None:
        size = default_validation_size(n)
    if not isinstance(size, int | np.integer) or isinstance(size, bool) or size < 1:
        raise CTPluginError(f"validation size must be a positive number of rows, got {size!r}")
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < spec.n_classes:
        missing = sorted(set(range(spec.n_classes)) - set(classes.tolist()))
        raise CTPluginError(
            f"cannot carve a validation split from {spec.name!r}: class(es) {missing} have no training rows"
        )
    need = MIN_TRAIN_PER_CLASS + 1
    small = {spec.class_names[c]: int(k) for c, k in zip(classes, counts, strict=True) if k < need}
    if small or size < len(classes) or size > n - MIN_TRAIN_PER_CLASS * len(classes):
        detail = f"; classes with fewer than {need} training rows: {small}" if small else ""
        raise CTPluginError(
            f"the table {spec.name!r} is too small to carve a validation split of {size} rows from its "
            f"{n} training rows (every one of its {len(classes)} classes needs at least one validation row "
            f"and {MIN_TRAIN_PER_CLASS} training rows){detail}"
        )
    per_class = _allocate(counts, size)
    rng = np.random.default_rng(seed)
    val_parts, train_parts = [], []
    for cls, k in zip(classes, per_class, strict=True):
        rows = rng.permutation(np.flatnonzero(y == cls))
        val_parts.append(rows[:k])
        train_parts.append(rows[k:])
    val_idx = np.sort(np.concatenate(val_parts))
    train_idx = np.sort(np.concatenate(train_parts))
    options = {**spec.options, "validation_split": {"size": int(size), "seed": int(seed)}}
    return dataclasses.replace(
        spec,
        X_train=spec.X_train[train_idx], y_train=spec.y_train[train_idx],
        X_test=spec.X_train[val_idx], y_test=spec.y_train[val_idx],
        options=options,
    )


def _allocate(counts: np.ndarray, size: int) -> np.ndarray:
    """Per-class validation rows: proportional (largest remainders), at least 1, leaving 2 training rows."""
    share = counts * size / counts.sum()
    alloc = np.clip(np.floor(share).astype(int), 1, counts - MIN_TRAIN_PER_CLASS)
    order = np.argsort(-(share - np.floor(share)), kind="stable")
    i = 0
    while alloc.sum() != size:
        c = order[i % len(order)]
        if alloc.sum() < size and alloc[c] < counts[c] - MIN_TRAIN_PER_CLASS:
            alloc[c] += 1
        elif alloc.sum() > size and alloc[c] > 1:
            alloc[c] -= 1
        i += 1
    return alloc


def spec_digest(spec: DatasetSpec) -> str:
    """A short hash of a spec's rows and encoding (cells of different data never share an id)."""
    digest = hashlib.sha1()
    for array in (spec.X_train, spec.y_train, spec.X_test, spec.y_test):
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(repr((spec.feature_names, spec.mutability, spec.class_names)).encode())
    return digest.hexdigest()[:12]
