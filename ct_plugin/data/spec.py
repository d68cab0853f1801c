"""The dataset spec: encoded arrays plus everything a counterfactual search must know.

A :class:`DatasetSpec` holds standardised, one-hot encoded float32 arrays for a
seeded train/test split, and the metadata that the search and the objective need:
which encoded columns form one-hot groups, the per-column mutability and domain
bounds, and the fitted standardiser so counterfactuals can be shown in original
units. :func:`from_dataframe` builds one from any pandas DataFrame.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ct_plugin.data.balance import undersample_indices
from ct_plugin.errors import CTPluginError, RunDirectoryError

MUTABILITY_KINDS = ("both", "increase", "decrease", "none")
"""Allowed per-feature mutability values, in the order of their integer codes."""

SPEC_FORMAT_VERSION = 1


@dataclass
class DatasetSpec:
    """Encoded data and metadata of one dataset (a seeded train/test split).

    Continuous columns are standardised with the training mean and standard
    deviation; a categorical feature becomes a one-hot group of 0/1 columns named
    ``"feature=level"``. All per-column vectors (``mutability``, ``lower``,
    ``upper``, ``mean``, ``scale``) are indexed like ``feature_names``. ``integer`` names the
    continuous features that hold whole numbers: :meth:`decode` rounds them.
    """

    name: str
    feature_names: list[str]
    continuous: list[str]
    categorical: dict[str, list[str]]
    mutability: list[str]
    lower: np.ndarray
    upper: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    class_names: list[str]
    target: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    protected: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    image_shape: tuple[int, int] | None = None
    integer: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------ shape
    @property
    def n_features(self) -> int:
        """Number of encoded input columns."""
        return len(self.feature_names)

    @property
    def n_classes(self) -> int:
        """Number of classes K (the model has K logits)."""
        return len(self.class_names)

    @property
    def raw_feature_names(self) -> list[str]:
        """Feature names before one-hot encoding, in column order."""
        names: list[str] = []
        for column in self.feature_names:
            raw = column.split("=", 1)[0] if "=" in column else column
            if raw not in names:
                names.append(raw)
        return names

    def columns_of(self, feature: str) -> list[int]:
        """Encoded column indices of a raw feature (all levels of a categorical) or one encoded column."""
        if feature in self.categorical:
            return [self.feature_names.index(f"{feature}={lvl}") for lvl in self.categorical[feature]]
        if feature in self.feature_names:
            return [self.feature_names.index(feature)]
        valid = self.raw_feature_names
        raise CTPluginError(f"unknown feature {feature!r} in dataset {self.name!r}; valid names: {', '.join(valid)}")

    @property
    def onehot_groups(self) -> list[list[int]]:
        """Encoded column indices of each categorical feature's one-hot group."""
        return [self.columns_of(name) for name in self.categorical]

    @property
    def protected_columns(self) -> list[int]:
        """Encoded columns of the features protected in the paper's evaluation."""
        return [i for name in self.protected for i in self.columns_of(name)]

    # ------------------------------------------------------------- mutability
    def with_mutability(
        self,
        immutable: Iterable[str] = (),
        increase_only: Iterable[str] = (),
        decrease_only: Iterable[str] = (),
        protect: bool = False,
    ) -> DatasetSpec:
        """Return a copy with the named features' mutability changed.

        ``protect=True`` additionally makes the dataset's protected features
        (``self.protected``, e.g. ``age``) immutable.
        """
        mutability = list(self.mutability)
        immutable = list(immutable) + (list(self.protected) if protect else [])
        assignments = [(immutable, "none"), (increase_only, "increase"), (decrease_only, "decrease")]
        seen: dict[str, str] = {}
        for names, kind in assignments:
            for feature in names:
                if feature in seen and seen[feature] != kind:
                    raise CTPluginError(
                        f"feature {feature!r} is given two mutabilities: {seen[feature]!r} and {kind!r}"
                    )
                seen[feature] = kind
                if feature in self.categorical and kind in ("increase", "decrease"):
                    raise CTPluginError(f"feature {feature!r} is categorical: it can be immutable but not {kind}-only")
                for column in self.columns_of(feature):
                    mutability[column] = kind
        return dataclasses.replace(self, mutability=mutability)

    # -------------------------------------------------------------- encoding
    def decode(self, X: np.ndarray) -> pd.DataFrame:
        """Turn encoded rows back into a DataFrame in original units (categoricals as levels).

        Integer features are rounded to whole numbers (and kept as integers).
        """
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise CTPluginError(f"decode expects an array of shape (n, {self.n_features}); got {tuple(X.shape)}")
        raw = X * self.scale + self.mean
        out: dict[str, Any] = {}
        for name in self.raw_feature_names:
            columns = self.columns_of(name)
            if name in self.categorical:
                levels = np.asarray(self.categorical[name], dtype=object)
                out[name] = levels[np.argmax(raw[:, columns], axis=1)]
            elif name in self.integer:
                out[name] = np.round(raw[:, columns[0]]).astype(np.int64)
            else:
                out[name] = raw[:, columns[0]]
        return pd.DataFrame(out)

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        """Encode a DataFrame in original units with this spec's fitted standardiser."""
        missing = [name for name in self.raw_feature_names if name not in frame.columns]
        if missing:
            raise CTPluginError(f"columns missing from the frame: {', '.join(missing)}")
        encoded = np.zeros((len(frame), self.n_features), dtype=np.float64)
        for name in self.raw_feature_names:
            columns = self.columns_of(name)
            if name in self.categorical:
                values = frame[name].astype(str).to_numpy()
                for column, level in zip(columns, self.categorical[name], strict=True):
                    encoded[:, column] = values == level
            else:
                encoded[:, columns[0]] = pd.to_numeric(frame[name], errors="raise").to_numpy()
        _check_finite(encoded, self.feature_names, where="frame to encode")
        return ((encoded - self.mean) / self.scale).astype(np.float32)

    def validation_split(self, size: int | float | None = None, seed: int = 0) -> DatasetSpec:
        """Carve a stratified, seeded validation split from the training rows.

        Returns a new spec whose train rows are the remaining training rows and whose test rows
        are the validation rows; the real test rows are not in it. ``size`` is a row count or a
        share in (0, 1); default ``min(1000, round(0.2 * n_train))``. The standardiser and the
        bounds stay this spec's. See :func:`ct_plugin.data.validation.validation_split`.
        """
        from ct_plugin.data.validation import validation_split

        return validation_split(self, size, seed)

    # ------------------------------------------------------------ persistence
    def metadata(self) -> dict[str, Any]:
        """JSON-serialisable metadata (everything except the data arrays)."""
        return {
            "format_version": SPEC_FORMAT_VERSION,
            "name": self.name,
            "feature_names": self.feature_names,
            "continuous": self.continuous,
            "categorical": self.categorical,
            "mutability": self.mutability,
            "lower": self.lower.tolist(),
            "upper": self.upper.tolist(),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "class_names": self.class_names,
            "target": self.target,
            "protected": self.protected,
            "options": self.options,
            "image_shape": list(self.image_shape) if self.image_shape else None,
            "integer": self.integer,
            "n_train": len(self.y_train),
            "n_test": len(self.y_test),
        }

    def save(self, directory: str | Path) -> None:
        """Write ``dataset.json`` (metadata) and ``dataset.npz`` (arrays) into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        _atomic_write_text(directory / "dataset.json", json.dumps(self.metadata(), indent=2))
        tmp = directory / "dataset.tmp.npz"
        np.savez_compressed(tmp, X_train=self.X_train, y_train=self.y_train, X_test=self.X_test, y_test=self.y_test)
        tmp.replace(directory / "dataset.npz")

    @classmethod
    def load(cls, directory: str | Path) -> DatasetSpec:
        """Read a spec written by :meth:`save` (no pickles are loaded)."""
        directory = Path(directory)
        meta_path, array_path = directory / "dataset.json", directory / "dataset.npz"
        for path in (meta_path, array_path):
            if not path.is_file():
                raise RunDirectoryError(f"{directory} is incomplete: {path.name} is missing")
        meta = json.loads(meta_path.read_text())
        try:
            with np.load(array_path, allow_pickle=False) as arrays:
                data = {key: arrays[key] for key in ("X_train", "y_train", "X_test", "y_test")}
        except (ValueError, KeyError) as exc:
            raise RunDirectoryError(f"{array_path} is not a valid dataset archive: {exc}") from exc
        return cls(
            name=meta["name"],
            feature_names=list(meta["feature_names"]),
            continuous=list(meta["continuous"]),
            categorical={k: list(v) for k, v in meta["categorical"].items()},
            mutability=list(meta["mutability"]),
            lower=np.asarray(meta["lower"], dtype=np.float32),
            upper=np.asarray(meta["upper"], dtype=np.float32),
            mean=np.asarray(meta["mean"], dtype=np.float64),
            scale=np.asarray(meta["scale"], dtype=np.float64),
            class_names=list(meta["class_names"]),
            target=meta["target"],
            protected=list(meta.get("protected", [])),
            options=dict(meta.get("options", {})),
            image_shape=tuple(meta["image_shape"]) if meta.get("image_shape") else None,
            integer=list(meta.get("integer", [])),
            **data,
        )

    def summary(self) -> str:
        """One line: sizes, classes, feature kinds."""
        return (
            f"{self.name}: {len(self.y_train)} train / {len(self.y_test)} test rows, "
            f"{self.n_features} encoded features ({len(self.continuous)} continuous, "
            f"{len(self.categorical)} categorical), {self.n_classes} classes"
        )


# ---------------------------------------------------------------------- builder
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
    _check_columns(frame)
    if target not in frame.columns:
        raise CTPluginError(f"target column {target!r} not found; columns are: {', '.join(map(str, frame.columns))}")
    if not 0.0 <= float(test_size) < 1.0:
        raise CTPluginError(f"test_size must lie in [0, 1), got {test_size}")
    if impute not in (None, "median"):
        raise CTPluginError(f"impute must be None or 'median', got {impute!r}")
    n_given_train = None
    if test is not None:
        frame, n_given_train = _join_given_split(frame, test, target)
    if len(frame) < 4:
        raise CTPluginError(f"the frame has {len(frame)} rows; at least 4 are needed for a split")
    for flag, value in (("standardise", standardise), ("balance", balance)):
        if not isinstance(value, (bool, np.bool_)):
            raise CTPluginError(f"{flag} must be True or False, got {value!r}")

    features = [c for c in frame.columns if c != target]
    if not features:
        raise CTPluginError(f"the frame holds only the target column {target!r}: there are no features to learn from")
    categorical, continuous = _split_feature_kinds(frame, features, categorical, continuous)
    for column in (*immutable, *increase_only, *decrease_only, *protected, *(bounds or {})):
        if column not in features:
            raise CTPluginError(f"unknown feature {column!r}; valid names: {', '.join(map(str, features))}")

    labels, class_values = _encode_labels(frame[target], target)
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

    if n_given_train is None:
        train_idx, test_idx = _stratified_split(labels, test_size, seed)
    else:
        train_idx = np.random.default_rng(seed).permutation(n_given_train)
        test_idx = np.arange(n_given_train, len(frame))
    integer = _integer_features(frame, continuous, integer)
    data = frame[features].copy()
    _check_missing(data, continuous, categorical, impute, train_idx)

    columns: list[str] = []
    blocks: list[np.ndarray] = []
    is_onehot: list[bool] = []
    levels: dict[str, list[str]] = {}
    for feature in features:
        if feature in categorical:
            values = data[feature].astype(str).to_numpy()
            feature_levels = sorted(set(values.tolist()))
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
    _check_finite(raw, columns, where=f"dataset {name!r}")

    onehot = np.asarray(is_onehot)
    with np.errstate(over="ignore", invalid="ignore"):
        std = raw[train_idx].std(axis=0)
    if standardise:
        with np.errstate(over="ignore", invalid="ignore"):
            mean = np.where(onehot, 0.0, raw[train_idx].mean(axis=0))
            scale = np.where(onehot | (std == 0), 1.0, std)
            encoded = ((raw - mean) / scale).astype(np.float32)
        where = f"dataset {name!r} after standardising (magnitudes too large for float32)"
        _check_finite(encoded, columns, where=where)
        z_train = encoded[train_idx]
        lower = np.where(onehot, 0.0, np.minimum(-2.0, z_train.min(axis=0)))
        upper = np.where(onehot, 1.0, np.maximum(2.0, z_train.max(axis=0)))
    else:
        mean, scale = np.zeros(len(columns)), np.ones(len(columns))
        encoded = raw.astype(np.float32)
        _check_finite(encoded, columns, where=f"dataset {name!r} (magnitudes too large for float32)")
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
    )
    return spec.with_mutability(immutable, increase_only, decrease_only)


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
) -> DatasetSpec:
    """Build a spec from a numeric feature matrix and integer labels (all features continuous).

    ``standardise`` and ``balance`` are those of :func:`from_dataframe`.
    """
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
    )
    return dataclasses.replace(spec, target="target")


# ---------------------------------------------------------------------- helpers
def _join_given_split(frame: pd.DataFrame, test: pd.DataFrame, target: str) -> tuple[pd.DataFrame, int]:
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


def _integer_features(frame: pd.DataFrame, continuous: list[str], integer: Sequence[str] | None) -> list[str]:
    if integer is None:
        return [c for c in continuous if pd.api.types.is_integer_dtype(frame[c])]
    for column in integer:
        if column not in continuous:
            raise CTPluginError(f"integer feature {column!r} is not a continuous column; continuous: {continuous}")
    return list(integer)


def _split_feature_kinds(
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


def _encode_labels(series: pd.Series, target: str) -> tuple[np.ndarray, list[Any]]:
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


def _stratified_split(labels: np.ndarray, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    train, test = [], []
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        n_test = int(round(len(idx) * test_size))
        n_test = min(max(n_test, 1), len(idx) - 1) if len(idx) > 1 and test_size > 0 else 0
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def _check_columns(frame: pd.DataFrame) -> None:
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


def _check_missing(
    data: pd.DataFrame, continuous: list[str], categorical: list[str], impute: str | None, train_idx: np.ndarray
) -> None:
    counts = {c: int(n) for c, n in data.isna().sum().items() if n}
    if counts and impute is None:
        listing = ", ".join(f"{c} ({n})" for c, n in counts.items())
        raise CTPluginError(f"missing values in feature columns: {listing}; drop those rows or pass impute='median'")
    for column in categorical:
        if column in counts:
            data[column] = data[column].astype(object).where(data[column].notna(), "missing")


def _check_finite(values: np.ndarray, columns: Sequence[str], where: str) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        counts = bad.sum(axis=0)
        listing = ", ".join(f"{columns[j]} ({int(counts[j])})" for j in np.flatnonzero(counts))
        raise CTPluginError(f"non-finite values (NaN or inf) in {where}: {listing}")


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
