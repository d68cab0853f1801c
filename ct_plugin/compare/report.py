"""Aggregate a comparison over seeds and tables; write ``strategies.md``, its CSV and its figure.

Every figure is a reduction in % against the same seed's vanilla baseline (positive: better than
vanilla), averaged over seeds per table, then over tables. Two views of each method:

* **as tune chooses**: where ``tune`` recommended vanilla for the method on a table, the user gets
  the baseline there, so the method's reductions count as 0 and its validity and accuracy as the
  baseline's (the models are the same);
* **best configuration**: the method's best validation configuration trained anyway (what the
  method itself does).
"""

from __future__ import annotations

import math
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ct_plugin.atomic import atomic_write, atomic_write_json
from ct_plugin.compare.methods import Method
from ct_plugin.compare.pick import PICK, pick_method, pick_rows
from ct_plugin.evaluation.report import fmt, fmt_duration, markdown_table
from ct_plugin.reproduce.plan import DATA_NOTES, Plan
from ct_plugin.reproduce.report import cpu_model
from ct_plugin.reproduce.tables import Frames, comparison_rows, seed_stats, source_table
from ct_plugin.tuning.selection import SelectionRule

#: (metric, run, column name): the paper protocol's reductions, then the strict protocol's IP
REDUCTIONS = (("ip", "ct_free", "IP"), ("ip_star", "ct_free", "IP* (l=5)"), ("ip_star_0.5", "ct_free", "IP* (l=0.5)"),
              ("cost", "ct_protected", "cost"), ("cost_mad", "ct_protected", "cost (MAD)"))
STRICT = ("ip", "ct_free", "strict IP")
#: the issue's targets for a method against vanilla, averaged over tables
TARGETS = {"cost": 10.0, "strict IP": 5.0}
MAX_ACCURACY_DROP = 1.0  # points
MAX_VALIDITY_DROP = 5.0  # points


def _parts(frames: Frames, dataset: str, method: str, protocol: str) -> list[dict[str, pd.DataFrame]]:
    return [f[protocol] for (d, _, s, _), f in sorted(frames.items()) if (d, s) == (dataset, method) and protocol in f]


def _robust_accuracy(parts: list[dict[str, pd.DataFrame]], run: str) -> float:
    """FGSM accuracy at the protocol's largest epsilon, mean over seeds."""
    values = []
    for p in parts:
        r = p["robustness"]
        r = r[(r.run == run) & (r.attack == "fgsm")]
        if len(r):
            values += r[r.epsilon == r.epsilon.max()].accuracy.tolist()
    return float(np.mean(values)) if values else float("nan")


def _log_mean(dirs: Sequence[str], key: str) -> float:
    values: list[float] = []
    for folder in dirs:
        path = Path(folder) / "log.jsonl"
        if path.is_file():
            values += [float(r[key]) for r in pd.read_json(path, lines=True).to_dict("records")
                       if r.get(key) is not None and math.isfinite(float(r[key]))]
    return float(np.mean(values)) if values else float("nan")


def method_rows(frames: Frames, groups: dict, datasets: Sequence[str], method: Method,
                tuned: dict[tuple[str, str], dict[str, Any]], memory: dict[str, float]) -> list[dict[str, Any]]:
    """One row per table of the method's figures (best configuration), with tune's recommendation."""
    paper_raw = source_table(frames, groups, datasets, method.name, "paper")[1]
    strict_raw = source_table(frames, groups, datasets, method.name, "strict")[1]
    rows = []
    for dataset in datasets:
        if (dataset, method.name) not in tuned or paper_raw.empty or dataset not in set(paper_raw.data):
            continue
        paper = paper_raw[paper_raw.data == dataset].iloc[0]
        parts = _parts(frames, dataset, method.name, "paper")
        row: dict[str, Any] = {"data": dataset, "method": method.name,
                               "chosen": tuned[(dataset, method.name)]["recommendation"] == "ct",
                               "settings": tuned[(dataset, method.name)]["overrides"]}
        worse = 0
        for metric, run, name in REDUCTIONS:
            stats = seed_stats(comparison_rows(parts, metric, run))
            row[name], row[f"{name} sd"] = stats["mean"], stats["sd"]
            worse = max(worse, stats["worse"])
            row["seeds"] = stats["seeds"]
        strict = strict_raw[strict_raw.data == dataset]
        row[STRICT[2]] = float(strict.iloc[0]["ip_mean"]) if len(strict) else float("nan")
        row["worse seeds"] = worse
        row["validity base"], row["validity"] = float(paper.validity_base), float(paper.validity_ct)
        row["accuracy base"], row["accuracy"] = float(paper.accuracy_base), float(paper.accuracy_ct)
        row["robust accuracy base"] = _robust_accuracy(parts, "baseline")
        row["robust accuracy"] = _robust_accuracy(parts, "ct_free")
        seeds = [dirs for (d, _, s, _), dirs in sorted(groups.items()) if (d, s) == (dataset, method.name)]
        row["mature"] = _log_mean([g["ct_free"] for g in seeds], "mature")
        row["s/epoch base"] = _log_mean([g["baseline"] for g in seeds], "epoch_seconds")
        row["s/epoch"] = _log_mean([g["ct_free"] for g in seeds], "epoch_seconds")
        peaks = [memory.get(g["ct_free"], float("nan")) for g in seeds]
        row["peak RSS MB"] = float(np.nanmean(peaks)) if any(math.isfinite(p) for p in peaks) else float("nan")
        rows.append(row)
    return rows


def as_chosen(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows a user of ``tune`` gets: the baseline's figures where tune did not choose the method."""
    out = rows.copy()
    kept = ~out.chosen
    for _, _, name in (*REDUCTIONS, STRICT):
        out.loc[kept, name] = 0.0
    out.loc[kept, "validity"] = out.loc[kept, "validity base"]
    out.loc[kept, "accuracy"] = out.loc[kept, "accuracy base"]
    out.loc[kept, "robust accuracy"] = out.loc[kept, "robust accuracy base"]
    out.loc[kept, "worse seeds"] = 0
    return out


def averages(rows: pd.DataFrame) -> pd.DataFrame:
    """Per method: reductions averaged over tables, the worst table's accuracy and validity drop (points)."""
    out = []
    for method, part in rows.groupby("method", sort=False):
        seeds = part["seeds"].max()
        row: dict[str, Any] = {"method": method, "tables": len(part), "tune chose it on": int(part.chosen.sum())}
        for _, _, name in (*REDUCTIONS, STRICT):
            row[name] = float(part[name].mean())
        row["worst accuracy drop"] = float((100 * (part["accuracy base"] - part["accuracy"])).max())
        row["worst validity drop"] = float((100 * (part["validity base"] - part["validity"])).max())
        row["tables worse in most seeds"] = int((part["worse seeds"] > seeds / 2).sum())
        out.append(row)
    return pd.DataFrame(out)


def target_verdicts(means: pd.DataFrame) -> list[str]:
    """Per method other than ct: the issue's targets against vanilla and against the CT row, met or missed."""
    if "ct" not in set(means.method):
        return []
    ct = means[means.method == "ct"].iloc[0]
    lines = []
    for _, m in means.iterrows():
        checks = [
            (f"cost >= +{TARGETS['cost']:g}%", m["cost"] >= TARGETS["cost"], fmt(m["cost"])),
            ("IP* (l=5) >= CT's", m["IP* (l=5)"] >= ct["IP* (l=5)"],
             f"{fmt(m['IP* (l=5)'])} vs {fmt(ct['IP* (l=5)'])}"),
            (f"strict IP >= +{TARGETS['strict IP']:g}%", m["strict IP"] >= TARGETS["strict IP"], fmt(m["strict IP"])),
            (f"accuracy within {MAX_ACCURACY_DROP:g} point", m["worst accuracy drop"] <= MAX_ACCURACY_DROP,
             f"worst {fmt(m['worst accuracy drop'])}"),
            (f"validity within {MAX_VALIDITY_DROP:g} points", m["worst validity drop"] <= MAX_VALIDITY_DROP,
             f"worst {fmt(m['worst validity drop'])}"),
            ("no table worse in most seeds", m["tables worse in most seeds"] == 0,
             str(m["tables worse in most seeds"])),
        ]
        met = all(ok for _, ok, _ in checks)
        detail = "; ".join(f"{what}: {shown} ({'met' if ok else 'missed'})" for what, ok, shown in checks)
        lines.append(f"* `{m.method}`: {'**all targets met**' if met else 'targets missed'}. {detail}")
    return lines


def advice(chosen: pd.DataFrame, best: pd.DataFrame) -> list[str]:
    """Which method to use when, read off the measured averages (nothing here is written by hand)."""
    lines = []
    if chosen.empty:
        return lines

    def top(frame: pd.DataFrame, column: str) -> pd.Series:
        return frame.sort_values(column, ascending=False).iloc[0]

    safe = chosen[(chosen["worst accuracy drop"] <= MAX_ACCURACY_DROP)
                  & (chosen["worst validity drop"] <= MAX_VALIDITY_DROP)]
    pool = safe if len(safe) else chosen
    for column, goal in (("IP* (l=5)", "the most plausible counterfactuals by distribution"),
                         ("IP", "counterfactuals closest to the target class's rows"),
                         ("cost", "the cheapest recourse with the protected features frozen"),
                         ("cost (MAD)", "the cheapest recourse weighed as the recourse literature does")):
        m = top(pool, column)
        lines.append(f"* For {goal}: `{m.method}` ({column} {fmt(m[column])}% against vanilla on average, as tune "
                     f"chooses{'' if len(safe) else '; no method kept accuracy and validity on every table'}).")
    both = best[(best["IP* (l=5)"] > 0) & (best["cost"] >= 0)]
    if len(both):
        lines.append("* Plausibility without costlier recourse (best configurations, both averages >= 0): "
                     + ", ".join(f"`{m}`" for m in both.method) + ".")
    else:
        lines.append("* No method's best configuration raised plausibility (IP*) without raising the cost of "
                     "recourse on average.")
    never = [m for m, n in zip(chosen.method, chosen["tune chose it on"], strict=True) if n == 0]
    if never:
        lines.append("* `tune` never chose " + ", ".join(f"`{m}`" for m in never) + " over vanilla on these tables: "
                     "its validation improvement was not significant or its configurations failed the rule.")
    return lines


def plot_plausibility_cost(best: pd.DataFrame, rows: pd.DataFrame, path: Path) -> Path:
    """IP* (l=5) reduction against cost reduction: a large dot per method (average), small ones per table."""
    fig, ax = plt.subplots(figsize=(7, 5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    # one table far off (e.g. -600%) would squash the rest: the axis stops at -150% and such points sit on
    # its edge as downward triangles
    floor = max(-150.0, float(np.nanmin([*rows["IP* (l=5)"], *best["IP* (l=5)"], 0.0])) - 5)
    for i, (_, m) in enumerate(best.iterrows()):
        colour = colours[i % len(colours)]
        part = rows[rows.method == m.method]
        low = part["IP* (l=5)"] < floor
        ax.scatter(part["cost"][~low], part["IP* (l=5)"][~low], s=14, alpha=0.35, color=colour)
        ax.scatter(part["cost"][low], [floor] * int(low.sum()), s=22, alpha=0.5, color=colour, marker="v")
        y = max(float(m["IP* (l=5)"]), floor)
        ax.scatter([m["cost"]], [y], s=90, color=colour, edgecolor="black", label=m.method, zorder=3,
                   marker="o" if y == m["IP* (l=5)"] else "v")
    ax.set_ylim(bottom=floor - 5)
    ax.axhline(0, color="grey", lw=0.8)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_xlabel("cost reduction vs vanilla, % (protected search; right: cheaper recourse)")
    ax.set_ylabel("IP* (l=5) reduction vs vanilla, % (up: more plausible)")
    ax.set_title("Plausibility against cost: best configuration per method\n(large: average over tables; "
                 "small: one table; triangles: below the axis)")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _shown(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    out = frame[list(columns)].copy()
    for column in columns:
        if out[column].dtype.kind == "f":
            out[column] = out[column].map(fmt)
    return out


def write_comparison(out: Path, datasets: Sequence[str], methods: Sequence[Method], plan: Plan, frames: Frames,
                     groups: dict, tuned: dict[tuple[str, str], dict[str, Any]], skipped: dict[tuple[str, str], str],
                     memory: dict[str, float], settings: dict[str, Any]) -> Path:
    """Write ``out/strategies.md``, ``out/results/strategies.csv`` and the figure; return the Markdown path."""
    out.mkdir(parents=True, exist_ok=True)
    rows = pd.DataFrame([r for m in methods for r in method_rows(frames, groups, datasets, m, tuned, memory)])
    names = [name for _, _, name in (*REDUCTIONS, STRICT)]
    lines = ["# Methods compared on one protocol", "",
             "Generated by `" + settings["command"] + "`; do not edit by hand.", ""]
    if rows.empty:
        lines.append("No method finished on any table.")
        md = out / "strategies.md"
        atomic_write(md, "\n".join(lines) + "\n")
        return md
    picks = [pick_method(dataset, [m.name for m in methods], tuned) for dataset in datasets]
    picks = [p for p in picks if p.dataset in set(rows.data)]
    # the pick is a row of the "as tune chooses" view only: its best configuration is its method's
    chosen, best = averages(as_chosen(pd.concat([rows, pick_rows(rows, picks)], ignore_index=True))), averages(rows)
    figure = plot_plausibility_cost(best, rows, out / "figures" / "strategies_plausibility_cost.png")
    (out / "results").mkdir(parents=True, exist_ok=True)
    atomic_write(out / "results" / "strategies.csv", rows.drop(columns=["settings"]).to_csv(index=False))
    atomic_write(out / "results" / "strategies_pick.csv", pd.DataFrame(
        [{"data": p.dataset, "pick": p.method or "vanilla", "reason": p.reason} for p in picks]).to_csv(index=False))
    compute = settings["compute_seconds"]
    if plan.quick:
        lines += [f"**A quick, CI-sized run** ({plan.seeds} seed, {plan.epochs} epochs, nce at most {plan.nce_cap}, "
                  f"{settings['protocols']['paper']['rounds']} evaluation rounds, tune with "
                  f"{plan.tune_seeds or 2} seed): the figures show how the methods behave at that scale, not "
                  "the full comparison (`ct-plugin compare --out docs`: 3 seeds, 100 epochs).", ""]
    lines += [
        f"{len(methods)} methods on {len(datasets)} table{'s' * (len(datasets) != 1)} ({', '.join(datasets)}), "
        f"{plan.seeds} seed{'s' * (plan.seeds != 1)}, "
        f"{plan.epochs} epochs ({plan.epochs_digits} on image sets){', quick plan' if plan.quick else ''}. "
        "Each method's settings were chosen by `tune` on a validation split of the training rows (the test "
        "split is never read to choose), within a grid of at most 9 configurations x "
        f"{plan.tune_seeds or 2} seed{'s' * ((plan.tune_seeds or 2) != 1)} (CT's default budget), judged on "
        f"validation IP, accuracy, maturity and validity (each accuracy and validity drop with "
        f"{SelectionRule.margin_se:g} standard error added, `tune`'s margin)"
        + ("" if settings.get("max_cost_increase") is None else
           f" and the cost of recourse (at most {100 * settings['max_cost_increase']:g}% above vanilla's)")
        + ". Every figure is "
        "a reduction in % against the same "
        "seed's vanilla baseline (positive: better than vanilla), evaluated with the paper protocol on the same "
        "factual draws for every method; `strict IP` is the strict protocol's (every counterfactual counts).", "",
        f"Compute: tuning {fmt_duration(compute['tune'])}, training {fmt_duration(compute['train'])}, evaluation "
        f"{fmt_duration(compute['evaluate'])} (CPU time of the work, cached work included); this run's wall time "
        f"{fmt_duration(settings['wall_seconds'])} with {settings['workers']} worker(s) on {cpu_model()}, "
        f"Python {sys.version.split()[0]}, {platform.system()}.", "",
        "## Which method to use when", "", *advice(chosen, best), "",
        f"## The comparison's pick per table (`{PICK}`, validation figures only)", "",
        "Judged on plausibility and cost: among the methods `tune` recommended over vanilla on the table, those "
        "whose validation cost of recourse is not above vanilla's; of these, the largest validation IP "
        "reduction; vanilla when none remains. Its budget is the sum of the methods' tuning budgets; it trains "
        "nothing more (its test figures are the picked method's).", "",
        *[f"* {p.dataset}: {p.reason}." for p in picks], "",
        "## The targets (issue: a method that beats CT on plausibility and cost at once)", "",
        "Averages over the tables as tune chooses, against vanilla:", "", *target_verdicts(chosen), "",
        "## Averages over tables, as tune chooses", "",
        "Where tune recommended vanilla for a method, that table counts with the baseline's figures (0%); "
        f"`{PICK}` is the comparison's pick per table (above). "
        "`tables`: the tables the method ran on (the methods that aim at a desired class skip data without one, "
        "see \"Not run\"), so their averages cover fewer tables.", "",
        markdown_table(_shown(chosen, ["method", "tables", "tune chose it on", *names, "worst accuracy drop",
                                       "worst validity drop", "tables worse in most seeds"])), "",
        "## Averages over tables, best configuration trained anyway", "",
        markdown_table(_shown(best, ["method", "tables", *names, "worst accuracy drop", "worst validity drop",
                                     "tables worse in most seeds"])), "",
        f"![plausibility against cost]({figure.relative_to(out).as_posix()})", "",
        "## Per table (best configuration; `chosen`: tune recommended the method over vanilla)", "",
    ]
    per_table = rows.assign(**{"validity base → method": [f"{fmt(a)} → {fmt(b)}" for a, b in
                                                          zip(rows["validity base"], rows["validity"], strict=True)],
                               "accuracy base → method": [f"{fmt(a)} → {fmt(b)}" for a, b in
                                                          zip(rows["accuracy base"], rows["accuracy"], strict=True)],
                               "robust acc. base → method": [
                                   f"{fmt(a)} → {fmt(b)}" for a, b in
                                   zip(rows["robust accuracy base"], rows["robust accuracy"], strict=True)]})
    for dataset in datasets:
        part = per_table[per_table.data == dataset]
        if part.empty:
            continue
        lines += [f"### {dataset}", ""]
        if dataset in DATA_NOTES:
            lines += [f"Data: {DATA_NOTES[dataset]}.", ""]
        lines += [markdown_table(_shown(part, ["method", "chosen", *names, "validity base → method",
                                               "accuracy base → method", "robust acc. base → method", "mature",
                                               "s/epoch base", "s/epoch", "peak RSS MB"])), ""]
        lines += [f"* `{m}` settings: {s}" for m, s in zip(part.method, part.settings, strict=True)] + [""]
    if skipped:
        lines += ["## Not run", ""] + [f"* {d} / `{m}`: {why}" for (d, m), why in sorted(skipped.items())] + [""]
    lines += ["## Methods", ""] + [f"* `{m.name}` (strategy `{m.strategy}`): {m.source}; grid "
                                   f"{dict(m.grid)}{', fixed ' + str(dict(m.fixed)) if m.fixed else ''}"
                                   f"{'' if m.rescue else ', no rescue stages'}" for m in methods]
    lines += [f"* `{PICK}`: per table, one of the methods above, picked on validation figures "
              "(ct_plugin/compare/pick.py)", ""]
    lines += ["Columns: `robust acc.` is FGSM accuracy at the protocol's largest epsilon; `mature` the share of "
              "in-training counterfactuals that matured (mean over epochs and seeds); `s/epoch` the mean training "
              "epoch; `peak RSS MB` the peak resident memory of the worker process (interpreter, torch and data "
              "included; sampled every 20 ms) while the method's unprotected run trained (blank for runs trained "
              "by an earlier `reproduce`).", ""]
    md = out / "strategies.md"
    atomic_write(md, "\n".join(lines))
    atomic_write_json(out / "results" / "strategies_settings.json", settings)
    return md
