"""Building a :class:`~ct_plugin.data.spec.DatasetSpec` from a DataFrame or from arrays.

:func:`from_dataframe` encodes a pandas DataFrame in original units (one-hot groups, the
standardiser, domain bounds, a seeded stratified or given train/test split, optional
undersampling); :func:`from_arrays` wraps a numeric matrix and labels for it. Both are public
as ``ct_plugin.from_dataframe`` and ``ct_plugin.from_arrays``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ct_plugin.data.balance import undersample_indices
from ct_plugin.data.frame_prep import (
    check_columns,
    check_finite,
    check_missing,
    encode_labels,
    integer_features,
    join_given_split,
    split_feature_kinds,
    stratified_split,
)
from ct_plugin.data.images import image_spec
from ct_plugin.data.spec import DatasetSpec
from ct_plugin.errors import CTPluginError


def from_dataframe(
    frame: pd.DataFrame,
    target: str,
    *,
    categorical: Sequence[str] | None = None,
    continuous: Sequence[str] | None = None,
    immutable: Sequence[str] = (),
    increase_only: Sequence[str] = (),
    decrease_only: Sequence[str] = (),
    bounds: Mapping[str, tuple[float, float]] | None = None,
    integer: Sequence[str] | None = None,
    protected: Sequence[str] = (),
    class_names: Sequence[str] | None = None,
    desired: Any = None,
    impute: str | None = None,
    test_size: float = 0.2,
    seed: int = 0,
    name: str = "custom",
    options: Mapping[str, Any] | None = None,
    standardise: bool = True,
    balance: bool = False,
    test: pd.DataFrame | None = None,
) -> DatasetSpec:
    """Build a :class:`DatasetSpec` from a DataFrame in original units.

    Args:
        frame: one row per sample, features and the target column.
        target: name of the label column (integers, booleans or strings; K >= 2 classes).
        categorical: columns to one-hot encode; default: every non-numeric column.
        continuous: numeric columns to standardise; default: all remaining columns.
        immutable, increase_only, decrease_only: column names with restricted mutability.
        bounds: optional ``{column: (low, high)}`` domain bounds in original units; the
            default is ``[min(mean - 2 sd, min), max(mean + 2 sd, max)]`` over the training rows,
            and for integer features the observed ``[min, max]`` of the training rows (a search
            never proposes 21.3 school years when the data's maximum is 20).
        integer: continuous columns holding whole numbers; default: every integer-typed column.
            :meth:`DatasetSpec.decode` rounds them.
        protected: features treated as protected in evaluation (e.g. ``["age"]``).
        class_names: display names of the classes in sorted label order.
        desired: the favourable outcome (the target of recourse): a value of the target column or a
            class name, e.g. ``desired=1`` or ``desired="approved"``; recorded in the spec (and its runs).
        impute: ``None`` (missing values are an error) or ``"median"`` (fill continuous NaNs
            with the training median; categorical NaNs become the level ``"missing"``).
        test_size: share of rows held out (stratified by label), in [0, 1); 0 keeps every row for
            training (the test split is then empty); ignored with ``test``.
        seed: seed of the split.
        test: a given test split (same columns as ``frame``); ``frame`` is then all training data.
        name: dataset name recorded in run directories.
        standardise: ``False`` keeps continuous columns at raw scale (``mean`` 0, ``scale`` 1,
            so :meth:`DatasetSpec.decode` is the identity on them); bounds are then in raw units.
        balance: undersample every class to the minority count (seeded by ``seed``, all
            minority rows kept) before the split; recorded as ``options["balance"]``.
    """
    if not isinstance(frame, pd.DataFrame):
        raise CTPluginError(f"expected a pandas DataFrame, got {type(frame).__name__}")
    check_columns(frame)
    if target not in frame.columns:
        raise CTPluginError(f"target column {target!r} not found; columns are: {', '.join(map(str, frame.columns))}")
    if not 0.0 <= float(test_size) < 1.0:
        raise CTPluginError(f"test_size must lie in [0, 1), got {test_size}")
    if impute not in (None, "median"):
        raise CTPluginError(f"impute must be None or 'median', got {impute!r}")
    n_given_train = None
    if test is not None:
        frame, n_given_train = join_given_split(frame, test, target)
    if len(frame) < 4:
        raise CTPluginError(f"the frame has {len(frame)} rows; at least 4 are needed for a split")
    for flag, value in (("standardise", standardise), ("balance", balance)):
        if not isinstance(value, (bool, np.bool_)):
            raise CTPluginError(f"{flag} must be True or False, got {value!r}")

    features = [c for c in frame.columns if c != target]
    if not features:
        raise CTPluginError(f"the frame holds only the target column {target!r}: there are no features to learn from")
    categorical, continuous = split_feature_kinds(frame, features, categorical, continuous)
    for column in (*immutable, *increase_only, *decrease_only, *protected, *(bounds or {})):
        if column not in features:
            raise CTPluginError(f"unknown feature {column!r}; valid names: {', '.join(map(str, features))}")

    labels, class_values = encode_labels(frame[target], target)
    if balance and n_given_train is not None:
        raise CTPluginError("balance=True undersamples before the split; it cannot be used with a given test frame")
    if balance:
        kept = undersample_indices(labels, seed)
        frame, labels = frame.iloc[kept].reset_index(drop=True), labels[kept]
        options = {**(options or {}), "balance": True}
        if len(frame) < 4:
            raise CTPluginError(
                f"balancing leaves {len(frame)} rows (the smallest class has {len(frame) // len(class_values)}); "
                "at least 4 are needed for a split"
            )
    if class_names is None:
        class_names = [str(v) for v in class_values]
    if len(class_names) != len(class_values):
        raise CTPluginError(f"class_names has {len(class_names)} names but the target has {len(class_values)} classes")
    desired_name = desired_class(desired, list(class_names), list(class_values), target)

    if n_given_train is None:
        train_idx, test_idx = stratified_split(labels, test_size, seed)
    else:
        train_idx = np.random.default_rng(seed).permutation(n_given_train)
        test_idx = np.arange(n_given_train, len(frame))
        unseen = sorted(set(labels[test_idx].tolist()) - set(labels[train_idx].tolist()))
        if unseen:
            raise CTPluginError(
                f"the test split holds label(s) {[str(class_values[i]) for i in unseen]} of {target!r} that the "
                "training rows never show; the model could not learn them (add such rows to the training split)"
            )
    integer = integer_features(frame, continuous, integer)
    data = frame[features].copy()
    check_missing(data, continuous, categorical, impute, train_idx)

    columns: list[str] = []
    blocks: list[np.ndarray] = []
    is_onehot: list[bool] = []
    levels: dict[str, list[str]] = {}
    for feature in features:
        if feature in categorical:
            values = data[feature].astype(str).to_numpy()
            feature_levels = sorted(set(values.tolist()))
            if n_given_train is not None:  # a given test split may not bring levels the training rows never show
                unseen = sorted(set(values[test_idx].tolist()) - set(values[train_idx].tolist()))
                if unseen:
                    raise CTPluginError(
                        f"column {feature!r} of the test split holds level(s) {unseen[:5]} that the training rows "
                        "never show; the model could not have learnt them (add such rows to the training split)"
                    )
            levels[feature] = feature_levels
            for level in feature_levels:
                columns.append(f"{feature}={level}")
                blocks.append((values == level).astype(np.float64))
                is_onehot.append(True)
        else:
            numeric = pd.to_numeric(data[feature], errors="coerce").to_numpy(dtype=np.float64)
            columns.append(feature)
            blocks.append(numeric)
            is_onehot.append(False)
    raw = np.stack(blocks, axis=1)
    if impute == "median":
        medians = np.nanmedian(raw[train_idx], axis=0)
        raw = np.where(np.isnan(raw), medians, raw)
    check_finite(raw, columns, where=f"dataset {name!r}")

    onehot = np.asarray(is_onehot)
    with np.errstate(over="ignore", invalid="ignore"):
        std = raw[train_idx].std(axis=0)
    if standardise:
        with np.errstate(over="ignore", invalid="ignore"):
            mean = np.where(onehot, 0.0, raw[train_idx].mean(axis=0))
            scale = np.where(onehot | (std == 0), 1.0, std)
            encoded = ((raw - mean) / scale).astype(np.float32)
        where = f"dataset {name!r} after standardising (magnitudes too large for float32)"
        check_finite(encoded, columns, where=where)
        z_train = encoded[train_idx]
        lower = np.where(onehot, 0.0, np.minimum(-2.0, z_train.min(axis=0)))
        upper = np.where(onehot, 1.0, np.maximum(2.0, z_train.max(axis=0)))
    else:
        mean, scale = np.zeros(len(columns)), np.ones(len(columns))
        encoded = raw.astype(np.float32)
        check_finite(encoded, columns, where=f"dataset {name!r} (magnitudes too large for float32)")
        mu, spread = raw[train_idx].mean(axis=0), np.where(std == 0, 1.0, std)
        lower = np.where(onehot, 0.0, np.minimum(mu - 2.0 * spread, raw[train_idx].min(axis=0)))
        upper = np.where(onehot, 1.0, np.maximum(mu + 2.0 * spread, raw[train_idx].max(axis=0)))
    for feature in integer:  # the search keeps integer features inside their observed training range
        j = columns.index(feature)
        lower[j], upper[j] = encoded[train_idx, j].min(), encoded[train_idx, j].max()
    for feature, (low, high) in (bounds or {}).items():
        if feature in categorical:
            raise CTPluginError(f"bounds apply to continuous features; {feature!r} is categorical")
        if not low < high:
            raise CTPluginError(f"bounds for {feature!r} must satisfy low < high, got ({low}, {high})")
        j = columns.index(feature)
        lower[j], upper[j] = (low - mean[j]) / scale[j], (high - mean[j]) / scale[j]

    spec = DatasetSpec(
        name=name,
        feature_names=columns,
        continuous=[f for f in features if f not in categorical],
        categorical=levels,
        mutability=["both"] * len(columns),
        lower=lower.astype(np.float32),
        upper=upper.astype(np.float32),
        mean=mean,
        scale=scale,
        class_names=list(class_names),
        target=target,
        X_train=encoded[train_idx],
        y_train=labels[train_idx],
        X_test=encoded[test_idx],
        y_test=labels[test_idx],
        protected=list(protected),
        options=dict(options or {}),
        integer=integer,
        desired=desired_name,
    )
    return spec.with_mutability(immutable, increase_only, decrease_only)


def desired_class(desired: Any, class_names: list[str], class_values: list[Any], target: str) -> str | None:
    """The class name of ``desired`` (a class name or a value of the target column), or None."""
    if desired is None:
        return None
    if str(desired) in class_names:
        return str(desired)
    for name, value in zip(class_names, class_values, strict=True):
        if str(value) == str(desired):
            return name
    raise CTPluginError(f"desired outcome {desired!r} is not a class of {target!r}; its classes: "
                        f"{', '.join(class_names)} (values {', '.join(map(str, class_values))})")


def from_arrays(
    X: np.ndarray,
    y: np.ndarray,
    *,
    name: str,
    feature_names: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    protected: Sequence[str] = (),
    test_size: float = 0.2,
    seed: int = 0,
    options: Mapping[str, Any] | None = None,
    standardise: bool = True,
    balance: bool = False,
    desired: Any = None,
    image_shape: Sequence[int] | None = None,
    pixel_range: tuple[float, float] | str = "auto",
    protected_rows: int = 0,
) -> DatasetSpec:
    """Build a spec from a numeric feature matrix and integer labels (all features continuous).

    ``standardise`` and ``balance`` are those of :func:`from_dataframe`. With ``image_shape``
    (``(H, W)`` or ``(C, H, W)``, RGB included) the rows are images: ``X`` may also be
    ``(n, C, H, W)``; pixels are scaled from ``pixel_range`` to [-1, 1] instead of standardised,
    ``protected_rows`` protects the top and bottom pixel rows (see
    :func:`ct_plugin.data.images.image_spec`, which also takes a test split of your own).
    """
    if image_shape is not None:
        if balance or not standardise or feature_names is not None or protected:
            raise CTPluginError("with image_shape, pixels are named px_R_C and scaled to [-1, 1]: balance, "
                                "standardise, feature_names and protected do not apply (use protected_rows)")
        return image_spec(X, y, name=name, image_shape=image_shape, class_names=class_names,
                          pixel_range=pixel_range, protected_rows=protected_rows, test_size=test_size, seed=seed,
                          desired=desired, options=options)
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise CTPluginError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
    names = list(feature_names) if feature_names is not None else [f"x{i + 1}" for i in range(X.shape[1])]
    if len(names) != X.shape[1]:
        raise CTPluginError(f"{len(names)} feature names given for {X.shape[1]} columns")
    frame = pd.DataFrame(X, columns=names)
    frame["__target__"] = np.asarray(y)
    spec = from_dataframe(
        frame,
        "__target__",
        continuous=names,
        categorical=[],
        protected=protected,
        class_names=class_names,
        test_size=test_size,
        seed=seed,
        name=name,
        options=options,
        standardise=standardise,
        balance=balance,
        desired=desired,
    )
    return dataclasses.replace(spec, target="target")
