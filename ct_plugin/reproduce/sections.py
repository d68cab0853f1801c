"""The report's later sections: ablations beside their main rows, robust accuracy and attributions."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ct_plugin.evaluation import plots
from ct_plugin.evaluation.report import fmt, markdown_table
from ct_plugin.reproduce.plan import Plan
from ct_plugin.reproduce.tables import (
    COLUMNS,
    Frames,
    comparison_rows,
    mean_of,
    rel_link,
    seed_stats,
    stats_cell,
)


def ablation_section(frames: Frames, groups: dict, ablations: list[dict[str, Any]]) -> list[str]:
    """One row per ablation beside the same dataset's seed-0 Table C.1 row (paper protocol)."""
    rows = []
    for item in ablations:
        for variant, label in (("", "as in the main table"), (item["variant"], item["change"])):
            parts = [f["paper"] for (d, v, s, seed), f in frames.items()
                     if (d, v, s, seed) == (item["data"], variant, "paper", 0)]
            if not parts:
                continue
            row = {"ablation": item["ablation"], "data": item["data"], "setting": label}
            for metric, run, title in COLUMNS:
                row[title] = stats_cell(seed_stats(comparison_rows(parts, metric, run)))
            row["validity base → CT"] = (f"{fmt(mean_of(parts, 'validity', 'ct_free', 'reference_mean'))} → "
                                         f"{fmt(mean_of(parts, 'validity', 'ct_free', 'run_mean'))}")
            rows.append(row)
    if not rows:
        return []
    return ["## Ablations: what each difference from the reference costs (seed 0, Table C.1 settings, paper protocol)",
            "", markdown_table(pd.DataFrame(rows)), ""]


def robustness_section(frames: Frames, datasets: Sequence[str], out: Path, plan: Plan) -> list[str]:
    """Robust accuracy and integrated-gradient shares of seed 0 (first source), with the summary figures."""
    source = plan.sources[0]
    robust, attribution, rows = {}, [], []
    for dataset in datasets:
        key = (dataset, "", source, 0)
        if key not in frames:
            continue
        part = frames[key]["paper"]
        robust[dataset] = part["robustness"]
        attribution.append(part["attribution"].assign(dataset=dataset))
        for run in ("baseline", "ct_free"):
            r = part["robustness"][part["robustness"].run == run]
            top = r.epsilon.max()
            rows.append({"data": dataset, "model": run,
                         "clean": fmt(float(r[(r.attack == "fgsm") & (r.epsilon == 0)].accuracy.iloc[0])),
                         f"FGSM {top:g}": fmt(float(r[(r.attack == "fgsm") & (r.epsilon == top)].accuracy.iloc[0])),
                         f"PGD {top:g}": fmt(float(r[(r.attack == "pgd") & (r.epsilon == top)].accuracy.iloc[0]))})
    if not robust:
        return []
    figures = out / "figures"
    robust_png = plots.plot_robustness_grid(robust, figures / "robust_accuracy.png")
    table = pd.concat(attribution, ignore_index=True)
    ig_png = plots.plot_attribution_summary(table, figures / "integrated_gradients.png")
    shares = table[["dataset", "run", "protected_features", "protected_share", "uniform_share"]].copy()
    shares["protected_share"] = shares.protected_share.map(fmt)
    shares["uniform_share"] = shares.uniform_share.map(fmt)
    return [f"## Robust accuracy (test split, seed 0, `{source}` settings; PGD 40 steps of 0.01, random start)", "",
            markdown_table(pd.DataFrame(rows)), "", f"![robust accuracy]({rel_link(robust_png, out)})", "",
            "## Integrated gradients on the protected features (baseline U(-1, 1), median over rounds)", "",
            markdown_table(shares), "", f"![integrated gradients]({rel_link(ig_png, out)})", ""]
