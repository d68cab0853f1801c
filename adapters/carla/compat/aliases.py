"""Restored aliases that newer Python, numpy, scikit-learn and pandas releases removed.

``np.float``, ``np.int``, ``np.bool``, ``np.object``, ``np.float_``, ``np.infty``, ``np.NaN``;
``collections.Iterable`` and friends; ``OneHotEncoder.get_feature_names``; ``DataFrame.append``.
An alias is only added when the name is missing, and it behaves as the removed name did.

One of the fix families applied by :mod:`ct_plugin.adapters.carla.compat` before CARLA is
imported (fixes ``collections_aliases``, ``numpy_aliases``, ``sklearn_get_feature_names`` and
``pandas_append``); each returns whether it changed something.
"""

from __future__ import annotations

import collections
import collections.abc
import warnings
from typing import Any

_NUMPY_ALIASES = {
    "float": float,
    "int": int,
    "bool": bool,
    "object": object,
    "float_": "float64",
    "infty": "inf",
    "NaN": "nan",
}
_COLLECTIONS_ALIASES = ("Iterable", "Mapping", "MutableMapping", "Sequence", "Callable", "Hashable", "Set")


def fix_collections_aliases() -> bool:
    changed = False
    for name in _COLLECTIONS_ALIASES:
        if not hasattr(collections, name):
            setattr(collections, name, getattr(collections.abc, name))
            changed = True
    return changed


def fix_numpy_aliases() -> bool:
    import numpy as np

    changed = False
    for name, value in _NUMPY_ALIASES.items():
        if name in np.__dict__:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            still_provided = hasattr(np, name)  # numpy 1.x, possibly with a deprecation warning
        if still_provided:
            continue
        setattr(np, name, getattr(np, value) if isinstance(value, str) else value)
        changed = True
    return changed


def fix_sklearn_get_feature_names() -> bool:
    from sklearn.preprocessing import OneHotEncoder

    if hasattr(OneHotEncoder, "get_feature_names"):
        return False

    def get_feature_names(self: OneHotEncoder, input_features: Any = None) -> Any:
        """Removed in scikit-learn 1.2; alias of ``get_feature_names_out`` restored for CARLA."""
        if input_features is not None:
            input_features = [str(f) for f in input_features]
        return self.get_feature_names_out(input_features)

    OneHotEncoder.get_feature_names = get_feature_names
    return True


def fix_pandas_append() -> bool:
    import pandas as pd

    if hasattr(pd.DataFrame, "append"):
        return False

    def append(
        self: pd.DataFrame,
        other: Any,
        ignore_index: bool = False,
        verify_integrity: bool = False,
        sort: bool = False,
    ) -> pd.DataFrame:
        """Removed in pandas 2; restored (via ``pd.concat``) for actionable-recourse."""
        if isinstance(other, dict | pd.Series):
            other = pd.DataFrame([other])
        elif isinstance(other, list) and other and not isinstance(other[0], pd.DataFrame):
            other = pd.DataFrame(other)
        others = other if isinstance(other, list) else [other]
        return pd.concat([self, *others], ignore_index=ignore_index, verify_integrity=verify_integrity, sort=sort)

    pd.DataFrame.append = append
    return True
