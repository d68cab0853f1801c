"""Our dataset as a CARLA ``Data``: :class:`SpecData`, in CARLA's own conventions.

Continuous features are min-max scaled to [0, 1] and binary categoricals are one column
(``OneHotEncoder(drop="if_binary")``), label column included. The min-max range of each
continuous feature is the spec's domain bound, so CARLA's clamping to [0, 1] is exactly our
domain constraint. The map between CARLA's space and our standardised encoding is affine and
exact both ways (:meth:`SpecData.to_carla`, :meth:`SpecData.from_carla`). :func:`check_spec`
refuses what CARLA 0.0.5 cannot represent.

Part of :mod:`ct_plugin.adapters.carla.wrappers` (which re-exports it). Importing this module
imports CARLA (through :func:`~ct_plugin.adapters.carla.compat.import_carla`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder

from ct_plugin.adapters.carla.compat import import_carla
from ct_plugin.data.spec import DatasetSpec
from ct_plugin.errors import CTPluginError

carla = import_carla()

RESERVED_TARGET = "y"


def check_spec(spec: DatasetSpec) -> None:
    """Refuse what CARLA 0.0.5 cannot represent: multiclass labels and a label column named ``y``."""
    if not isinstance(spec, DatasetSpec):
        raise CTPluginError(f"expected a ct_plugin DatasetSpec, got {type(spec).__name__}")
    if spec.n_classes != 2:
        raise CTPluginError(
            f"dataset {spec.name!r} has {spec.n_classes} classes; CARLA supports binary classification "
            "only (class 1 = the desired outcome)"
        )
    if spec.target == RESERVED_TARGET:
        raise CTPluginError(
            f"dataset {spec.name!r} has its label column named {RESERVED_TARGET!r}; CARLA 0.0.5 uses a "
            f"temporary column of that name internally and silently drops it; rename the label, e.g. "
            f"dataclasses.replace(spec, target='label')"
        )
    if spec.image_shape is not None:
        raise CTPluginError(f"dataset {spec.name!r} is an image dataset; CARLA's methods are for tabular data")


class NoCategoricals:
    """The encoder of a dataset without categorical features (scikit-learn cannot fit zero columns)."""

    def get_feature_names(self, input_features: Any = None) -> list[str]:
        return []

    get_feature_names_out = get_feature_names

    def transform(self, frame: Any) -> np.ndarray:
        return np.zeros((len(frame), 0))

    def inverse_transform(self, frame: Any) -> np.ndarray:
        return np.zeros((len(frame), 0))


class SpecData(carla.data.Data):
    """A :class:`DatasetSpec` as a CARLA ``Data`` (see the module docstring for the conventions).

    Args:
        spec: a binary dataset spec.
        swapped: present class 0 as the desired class 1 (labels flipped), for searches towards class 0.
        rows: which rows make up ``df``: ``"train"`` (default; nothing of the test split leaks into
            autoencoders fitted on it) or ``"all"`` (train and test, as CARLA's catalog does).
    """

    def __init__(self, spec: DatasetSpec, *, swapped: bool = False, rows: str = "train"):
        check_spec(spec)
        if rows not in ("train", "all"):
            raise CTPluginError(f"rows must be 'train' or 'all', got {rows!r}")
        self.spec = spec
        self.swapped = bool(swapped)
        self.name = spec.name
        self._identity_encoding = False
        self._rows = rows
        self._build_map()
        self._build_sklearn()
        self._frames: dict[str, pd.DataFrame] = {}

    # ------------------------------------------------------------------ the map
    def _build_map(self) -> None:
        spec = self.spec
        d = spec.n_features
        columns: list[str] = []
        pick: list[int] = []
        gain: list[float] = []
        offset: list[float] = []
        ranges: dict[str, tuple[float, float]] = {}
        matrix: list[np.ndarray] = []
        bias = np.zeros(d)
        for feature in spec.raw_feature_names:
            idx = spec.columns_of(feature)
            if feature in spec.categorical:
                levels = spec.categorical[feature]
                kept = [1] if len(levels) == 2 else list(range(len(levels)))
                for position in kept:
                    column = np.zeros(d)
                    column[idx[position]] = 1.0
                    if len(levels) == 2:
                        column[idx[0]] = -1.0
                        bias[idx[0]] = 1.0
                    columns.append(f"{feature}_{levels[position]}")
                    pick.append(idx[position])
                    gain.append(1.0)
                    offset.append(0.0)
                    matrix.append(column)
            else:
                j = idx[0]
                low, high = float(spec.lower[j]), float(spec.upper[j])
                if not (np.isfinite(low) and np.isfinite(high) and high > low):
                    values = spec.X_train[:, j]
                    low, high = float(values.min()), float(values.max())
                    if high <= low:
                        high = low + 1.0
                column = np.zeros(d)
                column[j] = high - low
                bias[j] = low
                columns.append(feature)
                pick.append(j)
                gain.append(high - low)
                offset.append(low)
                ranges[feature] = (low, high)
                matrix.append(column)
        self.columns: list[str] = columns
        self._pick = np.asarray(pick)
        self._gain = np.asarray(gain)
        self._offset = np.asarray(offset)
        self._matrix = np.stack(matrix, axis=1)  # (d_spec, d_carla): z = u @ matrix.T + bias
        self._bias = bias
        self._ranges = ranges

    def _build_sklearn(self) -> None:
        spec = self.spec
        continuous = self.continuous
        if continuous:
            low = np.array([self._ranges[f][0] for f in continuous])
            high = np.array([self._ranges[f][1] for f in continuous])
            j = [spec.columns_of(f)[0] for f in continuous]
            mean, scale = spec.mean[j], spec.scale[j]
            bounds = pd.DataFrame(np.stack([low * scale + mean, high * scale + mean]), columns=continuous)
            self.scaler = MinMaxScaler().fit(bounds)
        else:
            self.scaler = MinMaxScaler()
        if self.categorical:
            categories = [list(spec.categorical[f]) for f in self.categorical]
            first = pd.DataFrame({f: [spec.categorical[f][0]] for f in self.categorical})
            self.encoder = OneHotEncoder(
                categories=categories, drop="if_binary", handle_unknown="error", sparse_output=False
            ).fit(first)
            names = [str(n) for n in self.encoder.get_feature_names_out(self.categorical)]
            expected = [c for c in self.columns if c not in self.continuous]
            if names != expected:  # pragma: no cover - a guard on our own naming
                raise CTPluginError(f"internal: CARLA encoder names {names} differ from {expected}")
        else:
            self.encoder = NoCategoricals()

    # ------------------------------------------------------------ conversions
    def to_carla(self, X: np.ndarray | torch.Tensor) -> np.ndarray:
        """Our standardised encoding (n, d_spec) -> CARLA's space (n, d_carla), exact."""
        Z = X.detach().cpu().numpy() if torch.is_tensor(X) else np.asarray(X)
        Z = Z.astype(np.float64)
        if Z.ndim != 2 or Z.shape[1] != self.spec.n_features:
            raise CTPluginError(f"expected an array of shape (n, {self.spec.n_features}); got {Z.shape}")
        return (Z[:, self._pick] - self._offset) / self._gain

    def from_carla(self, U: np.ndarray | pd.DataFrame) -> np.ndarray:
        """CARLA's space (n, d_carla; a frame may hold extra columns) -> our standardised encoding."""
        if isinstance(U, pd.DataFrame):
            missing = [c for c in self.columns if c not in U.columns]
            if missing:
                raise CTPluginError(f"CARLA frame lacks the columns {missing}")
            U = U[self.columns].to_numpy(dtype=np.float64)
        U = np.asarray(U, dtype=np.float64)
        if U.ndim != 2 or U.shape[1] != len(self.columns):
            raise CTPluginError(f"expected an array of shape (n, {len(self.columns)}); got {U.shape}")
        return U @ self._matrix.T + self._bias

    def torch_map(self, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """(matrix, bias) as float32 tensors: ``z = u @ matrix.T + bias`` (differentiable)."""
        return (
            torch.as_tensor(self._matrix, dtype=torch.float32, device=device),
            torch.as_tensor(self._bias, dtype=torch.float32, device=device),
        )

    def labels(self, y: np.ndarray) -> np.ndarray:
        """Our labels as CARLA sees them in this view (flipped when swapped)."""
        y = np.asarray(y).astype(np.int64)
        return 1 - y if self.swapped else y

    def frame(self, X: np.ndarray | torch.Tensor, y: np.ndarray | None = None) -> pd.DataFrame:
        """A CARLA frame (fresh 0..n-1 index) of encoded rows, with the label column when ``y`` is given."""
        frame = pd.DataFrame(self.to_carla(X), columns=self.columns)
        if y is not None:
            frame[self.target] = self.labels(y)
        return frame

    # ------------------------------------------------------------ CARLA's API
    @property
    def categorical(self) -> list[str]:
        return list(self.spec.categorical)

    @property
    def continuous(self) -> list[str]:
        return list(self.spec.continuous)

    @property
    def immutables(self) -> list[str]:
        spec = self.spec
        return [f for f in spec.raw_feature_names if all(spec.mutability[j] == "none" for j in spec.columns_of(f))]

    @property
    def target(self) -> str:
        return self.spec.target

    def _cached(self, key: str) -> pd.DataFrame:
        if key not in self._frames:
            spec = self.spec
            if key == "train":
                self._frames[key] = self.frame(spec.X_train, spec.y_train)
            elif key == "test":
                self._frames[key] = self.frame(spec.X_test, spec.y_test)
            else:
                X = np.concatenate([spec.X_train, spec.X_test])
                self._frames[key] = self.frame(X, np.concatenate([spec.y_train, spec.y_test]))
        return self._frames[key]

    @property
    def df(self) -> pd.DataFrame:
        return self._cached(self._rows).copy()

    @property
    def df_train(self) -> pd.DataFrame:
        return self._cached("train").copy()

    @property
    def df_test(self) -> pd.DataFrame:
        return self._cached("test").copy()

    def transform(self, df: pd.DataFrame) -> pd.DataFrame:
        """Original units (raw categorical levels) -> CARLA's space; the label column is kept."""
        out = pd.DataFrame(self.to_carla(self.spec.encode(df)), columns=self.columns, index=df.index)
        if self.target in df.columns:
            out[self.target] = df[self.target].to_numpy()
        return out

    def inverse_transform(self, df: pd.DataFrame) -> pd.DataFrame:
        """CARLA's space -> original units (categoricals as levels); the label column is kept."""
        out = self.spec.decode(self.from_carla(df))
        out.index = df.index
        if self.target in df.columns:
            out[self.target] = df[self.target].to_numpy()
        return out
