"""Where the cost column comes from: CT's effect on the model against the effect of protecting the feature.

The paper's cost column compares ``ct_protected`` with the baseline, both searched with the protected
feature frozen. Two things move it: CT itself (its plausible counterfactuals lie deeper in the target
class, so further from the factual) and the protection (a model taught not to lean on the frozen
feature needs smaller moves of the others). ``ct_free`` is searched the same way, so the two can be
told apart from the evaluations a reproduction already holds: no extra training.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ct_plugin.evaluation.report import fmt, fmt_pm, markdown_table
from ct_plugin.reproduce.tables import Frames, comparison_rows, seed_stats, stats_cell

#: how the section names each evaluation source (settings)
SOURCE_LABELS = {"tune": "`tune`", "tune_ct": "`tune`'s best CT (vanilla recommended)", "paper": "Table C.1"}


def _seed_values(parts: list[dict[str, pd.DataFrame]]) -> dict[str, list[float]]:
    """Per seed: the three models' mean protected cost, validity at tau 0.5 and the protected feature's IG share."""
    values: dict[str, list[float]] = {k: [] for k in ("base", "free", "protected", "protection", "validity_base",
                                                      "validity_protected", "ig_base", "ig_protected", "ig_uniform")}
    for part in parts:
        comparison = part["comparison"]
        cost = comparison[comparison.metric == "cost"].set_index("run")
        validity = comparison[comparison.metric == "validity_protected"].set_index("run")
        if not {"ct_free", "ct_protected"} <= set(cost.index):
            continue
        free, protected = float(cost.run_mean["ct_free"]), float(cost.run_mean["ct_protected"])
        values["base"].append(float(cost.reference_mean["ct_free"]))
        values["free"].append(free)
        values["protected"].append(protected)
        values["protection"].append(100.0 * (1.0 - protected / free) if free > 0 else float("nan"))
        if "ct_protected" in validity.index:
            values["validity_base"].append(float(validity.reference_mean["ct_protected"]))
            values["validity_protected"].append(float(validity.run_mean["ct_protected"]))
        attribution = part.get("attribution")
        if attribution is not None and len(attribution):
            share = attribution.set_index("run").protected_share
            if {"baseline", "ct_protected"} <= set(share.index):
                values["ig_base"].append(float(share["baseline"]))
                values["ig_protected"].append(float(share["ct_protected"]))
                values["ig_uniform"].append(float(attribution.uniform_share.iloc[0]))
    return values


def _mean(values: list[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def cost_rows(frames: Frames, datasets: Sequence[str], sources: Sequence[str],
              kept_vanilla: Sequence[str] = ()) -> pd.DataFrame:
    """One row per (settings, dataset): the three models' protected cost and the two effects behind the column.

    For the ``tune`` settings, a dataset where ``tune`` recommends vanilla shows its best CT configuration
    (the ``tune_ct`` runs): comparing vanilla with itself would say nothing about CT.
    """
    rows: list[dict[str, Any]] = []
    for source in sources:
        for dataset in datasets:
            used = "tune_ct" if source == "tune" and dataset in kept_vanilla else source
            parts = [f["paper"] for (d, v, s, _), f in sorted(frames.items())
                     if (d, v, s) == (dataset, "", used) and "paper" in f]
            values = _seed_values(parts)
            if not values["free"]:
                continue
            free_stats = seed_stats(comparison_rows(parts, "cost", "ct_free"))
            protected_stats = seed_stats(comparison_rows(parts, "cost", "ct_protected"))
            protection = [v for v in values["protection"] if np.isfinite(v)]
            rows.append({
                "source": used, "data": dataset,
                "cost_base": _mean(values["base"]), "cost_free": _mean(values["free"]),
                "cost_protected": _mean(values["protected"]),
                "ct_unprotected_pct": free_stats["mean"], "ct_protected_pct": protected_stats["mean"],
                "protection_pct": _mean(protection),
                "protection_sd": float(np.std(protection, ddof=1)) if len(protection) > 1 else float("nan"),
                "ct_unprotected": stats_cell(free_stats), "ct_protected": stats_cell(protected_stats),
                "validity_base": _mean(values["validity_base"]),
                "validity_protected": _mean(values["validity_protected"]),
                "ig_base": _mean(values["ig_base"]), "ig_protected": _mean(values["ig_protected"]),
                "ig_uniform": _mean(values["ig_uniform"]),
            })
    return pd.DataFrame(rows)


def _shown(rows: pd.DataFrame) -> pd.DataFrame:
    shown = []
    for r in rows.itertuples():
        protection = fmt(r.protection_pct) if not np.isfinite(r.protection_sd) else fmt_pm(r.protection_pct,
                                                                                            r.protection_sd)
        shown.append({
            "settings": SOURCE_LABELS.get(r.source, r.source), "data": r.data,
            "cost base / ct_free / ct_protected": f"{fmt(r.cost_base)} / {fmt(r.cost_free)} / "
                                                  f"{fmt(r.cost_protected)}",
            "CT unprotected (ct_free vs base)": r.ct_unprotected,
            "protection alone (ct_protected vs ct_free)": protection,
            "the cost column (ct_protected vs base)": r.ct_protected,
            "validity at tau 0.5 base → ct_protected": f"{fmt(r.validity_base)} → {fmt(r.validity_protected)}",
            "IG share of the protected feature base → ct_protected (uniform)":
                f"{fmt(r.ig_base)} → {fmt(r.ig_protected)} ({fmt(r.ig_uniform)})",
        })
    return pd.DataFrame(shown)


def _summary(rows: pd.DataFrame) -> list[str]:
    """One measured sentence per settings: the averages of the two effects and the column they add up to."""
    lines = []
    for source in dict.fromkeys(s if s != "tune_ct" else "tune" for s in rows.source):
        part = rows[rows.source.isin([source, "tune_ct"] if source == "tune" else [source])]
        raises = part[part.ct_unprotected_pct < 0].data.tolist()
        lines.append(
            f"* {SOURCE_LABELS[source]} settings, {len(part)} tables (cost reductions, positive = lower): CT "
            f"unprotected averages {fmt(float(part.ct_unprotected_pct.mean()))}% against the baseline (it raises "
            f"the cost on {len(raises)}: {', '.join(raises) or 'none'}); protecting the feature averages "
            f"{fmt(float(part.protection_pct.mean()))}% against ct_free; the cost column averages "
            f"{fmt(float(part.ct_protected_pct.mean()))}%.")
    return lines


def cost_section(frames: Frames, datasets: Sequence[str], sources: Sequence[str],
                 kept_vanilla: Sequence[str] = ()) -> tuple[list[str], pd.DataFrame]:
    """The report's cost-decomposition section (Markdown lines) and its raw rows (for a CSV)."""
    rows = cost_rows(frames, datasets, sources, kept_vanilla)
    if rows.empty:
        return [], rows
    return ["## Where the cost column comes from (paper protocol, mean over seeds)", "",
            "All three models searched with the protected feature frozen at tau 0.5 (valid counterfactuals "
            "only). `ct_free` was trained with nothing immutable, so `ct_free` against the baseline is CT's "
            "effect on the model alone, and `ct_protected` against `ct_free` is what protecting the feature in "
            "training adds (reduction of the mean cost, ± sd over seeds). The paper's column is the "
            "combination. The last column is the feature's share of the integrated gradients (seed mean): "
            "protection can only lower the cost where the baseline leans on the feature.", "",
            *_summary(rows), "", markdown_table(_shown(rows)), ""], rows
