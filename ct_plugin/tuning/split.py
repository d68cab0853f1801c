"""The validation split tune evaluates on, and a digest that keeps cells of different data apart."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

from ct_plugin.data.spec import DatasetSpec


def validation_split(spec: DatasetSpec, size: int | None = None, seed: int = 0) -> DatasetSpec:
    """:meth:`DatasetSpec.validation_split` (the real test split is never read), recording the carve for the report."""
    carved = spec.validation_split(size, seed)
    options = {**carved.options, "validation_split": {"size": len(carved.y_test), "seed": int(seed)}}
    return dataclasses.replace(carved, options=options)


def spec_digest(spec: DatasetSpec) -> str:
    """A short hash of a spec's rows and encoding (cells of different data never share an id)."""
    digest = hashlib.sha1()
    for array in (spec.X_train, spec.y_train, spec.X_test, spec.y_test):
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(repr((spec.feature_names, spec.mutability, spec.class_names)).encode())
    return digest.hexdigest()[:12]
