"""The comparison's own choice of method per table, made on validation figures alone.

``compare`` tunes every method on the table's validation split. Its *pick* is what a user who runs the
comparison on their own table is told to use there, judged on plausibility *and* cost:

1. the methods that ``tune`` recommended over vanilla on the table (their best configuration passed the
   rule and its validation IP reduction is significant);
2. of these, the ones whose validation cost of recourse (the protected search, as ``tune`` judges it) is
   not above vanilla's;
3. of these, the one with the largest validation IP reduction; vanilla when none remains.

The test split is never read to choose. The pick's test figures are those of the chosen method's own
runs, so picking trains nothing; its budget is the sum of the methods' tuning budgets.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

PICK = "pick"
"""The row name of the pick in the comparison's tables."""


@dataclass(frozen=True)
class Pick:
    """The method picked for one table (``method`` None: vanilla) and why, in one sentence."""

    dataset: str
    method: str | None
    reason: str


def _validation(info: Mapping[str, Any], key: str) -> float:
    value = info.get("validation", {}).get(key, float("nan"))
    return float(value) if value is not None else float("nan")


def pick_method(dataset: str, names: Sequence[str], tuned: Mapping[tuple[str, str], Mapping[str, Any]]) -> Pick:
    """The pick for ``dataset`` among the methods ``names`` from their ``tune`` outcomes (``tuned``)."""
    recommended = [n for n in names if (dataset, n) in tuned and tuned[(dataset, n)]["recommendation"] == "ct"]
    if not recommended:
        return Pick(dataset, None, "vanilla: `tune` recommended no method over vanilla on this table")
    cost = {n: _validation(tuned[(dataset, n)], "cost_reduction_pct") for n in recommended}
    cheap = [n for n in recommended if math.isfinite(cost[n]) and cost[n] >= 0]
    if not cheap:
        listed = ", ".join(f"`{n}` {cost[n]:.3g}%" for n in recommended)
        return Pick(dataset, None, "vanilla: every method `tune` recommended makes recourse costlier on the "
                                   f"validation split (cost reduction {listed})")
    ip = {n: _validation(tuned[(dataset, n)], "ip_reduction_pct") for n in cheap}
    best = max(cheap, key=lambda n: ip[n])
    dropped = [n for n in recommended if n not in cheap]
    return Pick(dataset, best, f"`{best}`: the largest validation IP reduction ({ip[best]:.3g}%, cost "
                               f"{cost[best]:.3g}%) of the {len(recommended)} method(s) `tune` recommended"
                               + (f", after dropping the costlier {', '.join(f'`{n}`' for n in dropped)}"
                                  if dropped else ""))


def pick_rows(rows: pd.DataFrame, picks: Sequence[Pick]) -> pd.DataFrame:
    """The pick's per-table rows: the picked method's row renamed, or a vanilla row (not chosen) where none.

    ``rows``: the comparison's per-table rows (``method_rows``); a vanilla row copies the table's first row
    with ``chosen`` False, so :func:`~ct_plugin.compare.report.as_chosen` gives it the baseline's figures.
    """
    out = []
    for pick in picks:
        table = rows[rows.data == pick.dataset]
        if table.empty:
            continue
        if pick.method is not None and pick.method in set(table.method):
            row = table[table.method == pick.method].iloc[0].copy()
            row["settings"] = {"method": pick.method, **dict(row["settings"])}
        else:
            row = table.iloc[0].copy()
            row["chosen"], row["settings"] = False, {"method": "vanilla"}
        row["method"] = PICK
        out.append(row)
    return pd.DataFrame(out).reset_index(drop=True) if out else rows.iloc[0:0].copy()
