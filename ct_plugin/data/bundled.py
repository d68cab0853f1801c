"""Datasets bundled with scikit-learn: digits (8x8 images, 10 classes) and breast cancer."""

from __future__ import annotations

import dataclasses

import numpy as np
from sklearn import datasets as skdata

from ct_plugin.data.builder import from_arrays
from ct_plugin.data.spec import DatasetSpec

DIGITS_PROTECTED_ROWS = 1
"""Pixel rows protected at the top and at the bottom of a digit: 1 of 8 rows is the closest
8x8 match of MNIST's 5 of 28 (17.9% vs 12.5%; 2 rows would be 25%)."""


def load_digits(seed: int = 0, test_size: float = 0.2) -> DatasetSpec:
    """scikit-learn's 8x8 digits (1797 images, 10 classes), our offline MNIST stand-in.

    Pixels (0..16) are scaled to [-1, 1] (not standardised per pixel, so images keep their
    shape) and bounded to [-1, 1]. Protected features: the top and bottom pixel rows.
    """
    digits = skdata.load_digits()
    X = digits.data / 8.0 - 1.0
    names = [f"px_{r}_{c}" for r in range(8) for c in range(8)]
    spec = from_arrays(
        X,
        digits.target,
        name="digits",
        feature_names=names,
        class_names=[str(i) for i in range(10)],
        test_size=test_size,
        seed=seed,
        options={"seed": seed, "test_size": test_size},
    )
    rows = list(range(DIGITS_PROTECTED_ROWS)) + list(range(8 - DIGITS_PROTECTED_ROWS, 8))
    protected = [f"px_{r}_{c}" for r in rows for c in range(8)]
    # undo the per-pixel standardisation: keep the fixed [-1, 1] scale for every pixel
    # pixels are multiples of 1/8 in [-1, 1]: rounding removes the float error of the round trip
    raw_train = np.round((spec.X_train * spec.scale + spec.mean) * 8) / 8
    raw_test = np.round((spec.X_test * spec.scale + spec.mean) * 8) / 8
    n = spec.n_features
    return dataclasses.replace(
        spec,
        X_train=raw_train.astype(np.float32),
        X_test=raw_test.astype(np.float32),
        mean=np.full(n, 8.0),
        scale=np.full(n, 8.0),
        lower=np.full(n, -1.0, dtype=np.float32),
        upper=np.full(n, 1.0, dtype=np.float32),
        protected=protected,
        image_shape=(8, 8),
    )


def load_breast_cancer(seed: int = 0, test_size: float = 0.2) -> DatasetSpec:
    """Wisconsin breast cancer (569 rows, 30 continuous features, binary)."""
    data = skdata.load_breast_cancer()
    return from_arrays(
        data.data,
        data.target,
        name="breast_cancer",
        feature_names=[str(n).replace(" ", "_") for n in data.feature_names],
        class_names=[str(n) for n in data.target_names],
        test_size=test_size,
        seed=seed,
        options={"seed": seed, "test_size": test_size},
    )
