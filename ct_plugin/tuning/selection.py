"""The selection rule of ``ct-plugin tune``: which grid configuration wins, and the fallback.

Every configuration is judged against the vanilla baseline trained on the same carved split:

1. **accuracy**: validation accuracy at most ``max_accuracy_drop`` (1 point) below vanilla's;
2. **maturity**: share of mature counterfactuals in training (the log's ``mature``) at least
   ``min_maturity`` (50%) on average over the last ``maturity_epochs`` (10) epochs;
3. **validity**: validation validity at most ``max_validity_drop`` (5 points) below vanilla's;
4. the IP reduction vs vanilla must be measurable (some valid counterfactuals).

Among the configurations passing all four, the one with the largest validation IP reduction
wins; ties go to the larger IP* reduction, then to the first in grid order. When none passes
(a flagged fallback), the one that violates the constraints least wins: the smallest sum of the
shortfalls beyond each threshold in percentage points (accuracy, maturity, validity), ties
broken as above; configurations whose IP cannot be measured come last.

**CT or vanilla.** Vanilla is always a candidate: it meets every constraint by definition and its
IP reduction is 0. CT is recommended only when a configuration passes and lowers validation IP
(reduction > 0); otherwise :attr:`Choice.recommend_ct` is False and ``tune`` writes a vanilla
``chosen.json`` (the best CT configuration is still reported, and ``always_ct`` writes it instead).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from ct_plugin.errors import CTPluginError

#: columns the rule reads from the criteria table
CRITERIA = (
    "accuracy", "vanilla_accuracy", "mature_last", "validity", "vanilla_validity",
    "ip_reduction_pct", "ip_star_reduction_pct",
)


@dataclass(frozen=True)
class SelectionRule:
    """Thresholds of the selection rule (fractions, not points: 0.01 is one point)."""

    max_accuracy_drop: float = 0.01
    min_maturity: float = 0.5
    maturity_epochs: int = 10
    max_validity_drop: float = 0.05

    def validate(self) -> SelectionRule:
        """Raise :class:`CTPluginError` naming an impossible threshold; return self."""
        for name in ("max_accuracy_drop", "min_maturity", "max_validity_drop"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
                raise CTPluginError(f"selection rule: {name} must be a fraction in [0, 1], got {value!r}")
        if not isinstance(self.maturity_epochs, int) or self.maturity_epochs < 1:
            value = self.maturity_epochs
            raise CTPluginError(f"selection rule: maturity_epochs must be a positive integer, got {value!r}")
        return self

    def describe(self) -> str:
        """The rule in one sentence."""
        return (
            f"best validation IP reduction among configurations with validation accuracy at most "
            f"{100 * self.max_accuracy_drop:g} point(s) below vanilla, in-training maturity >= "
            f"{100 * self.min_maturity:g}% on average over the last {self.maturity_epochs} epochs, and "
            f"validation validity at most {100 * self.max_validity_drop:g} points below vanilla; "
            "if none passes: the least violation of these constraints (flagged)"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (written into the chosen config's metadata)."""
        return asdict(self)


@dataclass(frozen=True)
class Choice:
    """The outcome of :func:`choose`."""

    index: int
    passed: bool
    message: str
    recommend_ct: bool = True

    @property
    def fallback(self) -> bool:
        """Whether no configuration passed and the least-violating one was taken."""
        return not self.passed


def _number(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number


def apply_rule(table: pd.DataFrame, rule: SelectionRule) -> pd.DataFrame:
    """The criteria table with per-criterion pass columns, ``violation_pts``, ``pass`` and ``reasons``."""
    missing = [c for c in CRITERIA if c not in table.columns]
    if missing:
        raise CTPluginError(f"criteria table lacks column(s) {missing}")
    out = table.copy()
    acc_short, mat_short, val_short, ok_rows, reasons = [], [], [], [], []
    for _, row in out.iterrows():
        acc, acc0 = _number(row["accuracy"]), _number(row["vanilla_accuracy"])
        mat, val, val0 = _number(row["mature_last"]), _number(row["validity"]), _number(row["vanilla_validity"])
        ip = _number(row["ip_reduction_pct"])
        # shortfalls beyond the thresholds, in points (nan figures count as a full 100-point miss)
        a = 100.0 * max(0.0, (acc0 - rule.max_accuracy_drop) - acc) if math.isfinite(acc) else 100.0
        m = 100.0 * max(0.0, rule.min_maturity - mat) if math.isfinite(mat) else 100.0
        v = 100.0 * max(0.0, (val0 - rule.max_validity_drop) - val) if math.isfinite(val) else 100.0
        why = []
        if a > 1e-9:
            why.append(f"accuracy {100 * acc:.2f}% vs vanilla {100 * acc0:.2f}%")
        if m > 1e-9:
            why.append(f"maturity {100 * mat:.2f}% < {100 * rule.min_maturity:g}%")
        if v > 1e-9:
            why.append(f"validity {100 * val:.2f}% vs vanilla {100 * val0:.2f}%")
        if not math.isfinite(ip):
            why.append("IP not measurable (no valid counterfactuals)")
        acc_short.append(a)
        mat_short.append(m)
        val_short.append(v)
        ok_rows.append(not why)
        reasons.append("; ".join(why))
    out["accuracy_ok"] = [s <= 1e-9 for s in acc_short]
    out["maturity_ok"] = [s <= 1e-9 for s in mat_short]
    out["validity_ok"] = [s <= 1e-9 for s in val_short]
    out["violation_pts"] = [a + m + v for a, m, v in zip(acc_short, mat_short, val_short, strict=True)]
    out["pass"] = ok_rows
    out["reasons"] = reasons
    return out


def _ranking_key(row: pd.Series, position: int) -> tuple[float, float, int]:
    ip, ip_star = _number(row["ip_reduction_pct"]), _number(row["ip_star_reduction_pct"])
    return (-ip if math.isfinite(ip) else math.inf, -ip_star if math.isfinite(ip_star) else math.inf, position)


def choose(judged: pd.DataFrame) -> Choice:
    """Pick a row of a table returned by :func:`apply_rule` (see the module docstring for the rule)."""
    if judged.empty:
        raise CTPluginError("no configuration to choose from: every grid cell failed")
    rows = list(judged.reset_index(drop=True).iterrows())
    passing = [(i, row) for i, row in rows if bool(row["pass"])]
    if passing:
        index = min(passing, key=lambda item: _ranking_key(item[1], item[0]))[0]
        row = judged.iloc[index]
        best = _number(row["ip_reduction_pct"])
        note = "" if best > 0 else (" (no passing configuration reduces IP on the validation split: "
                                    "vanilla recommended)")
        return Choice(index, True, f"{len(passing)} of {len(rows)} configurations pass; chosen: best IP "
                                   f"reduction {best:.2f}%{note}", recommend_ct=best > 0)

    def fallback_key(item: tuple[int, pd.Series]) -> tuple[int, float, tuple[float, float, int]]:
        i, row = item
        unmeasured = int(not math.isfinite(_number(row["ip_reduction_pct"])))
        return (unmeasured, round(float(row["violation_pts"]), 9), _ranking_key(row, i))

    index = min(rows, key=fallback_key)[0]
    row = judged.iloc[index]
    return Choice(index, False, f"NO configuration passes the selection rule; FALLBACK: the least violation "
                                f"({float(row['violation_pts']):.2f} points: {row['reasons']}); vanilla "
                                "recommended", recommend_ct=False)
