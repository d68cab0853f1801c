"""DiCE's answers back into our encoding: one counterfactual per factual.

All counterfactuals DiCE returned (in original units) are encoded at once; values DiCE left
alone come back rounded to its precision and are snapped to the factual; of several per factual
(``total_cfs > 1``) the nearest in L1 is kept. A factual without any keeps the factual and is
marked not found (the generator then counts it as not converged).

:class:`ResultMixin` is mixed into :class:`~ct_plugin.adapters.dice.generator.DiceGenerator`.
Part of the DiCE generator (:mod:`ct_plugin.adapters.dice.generator`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


class ResultMixin:
    """:meth:`_collect`, the result conversion of :meth:`~ct_plugin.adapters.dice.generator.DiceGenerator.search`."""

    def _collect(
        self, frames: list[pd.DataFrame], owners: list[int], factuals: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Encode all returned counterfactuals at once; keep the nearest (L1) per factual."""
        n = len(factuals)
        candidates = factuals.copy()
        found = np.zeros(n, dtype=bool)
        if not frames:
            return candidates.astype(np.float32), found
        encoded = self._spec.encode(pd.concat(frames, ignore_index=True)).astype(np.float64)
        owner = np.asarray(owners, dtype=np.int64)
        base = factuals[owner]
        # values DiCE left alone come back rounded to its precision: snap them to the factual
        idx = self._cont_idx
        if len(idx):
            tolerance = 0.5 * 10.0 ** (-self._precisions.astype(np.float64)) / self._spec.scale[idx] + 1e-5
            block = encoded[:, idx]
            encoded[:, idx] = np.where(np.abs(block - base[:, idx]) <= tolerance, base[:, idx], block)
        distance = np.abs(encoded - base).sum(axis=1)
        order = np.lexsort((distance, owner))
        first = order[np.unique(owner[order], return_index=True)[1]]
        candidates[owner[first]] = encoded[first]
        found[owner[first]] = True
        return candidates.astype(np.float32), found
