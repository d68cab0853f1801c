"""How comparisons are worded: metric names per protocol, and which direction is better for each metric."""

from __future__ import annotations

import math

import pandas as pd

METRIC_NAMES = {
    "validity": "validity (argmax = y+)",
    "ip": "IP (mean L2 to X+)",
    "ip_star": "IP* (MMD^2)",
    "redundancy": "redundancy",
    "mean_steps": "mean search steps",
    "seconds_per_cf": "seconds per CF",
    "cost": "cost, protected (L1)",
    "validity_protected": "validity, protected (argmax = y+)",
}
"""Display names under the ``strict`` protocol: its validities are the share of counterfactuals the model
classifies as the target (argmax), whatever tau the search stopped at."""
PAPER_METRIC_NAMES = {
    **METRIC_NAMES,
    "validity": "validity (p(y+) >= 0.5)",
    "validity_protected": "validity, protected (p(y+) >= 0.5)",
    "ip": "IP (mean L1 to X+, valid CFs)",
    "ip_star": "IP* (MMD^2, length-scale 5, valid CFs)",
    "ip_star_0.5": "IP* (MMD^2, length-scale 0.5, valid CFs)",
    "cost": "cost, protected (L1, valid CFs)",
    "cost_mad": "cost, protected (L1 weighted by 1/MAD, valid CFs)",
}
"""Display names under the ``paper`` protocol."""
LOWER_IS_BETTER = frozenset({"ip", "ip_star", "ip_star_0.5", "cost", "cost_mad", "redundancy", "mean_steps",
                             "seconds_per_cf"})
HIGHER_IS_BETTER = frozenset({"validity", "validity_protected"})


def metric_names(protocol: str, protected: bool = True) -> dict[str, str]:
    """Display names of the metrics under ``protocol``.

    ``protected``: whether the dataset names protected features, which the cost search freezes. Without
    any, that search freezes nothing extra and its rows are not called protected: ``cost (L1, valid CFs)``,
    ``validity, cost search (...)`` (the cost search runs at its own tau, 0.5 by default).
    """
    names = PAPER_METRIC_NAMES if protocol == "paper" else METRIC_NAMES
    if protected:
        return names
    return {**names, "cost": names["cost"].replace(", protected", ""),
            "cost_mad": names.get("cost_mad", "cost_mad").replace(", protected", ""),
            "validity_protected": names["validity_protected"].replace(", protected", ", cost search")}


def verdict(metric: str, reduction_pct: float, points: float, significant: bool) -> str:
    """``better`` / ``worse`` for the compared run on ``metric``, ``~`` when not significant or neutral.

    ``reduction_pct`` is the run's reduction against the reference (positive = lower); ``points``
    the change in percentage points (positive = higher), used for the higher-is-better metrics.
    """
    if not significant:
        return "~"
    if metric in LOWER_IS_BETTER and math.isfinite(reduction_pct) and reduction_pct != 0:
        return "better" if reduction_pct > 0 else "worse"
    if metric in HIGHER_IS_BETTER and math.isfinite(points) and points != 0:
        return "better" if points > 0 else "worse"
    return "~"


def change_cell(metric: str, c: pd.Series) -> str:
    """One comparison as text, e.g. ``12.5% lower* better`` or ``-9.6 pts* worse``.

    Lower-is-better metrics show the reduction (positive = lower, the paper's sign); the validities
    show the change in percentage points (positive = higher). ``*`` marks a significant difference.
    """
    star = "*" if c["significant"] else ""
    points = 100.0 * (float(c["run_mean"]) - float(c["reference_mean"]))
    reduction = float(c["reduction_pct"])
    word = verdict(metric, reduction, points, bool(c["significant"]))
    if metric in HIGHER_IS_BETTER:
        return f"{points:+.1f} pts{star} {word}" if math.isfinite(points) else "-"
    if not math.isfinite(reduction):
        return "-"
    side = "lower" if reduction >= 0 else "higher"
    return f"{abs(reduction):.1f}% {side}{star} {word}"
