"""Synthetic 2-D datasets of the paper: linearly separable, overlapping, circles, moons."""

from __future__ import annotations

import numpy as np
from sklearn import datasets as skdata

from ct_plugin.data.spec import DatasetSpec, from_arrays
from ct_plugin.errors import CTPluginError

SYNTHETIC = ("linearly_separable", "overlapping", "circles", "moons")
_DEFAULT_NOISE = {"linearly_separable": 0.5, "overlapping": 2.0, "circles": 0.1, "moons": 0.2}


def make_synthetic(
    kind: str, n_samples: int = 3750, noise: float | None = None, seed: int = 0, test_size: float = 0.2
) -> DatasetSpec:
    """Draw one of the four 2-D sets; ``n_samples`` rows in all (default 3750: 3000 for training).

    ``noise`` is the cluster standard deviation for the blob sets and the Gaussian noise of
    circles/moons. Feature ``x1`` is the protected feature in the paper's evaluation.
    """
    if kind not in SYNTHETIC:
        raise CTPluginError(f"unknown synthetic dataset {kind!r}; choose from {', '.join(SYNTHETIC)}")
    if int(n_samples) != n_samples or n_samples < 10:
        raise CTPluginError(f"n_samples must be an integer >= 10, got {n_samples}")
    noise = _DEFAULT_NOISE[kind] if noise is None else float(noise)
    if noise < 0:
        raise CTPluginError(f"noise must be >= 0, got {noise}")
    n_samples = int(n_samples)
    if kind == "circles":
        X, y = skdata.make_circles(n_samples, noise=noise, factor=0.3, random_state=seed)
    elif kind == "moons":
        X, y = skdata.make_moons(n_samples, noise=noise, random_state=seed)
    else:
        centers = (
            np.array([[-2.0, -2.0], [2.0, 2.0]])
            if kind == "linearly_separable"
            else np.array([[-1.0, -1.0], [1.0, 1.0]])
        )
        X, y = skdata.make_blobs(n_samples, centers=centers, cluster_std=noise, random_state=seed)
    return from_arrays(
        X,
        y,
        name=kind,
        feature_names=["x1", "x2"],
        class_names=["0", "1"],
        protected=["x1"],
        test_size=test_size,
        seed=seed,
        options={"n_samples": n_samples, "noise": noise, "seed": seed, "test_size": test_size},
    )
