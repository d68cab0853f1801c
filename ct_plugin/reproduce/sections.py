"""The report's later sections: ablations beside their main rows, robust accuracy and attributions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ct_plugin.evaluation import plots
from ct_plugin.evaluation.report import fmt, fmt_pm, markdown_table
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
    """One row per ablation beside the same dataset's Table C.1 row over the same seeds (paper protocol).

    An ablation trains seed 0 unless its item says ``seeds`` (then seeds 0 to ``seeds - 1``, mean ± sd).
    """
    rows = []
    for item in ablations:
        if item["ablation"].startswith(DATA_DRAW):  # their own section: data_draw_section
            continue
        seeds = int(item.get("seeds", 1))
        for variant, label in (("", "as in the main table"), (item["variant"], item["change"])):
            parts = [f["paper"] for (d, v, s, seed), f in sorted(frames.items())
                     if (d, v, s) == (item["data"], variant, "paper") and seed < seeds]
            if not parts:
                continue
            row = {"ablation": item["ablation"], "data": item["data"], "seeds": len(parts), "setting": label}
            for metric, run, title in COLUMNS:
                row[title] = stats_cell(seed_stats(comparison_rows(parts, metric, run)))
            row["validity base → CT"] = (f"{fmt(mean_of(parts, 'validity', 'ct_free', 'reference_mean'))} → "
                                         f"{fmt(mean_of(parts, 'validity', 'ct_free', 'run_mean'))}")
            rows.append(row)
    if not rows:
        return []
    return ["## Ablations: what each difference from the reference costs (Table C.1 settings, paper protocol; seed 0 "
            "unless `seeds` says more)",
            "", markdown_table(pd.DataFrame(rows)), ""]


DATA_DRAW = "data draw"
"""The name prefix of the ablations that redraw a dataset (``data draw 1``, ...): :func:`data_draw_section`."""


def _seed0_cell(parts: list[dict[str, pd.DataFrame]], metric: str, run: str) -> tuple[float, str]:
    stats = seed_stats(comparison_rows(parts, metric, run))
    return stats["mean"], stats_cell(stats)


def data_draw_section(frames: Frames, ablations: list[dict[str, Any]],
                      paper: Mapping[str, Sequence[float]]) -> list[str]:
    """Table C.1 figures of training seed 0 on the main data draw and on redrawn data, their spread, the paper's.

    ``paper``: the paper's (IP, IP*, cost) reductions by dataset. The main table's sd is over training
    seeds on one draw; the paper trained once on its own draw, so this section measures how far the
    draw alone moves each figure and says whether the paper's lies within two sds over draws.
    """
    draws: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for item in ablations:
        if item["ablation"].startswith(DATA_DRAW):
            setting = item.get("draw_of") or ""  # the main draw: the main table's seed 0, or that ablation's
            main = ("ablation-" + setting.replace(" ", "-"), f"0 ({setting})") if setting else ("", "0 (main table)")
            draws.setdefault((item["data"], setting), [main]).append(
                (item["variant"], item["ablation"].removeprefix(DATA_DRAW).split()[0]))
    shown = [c for c in COLUMNS if c[0] != "ip_star_0.5"]
    rows = []
    for (dataset, setting), variants in draws.items():
        values: dict[str, list[float]] = {title: [] for _, _, title in shown}
        drawn = []
        setting = setting or "Table C.1"
        for variant, label in variants:
            parts = [f["paper"] for key, f in frames.items() if key == (dataset, variant, "paper", 0)]
            if not parts:
                continue
            row = {"data": dataset, "setting": setting, "draw": label}
            for metric, run, title in shown:
                value, row[title] = _seed0_cell(parts, metric, run)
                values[title].append(value)
            row["validity base → CT"] = (f"{fmt(mean_of(parts, 'validity', 'ct_free', 'reference_mean'))} → "
                                         f"{fmt(mean_of(parts, 'validity', 'ct_free', 'run_mean'))}")
            drawn.append(row)
        if min(len(v) for v in values.values()) < 2:  # nothing to compare the main draw with
            continue
        spread = {"data": dataset, "setting": setting, "draw": f"mean ± sd over {len(values[shown[0][2]])} draws"}
        inside = {"data": dataset, "setting": setting, "draw": "the paper's within mean ± 2 sd"}
        figures = {"data": dataset, "setting": setting, "draw": "the paper (one training, its own draw)"}
        for (_, _, title), reference in zip(shown, paper.get(dataset, ()), strict=False):
            v = np.array([x for x in values[title] if np.isfinite(x)])
            mean, sd = float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else float("nan")
            spread[title] = fmt_pm(mean, sd)
            figures[title] = fmt(reference)
            inside[title] = ("yes" if abs(reference - mean) <= 2 * sd else "**no**") if np.isfinite(sd) else "-"
        rows += [*drawn, spread, figures, inside]
    if not rows:
        return []
    return ["## Data draws: how far the data alone move the figures (Table C.1 settings, training seed 0, paper "
            "protocol)", "",
            "The main table's sd is over training seeds on one draw of the data; the paper trained once on its own "
            "draw. Here the same settings and training seed on redrawn data (synthetic sets: the points and the "
            "split; UCI Adult: the 80/20 split of adult.data), reductions in % against the same draw's baseline. "
            "Setting: Table C.1 as in the main table, or an ablation's setting on every draw (its draw 0 is that "
            "ablation's seed 0).",
            "", markdown_table(pd.DataFrame(rows).fillna("")), ""]


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
