"""The dataset spec: encoded arrays plus everything a counterfactual search must know.

A :class:`DatasetSpec` holds standardised, one-hot encoded float32 arrays for a
seeded train/test split, and the metadata that the search and the objective need:
which encoded columns form one-hot groups, the per-column mutability and domain
bounds, and the fitted standardiser so counterfactuals can be shown in original
units. :func:`from_dataframe` builds one from any pandas DataFrame.

This module holds the container itself (shape, mutability, encoding, ``save``/``load``).
Building a spec from a DataFrame or arrays lives in :mod:`ct_plugin.data.builder`
(``ct_plugin.from_dataframe``, ``ct_plugin.from_arrays``), the checks and preparation of a raw
frame in :mod:`ct_plugin.data.frame_prep`.
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ct_plugin.atomic import atomic_write
from ct_plugin.data.frame_prep import check_finite
from ct_plugin.data.split import resolve_size, stratified_carve
from ct_plugin.errors import CTPluginError, RunDirectoryError
from ct_plugin.untrusted import Fields, npz_shapes, read_json_object

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
    continuous features that hold whole numbers: :meth:`decode` rounds them. ``desired`` names
    the favourable class (a loan approved, no default), the target of recourse; None where the
    data have no favourable outcome (synthetic sets, digits).
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
    image_shape: tuple[int, ...] | None = None
    """``(H, W)`` of grey images, ``(C, H, W)`` of colour ones; None for tables."""
    integer: list[str] = field(default_factory=list)
    desired: str | None = None
    grouped_with: dict[str, list[str]] = field(default_factory=dict)
    """Encoded columns a categorical's one-hot group also takes (projected with its levels): empty but
    for a reproduction of a reference quirk (``uci_adult``'s ``onehot_groups=reference``)."""

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
    def desired_index(self) -> int | None:
        """Index of the :attr:`desired` class (None when the data have none)."""
        return None if self.desired is None else self.class_names.index(self.desired)

    def class_index(self, name: str | int) -> int:
        """Index of a class given by name (or index); a clear error naming the classes otherwise."""
        if isinstance(name, int) and not isinstance(name, bool) and 0 <= name < self.n_classes:
            return name
        if str(name) in self.class_names:
            return self.class_names.index(str(name))
        raise CTPluginError(f"dataset {self.name!r} has no class {name!r}; its classes: {', '.join(self.class_names)}")

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
        """Encoded column indices of each categorical feature's one-hot group (and of ``grouped_with``)."""
        return [self.columns_of(name) + [self.feature_names.index(column) for column in self.grouped_with.get(name, ())]
                for name in self.categorical]

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
        if protect and not self.protected:
            raise CTPluginError(
                f"protect: dataset {self.name!r} names no protected features, so there is nothing to protect; "
                "name them (--protected COLUMNS with --csv, protected=[...] in from_dataframe)"
            )
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

    def encode(self, frame: pd.DataFrame, unknown: str = "error") -> np.ndarray:
        """Encode a DataFrame in original units with this spec's fitted standardiser.

        ``unknown``: what a category level never seen in training does: ``"error"`` (the default)
        refuses it naming the column and the level; ``"ignore"`` encodes it as an all-zero one-hot
        group (scikit-learn's ``OneHotEncoder(handle_unknown="ignore")`` convention).
        """
        if unknown not in ("error", "ignore"):
            raise CTPluginError(f"unknown must be 'error' or 'ignore', got {unknown!r}")
        missing = [name for name in self.raw_feature_names if name not in frame.columns]
        if missing:
            raise CTPluginError(f"columns missing from the frame: {', '.join(missing)}")
        encoded = np.zeros((len(frame), self.n_features), dtype=np.float64)
        for name in self.raw_feature_names:
            columns = self.columns_of(name)
            if name in self.categorical:
                values = frame[name].astype(str).to_numpy()
                unseen = sorted(set(values.tolist()) - set(self.categorical[name]))
                if unseen and unknown == "error":
                    raise CTPluginError(f"column {name!r} holds level(s) {unseen[:5]} never seen in training; "
                                        f"known levels: {', '.join(self.categorical[name])}")
                for column, level in zip(columns, self.categorical[name], strict=True):
                    encoded[:, column] = values == level
            else:
                encoded[:, columns[0]] = pd.to_numeric(frame[name], errors="raise").to_numpy()
        check_finite(encoded, self.feature_names, where="frame to encode")
        return ((encoded - self.mean) / self.scale).astype(np.float32)

    def validation_split(self, size: int | float | None = None, seed: int = 0) -> DatasetSpec:
        """Carve a stratified, seeded validation split from the training rows.

        Returns a new spec whose train rows are the remaining training rows and whose test rows
        are the validation rows; the real test rows are not in it. ``size`` is a row count or a
        share in (0, 1); default ``min(5000, round(0.2 * n_train))``. The standardiser and the
        bounds stay this spec's, so models trained on either are comparable. The options record
        ``validation_of`` (this spec's options), ``validation_size`` and ``validation_seed``; the name
        is unchanged. See :func:`ct_plugin.data.split.stratified_carve`.
        """
        count = resolve_size(size, len(self.y_train))
        keep, carved = stratified_carve(self.y_train, count, seed)
        options = {**self.options, "validation_of": dict(self.options), "validation_size": count,
                   "validation_seed": seed}
        return dataclasses.replace(
            self, X_train=self.X_train[keep], y_train=self.y_train[keep], X_test=self.X_train[carved],
            y_test=self.y_train[carved], options=options,
        )

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
            "desired": self.desired,
            **({"grouped_with": self.grouped_with} if self.grouped_with else {}),  # only where set
            "n_train": len(self.y_train),
            "n_test": len(self.y_test),
        }

    def save(self, directory: str | Path) -> None:
        """Write ``dataset.json`` (metadata) and ``dataset.npz`` (arrays) into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write(directory / "dataset.json", json.dumps(self.metadata(), indent=2))
        atomic_write(directory / "dataset.npz", lambda handle: np.savez_compressed(
            handle, X_train=self.X_train, y_train=self.y_train, X_test=self.X_test, y_test=self.y_test))

    @classmethod
    def load(cls, directory: str | Path) -> DatasetSpec:
        """Read a spec written by :meth:`save`, checking every field and array (no pickles are loaded).

        A field of the wrong type, a length that does not match the features, a non-finite value, an
        array of the wrong shape or kind, or labels outside the classes raise :class:`RunDirectoryError`
        naming the file and the field.
        """
        directory = Path(directory)
        meta_path, array_path = directory / "dataset.json", directory / "dataset.npz"
        for path in (meta_path, array_path):
            if not path.is_file():
                raise RunDirectoryError(f"{directory} is incomplete: {path.name} is missing")
        fields = Fields(read_json_object(meta_path), meta_path)
        feature_names = fields.texts("feature_names")
        d = len(feature_names)
        if d == 0 or len(set(feature_names)) < d:
            raise fields.fail("feature_names", "a non-empty list of distinct names")
        class_names = [str(c) for c in fields.payload.get("class_names") or []]
        if not isinstance(fields.payload.get("class_names"), list) or len(class_names) < 2:
            raise fields.fail("class_names", "a list of at least two class names")
        categorical = fields.mapping("categorical")
        if not all(isinstance(v, list) and all(isinstance(x, str) for x in v) for v in categorical.values()):
            raise fields.fail("categorical", "a JSON object of feature -> list of levels")
        image_shape = fields.payload.get("image_shape")
        if image_shape is not None and not (isinstance(image_shape, list) and len(image_shape) in (2, 3)
                                            and all(isinstance(n, int) and n > 0 for n in image_shape)
                                            and int(np.prod(image_shape)) == len(feature_names)):
            raise fields.fail("image_shape", "null or [H, W] or [C, H, W] holding one pixel per feature")
        grouped_with = fields.mapping("grouped_with", optional=True)
        if any(name not in categorical or not isinstance(columns, list)
               or not all(isinstance(c, str) and c in feature_names for c in columns)
               for name, columns in grouped_with.items()):
            raise fields.fail("grouped_with", "an object mapping categorical features to lists of encoded column names")
        arrays = _read_arrays(array_path, d, len(class_names))
        spec = cls(
            name=fields.text("name"),
            feature_names=feature_names,
            continuous=fields.texts("continuous"),
            categorical={k: list(v) for k, v in categorical.items()},
            mutability=fields.choice("mutability", MUTABILITY_KINDS, fields.texts("mutability")),
            lower=fields.numbers("lower", d).astype(np.float32),
            upper=fields.numbers("upper", d).astype(np.float32),
            mean=fields.numbers("mean", d),
            scale=fields.numbers("scale", d, positive=True),
            class_names=class_names,
            target=fields.text("target"),
            protected=fields.texts("protected", optional=True),
            options=fields.mapping("options", optional=True),
            image_shape=tuple(image_shape) if image_shape else None,
            integer=fields.texts("integer", optional=True),
            desired=fields.text("desired", optional=True),
            grouped_with=grouped_with,
            **arrays,
        )
        if spec.desired is not None and spec.desired not in spec.class_names:
            raise fields.fail("desired", f"one of the classes {spec.class_names} or null")
        if len(spec.mutability) != d:
            raise fields.fail("mutability", f"a list of {d} mutabilities (one per feature)")
        try:
            for feature in [*spec.protected, *spec.integer]:
                spec.columns_of(feature)
            spec.onehot_groups  # noqa: B018 - every level's (and grouped_with's) column must exist
        except CTPluginError as exc:
            raise RunDirectoryError(f"{meta_path} names features that are not among its columns: {exc}") from None
        return spec

    def summary(self) -> str:
        """One line: sizes, classes, feature kinds."""
        return (
            f"{self.name}: {len(self.y_train)} train / {len(self.y_test)} test rows, "
            f"{self.n_features} encoded features ({len(self.continuous)} continuous, "
            f"{len(self.categorical)} categorical), {self.n_classes} classes"
        )


ARRAYS = {"X_train": 2, "y_train": 1, "X_test": 2, "y_test": 1}
"""The arrays of ``dataset.npz`` and their number of dimensions."""


def _read_arrays(path: Path, n_features: int, n_classes: int) -> dict[str, np.ndarray]:
    """The four arrays of ``dataset.npz``, their shapes, kinds and values checked before and after reading."""
    shapes = npz_shapes(path)  # refuses an archive too large to read before decompressing anything
    for name, ndim in ARRAYS.items():
        if name not in shapes:
            raise RunDirectoryError(f"{path} has no array {name!r} (it holds {sorted(shapes)})")
        shape, dtype = shapes[name]
        kind = "f" if name.startswith("X") else "i"
        kinds = ("f",) if kind == "f" else ("i", "u")
        if len(shape) != ndim or (ndim == 2 and shape[1] != n_features) or dtype.kind not in kinds:
            wanted = f"({'n, ' + str(n_features) if ndim == 2 else 'n'}) of {'floats' if kind == 'f' else 'integers'}"
            raise RunDirectoryError(f"{path}: {name} must be an array {wanted}, got shape {shape} of {dtype}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            data = {name: archive[name] for name in ARRAYS}
    except (ValueError, KeyError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise RunDirectoryError(f"{path} is not a valid dataset archive: {exc}") from None
    for split in ("train", "test"):
        X, y = data[f"X_{split}"], data[f"y_{split}"]
        if len(X) != len(y):
            raise RunDirectoryError(f"{path}: X_{split} has {len(X)} rows but y_{split} {len(y)} labels")
        if not np.isfinite(X).all():
            raise RunDirectoryError(f"{path}: X_{split} holds NaN or infinite values")
        if len(y) and (y.min() < 0 or y.max() >= n_classes):
            raise RunDirectoryError(f"{path}: y_{split} holds labels outside 0..{n_classes - 1}")
    if len(data["y_train"]) == 0:
        raise RunDirectoryError(f"{path}: the training split is empty")
    data["X_train"] = data["X_train"].astype(np.float32, copy=False)
    data["X_test"] = data["X_test"].astype(np.float32, copy=False)
    data["y_train"] = data["y_train"].astype(np.int64, copy=False)
    data["y_test"] = data["y_test"].astype(np.int64, copy=False)
    return data
