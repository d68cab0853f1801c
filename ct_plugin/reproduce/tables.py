"""Aggregating a reproduction's evaluations over seeds: one table row per dataset, and per-seed rows."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ct_plugin.evaluation.report import fmt, fmt_pm

COLUMNS = (("ip", "ct_free", "IP"), ("ip_star", "ct_free", "IP* (l=5)"), ("ip_star_0.5", "ct_free", "IP* (l=0.5)"),
           ("cost", "ct_protected", "cost, protected"))

Frames = dict[tuple[str, str, str, int], dict[str, dict[str, pd.DataFrame]]]


def _rows(frames: Frames, dataset: str, variant: str, source: str, protocol: str) -> list[dict[str, pd.DataFrame]]:
    return [f[protocol] for (d, v, s, _), f in sorted(frames.items())
            if (d, v, s) == (dataset, variant, source) and protocol in f]


def comparison_rows(parts: list[dict[str, pd.DataFrame]], metric: str, run: str) -> pd.DataFrame:
    """The comparison rows of one metric and run, over every evaluation in ``parts`` (one per seed)."""
    rows = [p["comparison"][(p["comparison"].metric == metric) & (p["comparison"].run == run)] for p in parts]
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def seed_stats(rows: pd.DataFrame) -> dict[str, float]:
    """Mean and sd over seeds of the reduction, and how many seeds are significantly better / worse."""
    values = rows.reduction_pct.to_numpy(dtype=float)
    finite = values[np.isfinite(values)]
    better = int(((rows.reduction_pct > 0) & rows.significant).sum())
    worse = int(((rows.reduction_pct < 0) & rows.significant).sum())
    return {"mean": float(finite.mean()) if len(finite) else float("nan"),
            "sd": float(finite.std(ddof=1)) if len(finite) > 1 else float("nan"),
            "better": better, "worse": worse, "seeds": len(rows)}


def stats_cell(stats: dict[str, float]) -> str:
    """``12.3 ± 4.5 (3+/0-)`` over several seeds, ``12.3*`` for one (:func:`fmt_pm`, :func:`fmt`)."""
    if not math.isfinite(stats["mean"]):
        return "-"
    if stats["seeds"] == 1:
        return f"{fmt(stats['mean'])}{'*' if stats['better'] or stats['worse'] else ''}"
    return f"{fmt_pm(stats['mean'], stats['sd'])} ({stats['better']}+/{stats['worse']}-)"


def _accuracies(parts: list[dict[str, pd.DataFrame]], run: str) -> list[float]:
    """The clean test accuracy of ``run`` in each evaluation (one per seed)."""
    values: list[float] = []
    for p in parts:
        r = p["robustness"]
        values += r[(r.run == run) & (r.attack == "fgsm") & (r.epsilon == 0.0)].accuracy.tolist()
    return values


def _accuracy(parts: list[dict[str, pd.DataFrame]], run: str) -> float:
    values = _accuracies(parts, run)
    return float(np.mean(values)) if values else float("nan")


def mean_of(parts: list[dict[str, pd.DataFrame]], metric: str, run: str, column: str) -> float:
    """The mean over ``parts`` of one comparison column (e.g. ``run_mean`` of validity)."""
    rows = comparison_rows(parts, metric, run)
    return float(rows[column].mean()) if len(rows) else float("nan")


def _maturity(groups: dict, dataset: str, variant: str, source: str, kind: str = "ct_free") -> float:
    values = []
    for (d, v, s, _), dirs in groups.items():
        if (d, v, s) != (dataset, variant, source) or kind not in dirs:
            continue
        log = [json.loads(line) for line in (Path(dirs[kind]) / "log.jsonl").read_text().splitlines() if line]
        values += [r["mature"] for r in log[-10:] if r.get("mature") is not None]
    return float(np.mean(values)) if values else float("nan")


def source_table(frames: Frames, groups: dict, datasets: Sequence[str], source: str, protocol: str,
                 variant: str = "") -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per dataset: reductions (mean ± sd over seeds), validity, accuracy, maturity; and the raw numbers."""
    shown, raw = [], []
    for dataset in datasets:
        parts = _rows(frames, dataset, variant, source, protocol)
        if not parts:
            continue
        row: dict[str, Any] = {"data": dataset}
        numbers: dict[str, Any] = {"data": dataset}
        for metric, run, title in COLUMNS:
            stats = seed_stats(comparison_rows(parts, metric, run))
            row[title] = stats_cell(stats)
            numbers.update({f"{metric}_{k}": v for k, v in stats.items()})
        v_base = mean_of(parts, "validity", "ct_free", "reference_mean")
        v_ct = mean_of(parts, "validity", "ct_free", "run_mean")
        row["validity base → CT"] = f"{fmt(v_base)} → {fmt(v_ct)}"
        acc_base, acc_ct = _accuracy(parts, "baseline"), _accuracy(parts, "ct_free")
        row["accuracy base → CT"] = f"{fmt(acc_base)} → {fmt(acc_ct)}"
        row["mature (train)"] = fmt(_maturity(groups, dataset, variant, source))
        base_seeds = _accuracies(parts, "baseline")
        numbers.update(validity_base=v_base, validity_ct=v_ct, accuracy_base=acc_base, accuracy_ct=acc_ct,
                       accuracy_base_sd=float(np.std(base_seeds, ddof=1)) if len(base_seeds) > 1 else float("nan"))
        shown.append(row)
        raw.append(numbers)
    shown_frame, raw_frame = pd.DataFrame(shown), pd.DataFrame(raw)
    if len(raw_frame):
        average: dict[str, Any] = {"data": "average"}
        for metric, _, title in COLUMNS:
            average[title] = fmt(float(raw_frame[f"{metric}_mean"].mean()))
        average["validity base → CT"] = (f"{fmt(float(raw_frame.validity_base.mean()))} → "
                                         f"{fmt(float(raw_frame.validity_ct.mean()))}")
        average["accuracy base → CT"] = (f"{fmt(float(raw_frame.accuracy_base.mean()))} → "
                                         f"{fmt(float(raw_frame.accuracy_ct.mean()))}")
        average["mature (train)"] = ""
        shown_frame = pd.concat([shown_frame, pd.DataFrame([average])], ignore_index=True)
    return shown_frame, raw_frame


def per_seed_table(frames: Frames, datasets: Sequence[str], source: str) -> pd.DataFrame:
    """Each seed's reduction and the 99% interval of its per-round difference (reference minus CT), paper protocol."""
    rows = []
    for (dataset, variant, s, seed), parts in sorted(frames.items()):
        if variant or s != source or dataset not in datasets:
            continue
        comparison = parts["paper"]["comparison"]
        row: dict[str, Any] = {"data": dataset, "seed": seed}
        for metric, run, title in COLUMNS:
            c = comparison[(comparison.metric == metric) & (comparison.run == run)]
            if len(c):
                c = c.iloc[0]
                row[title] = (f"{fmt(float(c.reduction_pct))}{'*' if c.significant else ''} "
                              f"[{fmt(float(c.diff_low))}, {fmt(float(c.diff_high))}]")
        rows.append(row)
    return pd.DataFrame(rows)


def with_forced_ct(main: pd.DataFrame, forced: pd.DataFrame) -> pd.DataFrame:
    """The tune table's raw rows with those of the tables where tune kept vanilla replaced by forced CT's."""
    if forced.empty:
        return main
    kept = main[~main.data.isin(forced.data)]
    order = {d: i for i, d in enumerate(main.data)}
    return pd.concat([kept, forced], ignore_index=True).sort_values("data", key=lambda c: c.map(order))


def rel_link(path: Path, start: Path) -> str:
    """``path`` relative to ``start`` with forward slashes (a Markdown link target)."""
    return Path(os.path.relpath(path.resolve(), start.resolve())).as_posix()
