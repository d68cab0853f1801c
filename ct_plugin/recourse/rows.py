"""The people to explain: raw rows in original units, checked against a run's dataset spec and encoded.

Rows come as a DataFrame, one mapping (one person) or a list of mappings; the CLI reads them from
a CSV file (``--csv``), a JSON object (``--row``) or the run's own test rows (``--rejected``). Every
fault a person's row can have is one :class:`~ct_plugin.errors.CTPluginError` naming the column
(and the row and value where one is at fault); values outside the training range are warned
about, not refused (a person may lie outside the data the model saw).
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ct_plugin.data.spec import DatasetSpec
from ct_plugin.errors import CTPluginError


class OutOfRangeWarning(UserWarning):
    """A person's value lies outside the range of the training rows (explained anyway)."""


@dataclass
class People:
    """The rows to explain: as given (original units, the spec's feature order), encoded, and their ids."""

    frame: pd.DataFrame
    encoded: np.ndarray
    ids: list[Any]
    out_of_range: list[str]


def as_frame(rows: pd.DataFrame | Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """A DataFrame of ``rows`` (a DataFrame, one person's mapping, or a list of mappings)."""
    if isinstance(rows, pd.DataFrame):
        return rows.copy()
    if isinstance(rows, pd.Series):
        return rows.to_frame().T
    if isinstance(rows, Mapping):
        return pd.DataFrame([dict(rows)])
    if isinstance(rows, Sequence) and not isinstance(rows, str | bytes) and all(isinstance(r, Mapping) for r in rows):
        if not rows:
            raise CTPluginError("rows: no person to explain (an empty list)")
        return pd.DataFrame([dict(r) for r in rows])
    raise CTPluginError(
        f"rows must be a DataFrame, a mapping of feature -> value (one person) or a list of them, "
        f"not {type(rows).__name__}"
    )


def check_columns(frame: pd.DataFrame, spec: DatasetSpec, where: str = "rows") -> pd.DataFrame:
    """``frame``'s feature columns in the spec's order; missing, extra or misspelled columns named.

    The label column (``spec.target``) may be present and is ignored.
    """
    features = spec.raw_feature_names
    columns = [str(c) for c in frame.columns]
    if len(set(columns)) != len(columns):
        duplicated = sorted({c for c in columns if columns.count(c) > 1})
        raise CTPluginError(f"{where}: duplicate columns {duplicated}")
    extra = [c for c in columns if c not in features and c != spec.target]
    missing = [f for f in features if f not in columns]
    if extra or missing:
        parts = []
        for column in extra:
            close = difflib.get_close_matches(column, missing or features, n=1, cutoff=0.6)
            parts.append(f"{column!r} is not a feature" + (f" (did you mean {close[0]!r}?)" if close else ""))
        if missing:
            parts.append(f"missing feature(s): {', '.join(missing)}")
        raise CTPluginError(f"{where}: " + "; ".join(parts) + f". The model's features: {', '.join(features)}")
    frame = frame.copy()
    frame.columns = columns
    return frame[features].reset_index(drop=True)


def _level(value: Any) -> str:
    """A category value as the spec's level text (integral floats as integers: 1.0 -> "1")."""
    if isinstance(value, float | np.floating) and np.isfinite(value) and float(value).is_integer():
        return str(int(value))
    return str(value)


def typed_values(frame: pd.DataFrame, spec: DatasetSpec, ids: Sequence[Any], where: str = "rows") -> pd.DataFrame:
    """Numbers for continuous features and known levels for categorical ones; bad cells named."""
    out = {}
    for name in spec.raw_feature_names:
        column = frame[name]
        if name in spec.categorical:
            levels = spec.categorical[name]
            values = [_level(v) for v in column]
            for i, value in enumerate(values):
                if value not in levels:
                    raise CTPluginError(
                        f"{where}: column {name!r} of row {ids[i]!r} holds level {value!r}, never seen in "
                        f"training; known levels: {', '.join(levels)}"
                    )
            out[name] = values
        else:
            numbers = pd.to_numeric(column, errors="coerce")
            bad = [i for i, (raw, number) in enumerate(zip(column, numbers, strict=True))
                   if pd.isna(number) or not np.isfinite(number)]
            if bad:
                i = bad[0]
                value = column.iloc[i]
                value = value.item() if isinstance(value, np.generic) else value
                raise CTPluginError(
                    f"{where}: column {name!r} of row {ids[i]!r} holds {value!r}, not a finite number"
                    + (f" ({len(bad)} such rows)" if len(bad) > 1 else "")
                )
            out[name] = numbers.astype(np.float64).to_numpy()
    return pd.DataFrame(out)


def training_ranges(spec: DatasetSpec) -> dict[str, tuple[float, float]]:
    """Continuous feature -> (min, max) over the training rows, in original units."""
    ranges = {}
    for name in spec.continuous:
        column = spec.columns_of(name)[0]
        values = spec.X_train[:, column].astype(np.float64) * spec.scale[column] + spec.mean[column]
        ranges[name] = (float(values.min()), float(values.max())) if len(values) else (-np.inf, np.inf)
    return ranges


def out_of_range(frame: pd.DataFrame, spec: DatasetSpec, ids: Sequence[Any]) -> list[str]:
    """One message per continuous value outside the training range (warned, not refused)."""
    messages = []
    for name, (low, high) in training_ranges(spec).items():
        values = frame[name].to_numpy(dtype=np.float64)
        for i in np.flatnonzero((values < low - 1e-9) | (values > high + 1e-9)):
            messages.append(f"row {ids[i]!r}: {name} = {values[i]:g} lies outside the training range "
                            f"[{low:g}, {high:g}]")
    return messages


def read_people(
    rows: pd.DataFrame | Mapping[str, Any] | Sequence[Mapping[str, Any]],
    spec: DatasetSpec,
    ids: Sequence[Any] | None = None,
    where: str = "rows",
) -> People:
    """Check, type and encode the people to explain (see the module docstring)."""
    frame = as_frame(rows)
    if frame.empty:
        raise CTPluginError(f"{where}: no person to explain (no rows)")
    ids = list(frame.index) if ids is None else list(ids)
    frame = check_columns(frame, spec, where)
    typed = typed_values(frame, spec, ids, where)
    messages = out_of_range(typed, spec, ids)
    if messages:
        shown = "; ".join(messages[:3]) + (f"; and {len(messages) - 3} more" if len(messages) > 3 else "")
        warnings.warn(f"{where}: {shown} (explained anyway; the model saw no such values)", OutOfRangeWarning,
                      stacklevel=3)
    encoded = spec.encode(typed)
    typed.index = pd.Index(ids, name="person")
    return People(typed, encoded, ids, messages)


def run_test_rows(spec: DatasetSpec) -> tuple[pd.DataFrame, list[int]]:
    """The run's own test rows in original units, with their positions as ids."""
    frame = spec.decode(spec.X_test)
    return frame, list(range(len(frame)))
