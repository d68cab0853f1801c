"""One factual as one DiCE query: the query frame, what may vary, the per-query box, the call.

* the factual decoded to original units, as DiCE expects it (integral features rounded);
* ``features_to_vary``: every feature that is not immutable;
* the per-query box of every continuous feature in original units: the domain bounds (the
  data's range where a bound is infinite), widened to hold the factual, one-sided from the
  factual's value for monotone features (increase-only / decrease-only, which DiCE does
  not know), passed as ``permitted_range``, or for the gradient method (whose
  ``permitted_range`` handling de-normalises with the wrong range in 0.12) set directly as its
  projection bounds;
* one ``generate_counterfactuals`` call with ``desired_class=1`` and the 0.5 threshold.

:class:`QueryMixin` is mixed into :class:`~ct_plugin.adapters.dice.generator.DiceGenerator`; it
reads what :class:`~ct_plugin.adapters.dice.wrappers._FitMixin` set up at fit time. Part of the
DiCE generator (:mod:`ct_plugin.adapters.dice.generator`, which re-exports these names).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ct_plugin.constraints import DECREASE, INCREASE, NONE, SearchConstraints


class QueryMixin:
    """The per-query helpers of :meth:`~ct_plugin.adapters.dice.generator.DiceGenerator.search`."""

    def _queries(self, factuals: np.ndarray) -> pd.DataFrame:
        """Factuals in original units as DiCE expects them (integral features rounded)."""
        frame = self._spec.decode(factuals)
        for name, integral in zip(self._cont_names, self._integral, strict=True):
            if integral:
                frame[name] = np.round(frame[name].to_numpy()).astype(np.int64)
        return frame[self._features]

    def _features_to_vary(self, codes: np.ndarray) -> list[str]:
        spec = self._spec
        return [name for name in self._features if not all(codes[j] == NONE for j in spec.columns_of(name))]

    def _ranges(
        self, queries: pd.DataFrame, constraints: SearchConstraints, codes: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-query [low, high] of every continuous feature in original units (monotone ones one-sided)."""
        spec, idx = self._spec, self._cont_idx
        if not len(idx):
            empty = np.zeros((len(queries), 0))
            return empty, empty
        q = queries[self._cont_names].to_numpy(dtype=np.float64)
        lower = constraints.lower.cpu().double().numpy()[idx] * spec.scale[idx] + spec.mean[idx]
        upper = constraints.upper.cpu().double().numpy()[idx] * spec.scale[idx] + spec.mean[idx]
        lower = np.where(np.isfinite(lower), lower, self._data_min)
        upper = np.where(np.isfinite(upper), upper, self._data_max)
        low = np.minimum(lower, q)
        high = np.maximum(upper, q)
        code = codes[idx]
        low = np.where((code == INCREASE) | (code == NONE), q, low)
        high = np.where((code == DECREASE) | (code == NONE), q, high)
        integral = self._integral
        low = np.where(integral, np.ceil(low - 1e-9), low)
        high = np.where(integral, np.floor(high + 1e-9), high)
        return low, high

    def _ask(
        self, query: pd.DataFrame, varying: list[str], low: np.ndarray, high: np.ndarray, threshold: float
    ) -> pd.DataFrame | None:
        """One DiCE call for one query; its counterfactuals in original units (or None)."""
        explainer = self._explainer
        options = dict(self._options)
        features_to_vary: Any = "all" if len(varying) == len(self._features) else varying
        if self.method == "gradient":
            self._set_gradient_box(explainer, low, high)
            permitted = None
        else:
            permitted = {
                name: [plain_value(low[k], self._integral[k]), plain_value(high[k], self._integral[k])]
                for k, name in enumerate(self._cont_names)
                if name in varying
            }
        result = explainer.generate_counterfactuals(
            query,
            total_CFs=self.total_cfs,
            desired_class=1,
            permitted_range=permitted or None,
            features_to_vary=features_to_vary,
            stopping_threshold=threshold,
            posthoc_sparsity_param=self.posthoc_sparsity_param,
            verbose=False,
            **options,
        )
        example = result.cf_examples_list[0]
        frame = example.final_cfs_df_sparse if self.posthoc_sparsity_param else example.final_cfs_df
        if frame is None or not len(frame):
            return None
        return frame[self._features].reset_index(drop=True)

    def _set_gradient_box(self, explainer: Any, low: np.ndarray, high: np.ndarray) -> None:
        """Per-query projection box of DiCE's gradient method, in its min-max space.

        Passing ``permitted_range`` would make dice-ml 0.12 de-normalise with that range
        instead of the data range when it rounds, so the box is set directly; continuous
        columns come first in DiCE's one-hot layout.
        """
        span = self._data_max - self._data_min
        minx = np.array(explainer.minx, dtype=np.float64, copy=True)
        maxx = np.array(explainer.maxx, dtype=np.float64, copy=True)
        cont = explainer.encoded_continuous_feature_indexes
        minx[0, cont] = (low - self._data_min) / span
        maxx[0, cont] = (high - self._data_min) / span
        explainer.minx, explainer.maxx = minx, maxx


def plain_value(value: float, integral: bool) -> float | int:
    return int(np.rint(value)) if integral else float(value)
