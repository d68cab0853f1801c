"""Dataset options that build each paper dataset as the reference (TaijaData) built it.

``reproduce`` loads a dataset with :func:`reference_options` to compare with the paper's
tables; :func:`reference_difference` is the caveat to print beside a row where our data
still differs from the reference's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ct_plugin.data.synthetic import REFERENCE_CENTRE_SEED, SYNTHETIC, reference_centres
from ct_plugin.data.tabular import REFERENCE_BALANCED, TABLES


def reference_options(name: str) -> dict[str, Any]:
    """Loader options for ``name`` matching the reference: ``style="reference"`` for the synthetic
    sets, ``balance=True`` for the tables the reference balanced, scikit-learn's 8 features for
    California housing; ``{}`` otherwise."""
    if name in SYNTHETIC:
        return {"style": "reference"}
    options: dict[str, Any] = {"balance": True} if name in REFERENCE_BALANCED else {}
    if name == "california_housing":
        options["features"] = "sklearn"
    return options


def reference_difference(name: str, balance: bool = True) -> str:
    """How our ``name`` still differs from the reference's data (empty when drawn alike).

    ``balance`` says whether a table in :data:`REFERENCE_BALANCED` was loaded balanced.
    """
    if name in ("linearly_separable", "overlapping"):
        centres = reference_centres()
        distance = float(np.linalg.norm(centres[0] - centres[1]))
        return (
            f"blob centres drawn with numpy's generator (seed {REFERENCE_CENTRE_SEED}), {distance:.2f} apart; "
            "the reference's Julia draw of the same box gives other centres (about 10 apart)"
        )
    info = TABLES.get(name)
    if info is None:
        return ""
    parts = [info.reference_difference] if info.reference_difference else []
    if name in REFERENCE_BALANCED and not balance:
        parts.append("the reference class-balanced this table by undersampling; load with balance=True to match")
    return "; ".join(parts)
