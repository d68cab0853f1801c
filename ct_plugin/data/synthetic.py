"""Synthetic 2-D datasets of the paper: linearly separable, overlapping, circles, moons.

Two styles:

* ``"standardised"`` (default): fixed centres / shapes, standardised with the training mean
  and standard deviation like every other table.
* ``"reference"``: drawn like the reference (TaijaData via MLJBase, as CounterfactualTraining.jl
  uses it) at raw scale, not standardised: the blob sets have two centres drawn uniformly in
  ``[-10, 10]^2`` with numpy (``centre_seed``, default 42, the reference's fixed data seed; numpy's
  stream is not Julia's, so the centres differ from the reference's: pass ``centres`` to pin them) with std 0.5
  (linearly separable) or 2 (overlapping); circles is ``make_circles(noise=0.15, factor=0.01)``
  with the inner blob labelled 0 as in the reference;
  moons is MLJBase's ``make_moons`` geometry (second moon shifted by (1.0, 0.3), noise 0.1).
  4500 rows: 900 test, and of the 3600 training rows a stratified 600 (the reference's
  validation rows) are dropped, leaving 3000 for training.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from sklearn import datasets as skdata

from ct_plugin.data.builder import from_arrays
from ct_plugin.data.spec import DatasetSpec
from ct_plugin.data.split import stratified_carve
from ct_plugin.errors import CTPluginError

SYNTHETIC = ("linearly_separable", "overlapping", "circles", "moons")
STYLES = ("standardised", "reference")
_DEFAULT_NOISE = {"linearly_separable": 0.5, "overlapping": 2.0, "circles": 0.1, "moons": 0.2}
REFERENCE_NOISE = {"linearly_separable": 0.5, "overlapping": 2.0, "circles": 0.15, "moons": 0.1}
"""Blob std (blob sets) or Gaussian noise (circles, moons) of the reference's sets."""
REFERENCE_CIRCLES_FACTOR = 0.01
"""Inner radius over outer radius of the reference's circles: a compact blob inside a ring."""
REFERENCE_MOONS_SHIFT = (1.0, 0.3)
"""Offset of the second moon in MLJBase's ``make_moons`` (scikit-learn's is (1.0, 0.5))."""
REFERENCE_CENTRE_BOX = (-10.0, 10.0)
"""Box of the uniformly drawn blob centres (MLJBase's ``center_box``)."""
REFERENCE_CENTRE_SEED = 42
"""TaijaData's ``data_seed``: the reference draws its blob sets with it whatever the seed."""
REFERENCE_SIZES = {"n_samples": 4500, "test_size": 0.2, "n_validation": 600}
"""4500 rows = (3000 train + 600 validation) / 0.8; 900 test."""


def make_synthetic(
    kind: str,
    n_samples: int | None = None,
    noise: float | None = None,
    seed: int = 0,
    test_size: float | None = None,
    style: str = "standardised",
    centre_seed: int | None = None,
    n_validation: int | None = None,
    centres: list[list[float]] | None = None,
) -> DatasetSpec:
    """Draw one of the four 2-D sets (feature ``x1`` is the protected one in the paper's evaluation).

    Args:
        kind: ``linearly_separable``, ``overlapping``, ``circles`` or ``moons``.
        n_samples: rows in all; default 3750 (standardised: 3000 train) or 4500 (reference).
        noise: cluster std of the blob sets, Gaussian noise of circles/moons; default per style.
        seed: seed of the point draw and of the splits.
        test_size: share of rows held out for testing (default 0.2).
        style: ``"standardised"`` or ``"reference"`` (raw scale, drawn like the reference).
        centre_seed: reference style, blob sets: seed of the uniform centre draw (default 42).
        centres: reference style, blob sets: the two centres as ``[[x1, x2], [x1, x2]]``, given
            instead of drawn (to pin the reference's own centres).
        n_validation: reference style: training rows dropped as the reference's validation rows
            (stratified, seeded; default 600); 0 keeps them all.
    """
    if kind not in SYNTHETIC:
        raise CTPluginError(f"unknown synthetic dataset {kind!r}; choose from {', '.join(SYNTHETIC)}")
    if style not in STYLES:
        raise CTPluginError(f"unknown synthetic style {style!r}; choose from {', '.join(STYLES)}")
    if style == "standardised":
        for option, value in (("centre_seed", centre_seed), ("n_validation", n_validation), ("centres", centres)):
            if value is not None:
                raise CTPluginError(f"{option} applies to style='reference' only")
    reference = style == "reference"
    sizes = REFERENCE_SIZES if reference else {"n_samples": 3750, "test_size": 0.2, "n_validation": 0}
    n_samples = sizes["n_samples"] if n_samples is None else n_samples
    test_size = sizes["test_size"] if test_size is None else test_size
    n_validation = sizes["n_validation"] if n_validation is None else n_validation
    if isinstance(n_samples, bool) or int(n_samples) != n_samples or n_samples < 10:
        raise CTPluginError(f"n_samples must be an integer >= 10, got {n_samples}")
    if isinstance(n_validation, bool) or int(n_validation) != n_validation or n_validation < 0:
        raise CTPluginError(f"n_validation must be an integer >= 0, got {n_validation}")
    noise = (REFERENCE_NOISE if reference else _DEFAULT_NOISE)[kind] if noise is None else float(noise)
    if noise < 0:
        raise CTPluginError(f"noise must be >= 0, got {noise}")
    n_samples = int(n_samples)
    options = {"n_samples": n_samples, "noise": noise, "seed": seed, "test_size": test_size}
    if reference:
        X, y, extra = _draw_reference(kind, n_samples, noise, seed, centre_seed, centres)
        options.update(style=style, n_validation=int(n_validation), **extra)
    else:
        X, y = _draw_standardised(kind, n_samples, noise, seed)
    spec = from_arrays(
        X,
        y,
        name=kind,
        feature_names=["x1", "x2"],
        class_names=["0", "1"],
        protected=["x1"],
        test_size=test_size,
        seed=seed,
        options=options,
        standardise=not reference,
    )
    if n_validation:
        keep, _ = stratified_carve(spec.y_train, int(n_validation), seed)
        spec = dataclasses.replace(spec, X_train=spec.X_train[keep], y_train=spec.y_train[keep])
    return spec


def _draw_standardised(kind: str, n_samples: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if kind == "circles":
        return skdata.make_circles(n_samples, noise=noise, factor=0.3, random_state=seed)
    if kind == "moons":
        return skdata.make_moons(n_samples, noise=noise, random_state=seed)
    centers = (
        np.array([[-2.0, -2.0], [2.0, 2.0]]) if kind == "linearly_separable" else np.array([[-1.0, -1.0], [1.0, 1.0]])
    )
    return skdata.make_blobs(n_samples, centers=centers, cluster_std=noise, random_state=seed)


def reference_centres(centre_seed: int = REFERENCE_CENTRE_SEED) -> np.ndarray:
    """The two blob centres of the reference-style blob sets: uniform in ``[-10, 10]^2``, seeded.

    numpy's generator is not Julia's, so these are not the reference's own centres (which
    METHOD.md reports about 10 units apart); the construction is the same.
    """
    low, high = REFERENCE_CENTRE_BOX
    return np.random.default_rng(centre_seed).uniform(low, high, size=(2, 2))


def _draw_reference(
    kind: str, n_samples: int, noise: float, seed: int, centre_seed: int | None, centres: list | None
) -> tuple[np.ndarray, np.ndarray, dict]:
    if kind in ("circles", "moons") and (centre_seed is not None or centres is not None):
        raise CTPluginError("centre_seed and centres apply to the blob sets (linearly_separable, overlapping) only")
    if kind == "circles":
        X, y = skdata.make_circles(n_samples, noise=noise, factor=REFERENCE_CIRCLES_FACTOR, random_state=seed)
        # scikit-learn labels the outer ring 0; the reference (MLJBase) labels the inner blob 0
        return X, 1 - y, {"factor": REFERENCE_CIRCLES_FACTOR}
    if kind == "moons":
        # scikit-learn's noise-free moons, second moon moved to MLJBase's offset, then the noise
        X, y = skdata.make_moons(n_samples, noise=None, random_state=seed)
        X[y == 1] += np.subtract(REFERENCE_MOONS_SHIFT, (1.0, 0.5))
        X = X + np.random.default_rng(seed).normal(0.0, noise, size=X.shape)
        return X, y, {"moons_shift": list(REFERENCE_MOONS_SHIFT)}
    extra: dict = {}
    if centres is None:
        centre_seed = REFERENCE_CENTRE_SEED if centre_seed is None else int(centre_seed)
        centres = reference_centres(centre_seed)
        extra["centre_seed"] = centre_seed
    elif centre_seed is not None:
        raise CTPluginError("give centres or centre_seed, not both")
    else:
        centres = np.asarray(centres, dtype=np.float64)
        if centres.shape != (2, 2) or not np.all(np.isfinite(centres)):
            raise CTPluginError(f"centres must be two finite 2-D points [[x1, x2], [x1, x2]], got {centres.tolist()}")
    X, y = skdata.make_blobs(n_samples, centers=centres, cluster_std=noise, random_state=seed)
    extra["centres"] = np.round(centres, 6).tolist()
    return X, y, extra
