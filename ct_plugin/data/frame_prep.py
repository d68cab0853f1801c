"""Checks and preparation of a raw DataFrame before :func:`~ct_plugin.data.builder.from_dataframe` encodes it.

Column names, which columns are categorical or continuous (and which hold integers), the
labels, missing and non-finite values, a given test frame, and the seeded stratified split.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ct_plugin.errors import CTPluginError


def join_given_split(frame: pd.DataFrame, test: pd.DataFrame, target: str) -> tuple[pd.DataFrame, int]:
    """``frame`` then ``test`` as one frame (encoded together), and the number of training rows."""
    if not isinstance(test, pd.DataFrame):
        raise CTPluginError(f"test must be a pandas DataFrame, got {type(test).__name__}")
    missing = [c for c in frame.columns if c not in test.columns]
    extra = [c for c in test.columns if c not in frame.columns]
    if missing or extra:
        raise CTPluginError(
            "the test frame must have the training frame's columns; "
            + "; ".join(p for p in (f"missing: {', '.join(map(str, missing))}" if missing else "",
                                    f"unexpected: {', '.join(map(str, extra))}" if extra else "") if p)
        )
    if len(test) < 1 or len(frame) < 2:
        raise CTPluginError(f"a given split needs >= 2 training and >= 1 test rows, got {len(frame)} and {len(test)}")
    return pd.concat([frame, test[frame.columns]], ignore_index=True), len(frame)


def integer_features(frame: pd.DataFrame, continuous: list[str], integer: Sequence[str] | None) -> list[str]:
    if integer is None:
        return [c for c in continuous if pd.api.types.is_integer_dtype(frame[c])]
    for column in integer:
        if column not in continuous:
            raise CTPluginError(f"integer feature {column!r} is not a continuous column; continuous: {continuous}")
    return list(integer)


def split_feature_kinds(
    frame: pd.DataFrame,
    features: list[str],
    categorical: Sequence[str] | None,
    continuous: Sequence[str] | None,
) -> tuple[list[str], list[str]]:
    for given, label in ((categorical, "categorical"), (continuous, "continuous")):
        for column in given or ():
            if column not in features:
                raise CTPluginError(f"unknown {label} column {column!r}; valid names: {', '.join(map(str, features))}")
    if categorical is None:
        categorical = [
            c for c in features if not pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c])
        ]
        categorical = [c for c in categorical if continuous is None or c not in continuous]
    categorical = list(categorical)
    if continuous is None:
        continuous = [c for c in features if c not in categorical]
    continuous = list(continuous)
    both = set(categorical) & set(continuous)
    if both:
        raise CTPluginError(f"columns listed as both categorical and continuous: {sorted(both)}")
    for column in continuous:
        if not pd.api.types.is_numeric_dtype(frame[column]) or pd.api.types.is_bool_dtype(frame[column]):
            raise CTPluginError(
                f"continuous column {column!r} is not numeric (dtype {frame[column].dtype}); "
                "list it as categorical or convert it"
            )
    return categorical, continuous


def encode_labels(series: pd.Series, target: str) -> tuple[np.ndarray, list[Any]]:
    if series.isna().any():
        raise CTPluginError(f"target column {target!r} has {int(series.isna().sum())} missing values")
    if pd.api.types.is_float_dtype(series):
        values = series.to_numpy(dtype=np.float64)
        if not np.all(np.isfinite(values)) or not np.all(values == np.round(values)):
            raise CTPluginError(
                f"target column {target!r} holds non-integer numbers ({series.nunique()} distinct values): "
                "it looks continuous; binarise it (e.g. at the median) before building the dataset"
            )
        series = series.astype(np.int64)
    class_values = sorted(series.unique().tolist(), key=lambda v: (str(type(v)), v))
    if len(class_values) < 2:
        raise CTPluginError(f"target column {target!r} has a single class ({class_values}); need at least 2")
    if len(class_values) > 100:
        raise CTPluginError(
            f"target column {target!r} has {len(class_values)} distinct values; is it really a class label?"
        )
    lookup = {v: i for i, v in enumerate(class_values)}
    return series.map(lookup).to_numpy(dtype=np.int64), class_values


def stratified_split(labels: np.ndarray, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    train, test = [], []
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        n_test = int(round(len(idx) * test_size))
        n_test = min(max(n_test, 1), len(idx) - 1) if len(idx) > 1 and test_size > 0 else 0
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def check_columns(frame: pd.DataFrame) -> None:
    """Column names must be unique strings without ``=`` (which separates a categorical from its level)."""
    names = list(frame.columns)
    duplicated = sorted({str(c) for c in names if names.count(c) > 1})
    if duplicated:
        raise CTPluginError(f"duplicate column names: {', '.join(map(repr, duplicated))}; rename them")
    bad = [c for c in names if not isinstance(c, str) or not c.strip()]
    if bad:
        raise CTPluginError(
            f"column names must be non-empty strings, got {bad[:5]}; rename them (e.g. frame.columns = [...])"
        )
    with_equals = [c for c in names if "=" in c]
    if with_equals:
        raise CTPluginError(
            f"column names may not contain '=' (it separates a categorical feature from its level): {with_equals[:5]}"
        )


def check_missing(
    data: pd.DataFrame, continuous: list[str], categorical: list[str], impute: str | None, train_idx: np.ndarray
) -> None:
    counts = {c: int(n) for c, n in data.isna().sum().items() if n}
    if counts and impute is None:
        listing = ", ".join(f"{c} ({n})" for c, n in counts.items())
        raise CTPluginError(
            f"missing values in feature columns: {listing}; drop those rows or pass impute='median' (--impute median)"
        )
    for column in categorical:
        if column in counts:
            data[column] = data[column].astype(object).where(data[column].notna(), "missing")


def check_finite(values: np.ndarray, columns: Sequence[str], where: str) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        counts = bad.sum(axis=0)
        listing = ", ".join(f"{columns[j]} ({int(counts[j])})" for j in np.flatnonzero(counts))
        raise CTPluginError(f"non-finite values (NaN or inf) in {where}: {listing}")
