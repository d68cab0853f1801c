"""What ``ct-plugin tune`` writes: the grid table (CSV + Markdown), a figure and the chosen config."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from ct_plugin.atomic import atomic_write, atomic_write_json
from ct_plugin.config import TrainConfig
from ct_plugin.data.spec import DatasetSpec
from ct_plugin.tuning.selection import Choice, SelectionRule

#: columns of the written table, in order (the grid axes come first)
TABLE_COLUMNS = (
    "stage", "status", "accuracy", "vanilla_accuracy", "accuracy_se", "accuracy_ok", "mature_last", "maturity_ok",
    "validity", "vanilla_validity", "validity_se", "validity_ok", "ip", "vanilla_ip", "ip_reduction_pct",
    "ip_significant", "ip_star_reduction_pct", "ip_star_significant", "cost_reduction_pct", "cost_ok",
    "violation_pts", "pass", "chosen", "reasons", "train_seconds", "cell",
)


def _format(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def order_columns(table: pd.DataFrame, axes: list[str]) -> pd.DataFrame:
    """Axes, then :data:`TABLE_COLUMNS` (those present)."""
    columns = [*axes, *(c for c in TABLE_COLUMNS if c in table.columns)]
    return table[columns]


def write_tables(table: pd.DataFrame, out: Path, header: list[str]) -> tuple[Path, Path]:
    """``tune.csv`` (every column, raw numbers) and ``tune.md`` (``header`` lines, then the table)."""
    csv_path = out / "tune.csv"
    atomic_write(csv_path, table.to_csv(index=False))
    shown = [c for c in table.columns if c not in ("cell", "vanilla_accuracy", "vanilla_validity", "vanilla_ip")]
    lines = [*header, "", "| " + " | ".join(shown) + " |", "|" + "|".join("---" for _ in shown) + "|"]
    for _, row in table.iterrows():
        lines.append("| " + " | ".join(_format(row[c]).replace("|", "/") for c in shown) + " |")
    md_path = out / "tune.md"
    atomic_write(md_path, "\n".join(lines) + "\n")
    return csv_path, md_path


def _config_text(row: pd.Series, axes: list[str]) -> str:
    return " ".join(f"{a}={_format(row[a])}" for a in axes)


def _label_groups(
    points: list[tuple[int, float, float]], x_span: float, y_span: float
) -> list[tuple[str, float, float]]:
    """Number labels of the points, points closer than a few percent of the axes' spans sharing one label."""
    groups: list[tuple[list[int], float, float]] = []
    for number, x, y in points:
        for members, gx, gy in groups:
            if abs(x - gx) <= 0.03 * x_span and abs(y - gy) <= 0.04 * y_span:
                members.append(number)
                break
        else:
            groups.append(([number], x, y))
    return [(",".join(map(str, members)), x, y) for members, x, y in groups]


def plot_grid(table: pd.DataFrame, axes: list[str], out: Path, title: str, max_validity_drop: float,
              recommendation: str = "ct") -> Path:
    """Write ``tune.png`` (the figure of :func:`grid_figure`) into ``out``; return its path."""
    fig = grid_figure(table, axes, title, max_validity_drop, recommendation)
    path = atomic_write(out / "tune.png",
                        lambda handle: fig.savefig(handle, format="png", dpi=110, bbox_inches="tight"))
    plt.close(fig)
    return path


def grid_figure(table: pd.DataFrame, axes: list[str], title: str, max_validity_drop: float,
                recommendation: str = "ct") -> Figure:
    """tune's figure: validation IP reduction vs validation validity, one numbered point per configuration.

    Left: filled green circles pass the rule with a significant IP reduction, hollow green circles
    pass without one, red crosses fail; the star is the vanilla baseline (IP reduction 0 by
    definition); the dashed line is the lowest validity the rule accepts before a configuration's
    standard-error margin. A solid black ring marks
    the recommendation (the best CT configuration, or vanilla's star); a dashed ring the best CT
    configuration when it is not recommended (vanilla, or ``recommendation`` ``"none"``). Points
    carry their row number only; the list on the right names each configuration and its figures,
    so labels neither overlap nor leave the plot. ``recommendation``: ``"ct"``, ``"vanilla"`` or
    ``"none"``; the caller closes the figure.
    """
    rows = table.reset_index(drop=True)
    height = max(4.8, 1.4 + 0.17 * len(rows))
    fig, (ax, side) = plt.subplots(1, 2, figsize=(11.5, height), gridspec_kw={"width_ratios": [3, 2]})
    ok = rows[rows.status == "ok"]
    significant = ok.ip_significant.astype(bool) & (ok.ip_reduction_pct > 0) if "ip_significant" in ok else (
        pd.Series(False, index=ok.index))
    kinds = (
        (ok["pass"].astype(bool) & significant, dict(marker="o", color="#2ca02c"),
         "passes the rule, IP reduction significant"),
        (ok["pass"].astype(bool) & ~significant, dict(marker="o", facecolors="none", edgecolors="#2ca02c"),
         "passes the rule, IP change not significant"),
        (~ok["pass"].astype(bool), dict(marker="x", color="#d62728"), "fails the rule"),
    )
    for mask, style, label in kinds:
        part = ok[mask]
        if len(part):
            ax.scatter(100 * part.validity, part.ip_reduction_pct, s=60, linewidths=1.5, label=label, zorder=3,
                       **style)
    vanilla_validity = float(rows.vanilla_validity.iloc[0]) if len(rows) else math.nan
    if math.isfinite(vanilla_validity):
        ax.scatter([100 * vanilla_validity], [0.0], marker="*", s=180, color="black", zorder=4,
                   label="vanilla baseline (IP reduction 0)")
        ax.axvline(100 * (vanilla_validity - max_validity_drop), color="grey", linestyle="--",
                   label=f"lowest validity the rule accepts before each point's SE margin "
                         f"(vanilla - {100 * max_validity_drop:g} points)")
    chosen = ok[ok.chosen.astype(bool)] if "chosen" in ok else ok.iloc[:0]
    number_of = {index: position + 1 for position, index in enumerate(rows.index)}
    if len(chosen):
        best = chosen.iloc[0]
        where = ([100 * float(best.validity)], [float(best.ip_reduction_pct)])
        tag = f"#{number_of[chosen.index[0]]}"
        if recommendation == "ct":
            ax.scatter(*where, s=320, facecolors="none", edgecolors="black", linewidths=1.8, zorder=5,
                       label=f"recommended: CT configuration {tag}")
        else:
            why = "not recommended" if recommendation == "vanilla" else "nothing recommended"
            ax.scatter(*where, s=320, facecolors="none", edgecolors="black", linewidths=1.2, linestyle="--",
                       zorder=5, label=f"best CT configuration {tag} ({why})")
    if recommendation == "vanilla" and math.isfinite(vanilla_validity):
        ax.scatter([100 * vanilla_validity], [0.0], s=420, facecolors="none", edgecolors="black", linewidths=1.8,
                   zorder=5, label="recommended: vanilla")
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.margins(x=0.06, y=0.12)  # room for the number labels inside the axes
    low, high = ax.get_xlim()
    ax.set_xlim(low, min(high, 101.0))
    y_low, y_high = ax.get_ylim()
    if y_high - y_low < 2.0:  # a flat cloud: at least +-1 point of IP reduction around it, not a tick per 1e-4
        middle = (y_high + y_low) / 2
        ax.set_ylim(middle - 1.0, middle + 1.0)
    x_low, x_high = ax.get_xlim()
    y_low, y_high = ax.get_ylim()
    finite = [(number_of[i], 100 * float(r.validity), float(r.ip_reduction_pct)) for i, r in ok.iterrows()
              if math.isfinite(float(r.validity)) and math.isfinite(float(r.ip_reduction_pct))]
    for text, x, y in _label_groups(finite, x_high - x_low, y_high - y_low):
        right = x > x_low + 0.85 * (x_high - x_low)  # near the right edge: label to the left of the point
        ax.annotate(text, (x, y), textcoords="offset points", xytext=(-10 if right else 10, 7), fontsize=8,
                    ha="right" if right else "left", zorder=6)
    ax.set_xlabel("validation validity of CT counterfactuals (%)")
    ax.set_ylabel("validation IP reduction vs vanilla (%; higher is better)")
    ax.set_title(title, fontsize=10, loc="left")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, frameon=False)
    # the list of configurations: number, axes, IP reduction, significance, rule
    width = max([len(_config_text(r, axes)) for _, r in rows.iterrows()] + [13])
    lines = [f"{'#':>2}  {'configuration':<{width}}  {'IP red.':>7}  sig.  rule (fails on)", ""]
    for index, row in rows.iterrows():
        config = _config_text(row, axes)
        if row.status != "ok":
            lines.append(f"{number_of[index]:>2}  {config:<{width}}  training failed")
            continue
        ip = float(row.ip_reduction_pct)
        ip_text = f"{ip:+.1f}%" if math.isfinite(ip) else "n/a"
        sig = "yes" if bool(row.get("ip_significant", False)) else "no"
        failed = [name for name in ("accuracy", "maturity", "validity") if not bool(row.get(f"{name}_ok", True))]
        if not math.isfinite(ip):
            failed.append("IP")
        rule = "pass" if bool(row["pass"]) else "fail: " + ",".join(failed)
        mark = "  <- best CT" if bool(row.get("chosen", False)) else ""
        rule = rule + mark
        lines.append(f"{number_of[index]:>2}  {config:<{width}}  {ip_text:>7}  {sig:>4}  {rule}")
    side.axis("off")
    side.text(0.0, 1.0, "\n".join(lines), family="monospace", fontsize=7, va="top", ha="left",
              transform=side.transAxes)
    fig.tight_layout()
    return fig


def _rescue_line(rescue: Mapping[str, Any], grid: Mapping[str, list[Any]]) -> str:
    """One header line: why a rescue stage ran and what it trained."""
    before = f"stage 1 (the grid {dict(grid)})" if rescue["stage"] == 2 else "the earlier stages"
    points = rescue["points"]
    return (f"No configuration of {before} passed, so stage {rescue['stage']} (a rescue) trained {len(points)} "
            f"more with {rescue['change']}: {points}.")


def _interval(protocol: Any) -> str:
    confidence = getattr(protocol, "confidence", None)
    return "the protocol's interval" if confidence is None else f"the protocol's {100 * confidence:g}% interval"


def _recommendation_line(choice: Choice, chosen: TrainConfig | None, best: pd.Series, protocol: Any = None) -> str:
    """What ``chosen.json`` trains, and why (``best``: the best CT configuration's row of the table)."""
    if choice.recommendation == "none":
        return ("**Recommendation: none.** The vanilla baseline could not be measured on the validation split ("
                f"{'; '.join(choice.unmeasured)}), so neither \"CT helps\" nor \"CT does not help\" follows from "
                "these figures. Fix: train longer (more epochs, or a larger learning rate) and run tune again. No "
                "`chosen.json` was written (one left in this folder by an earlier run was removed).")
    if choice.recommend_ct:
        method = "" if "strategy" not in best or not isinstance(best["strategy"], str) else (
            f" (strategy `{best['strategy']}`, chosen by the grid's strategy axis)")
        return (f"**Recommendation: CT**{method} with the configuration above (validation IP reduction "
                f"{float(best.ip_reduction_pct):.2f}%, significant at {_interval(protocol)}); `chosen.json` trains it.")
    assert chosen is not None
    written = ("`chosen.json` trains vanilla (its `tune.ct_train` holds the best CT configuration; `always_ct` / "
               "`--always-ct` writes that instead)" if chosen.strategy == "vanilla" else
               "`chosen.json` trains the best CT configuration anyway (`always_ct`)")
    ip = float(best.ip_reduction_pct)
    if not choice.passed:
        why = "no configuration passes the rule"
    elif math.isfinite(ip) and ip > 0:
        why = f"the best passing configuration's IP reduction {ip:.2f}% is not significant at {_interval(protocol)}"
    else:
        why = "no configuration that passes the rule lowers validation IP"
    return f"**Recommendation: vanilla** ({why}, and vanilla meets every constraint by definition): {written}."


def figure_title(name: str, choice: Choice, best: pd.Series, picked: str, number: int) -> str:
    """tune.png's title: the recommendation, then the best CT configuration and why it is (not) recommended."""
    ip = float(best.ip_reduction_pct)
    ip_text = f"IP reduction {ip:+.1f}%" if math.isfinite(ip) else "IP not measurable"
    if choice.recommendation == "none":
        return (f"CT tuning on {name}: NO RECOMMENDATION\nthe vanilla baseline could not be measured "
                "(too few epochs?)")
    if choice.recommend_ct:
        return f"CT tuning on {name}: recommendation CT\n#{number} {picked}: {ip_text} (significant)"
    if not choice.passed:
        reason = "fails the rule (least violation)"
    elif math.isfinite(ip) and ip > 0:
        reason = "not significant"
    else:
        reason = "does not lower IP"
    return f"CT tuning on {name}: recommendation VANILLA\nbest CT #{number} {picked}: {ip_text}, {reason}"


def write_chosen(path: Path, train: Mapping[str, Any], meta: Mapping[str, Any]) -> Path:
    """The chosen config as JSON: ``train`` (read by ``ct-plugin train --config``) and ``tune`` metadata."""
    atomic_write_json(path, {"train": dict(train), "tune": dict(meta)})
    return path


def write_outputs(
    out: Path, table: pd.DataFrame, axes: list[str], spec: DatasetSpec, base: TrainConfig,
    chosen: TrainConfig | None, overrides: dict[str, Any], choice: Choice, rule: SelectionRule, protocol: Any,
    carved: DatasetSpec, reference: dict[str, float], grid: dict[str, list[Any]],
    rescues: list[dict[str, Any]] | None = None, ct_config: TrainConfig | None = None,
    seeds: list[int] | None = None, notes: list[str] | None = None,
) -> dict[str, Path]:
    """Write ``tune.csv``, ``tune.md``, ``tune.png`` and ``chosen.json`` into ``out``; return their paths.

    ``chosen`` is what ``chosen.json`` trains (vanilla when CT is not recommended), ``ct_config``
    the best CT configuration (default ``chosen``), recorded in the metadata as ``ct_train``.
    ``chosen`` is None when nothing is recommended (``choice.recommendation == "none"``): then no
    ``chosen.json`` is written, an old one in ``out`` is removed, and ``config`` is not in the paths.
    ``seeds``: the training seeds every configuration ran with (default ``[base.seed]``).
    ``notes``: warnings on the judgement (e.g. a validation split too small for the accuracy
    tolerance), written into ``tune.md`` and the metadata's ``warnings``.

    ``rescues``: the rescue stages trained because no configuration before them passed, each
    ``{"stage": n, "change": what they change, "points": [grid points]}``.
    """
    rescues = list(rescues or [])
    notes = list(notes or [])
    seeds = list(seeds or [base.seed])
    seeds_text = (f"seed {seeds[0]}" if len(seeds) == 1 else
                  f"seeds {', '.join(map(str, seeds))} (every figure of the table is the mean over them, "
                  "each seed's CT run against the same seed's vanilla run)")
    split = carved.options["validation_split"]
    best = table[table.chosen].iloc[0]
    number = int(list(table.chosen).index(True)) + 1
    header = [
        f"# CT tuning on {spec.name}",
        "",
        f"Validation split: {len(carved.y_test)} rows carved from the {len(spec.y_train)} training rows "
        f"(seed {split['seed']}); the test split was not read. Vanilla baseline on the same rows"
        f"{'' if len(seeds) == 1 else ' (mean over the seeds)'}: "
        f"accuracy {100 * reference['accuracy']:.1f}%, validity {100 * reference['validity']:.1f}%, "
        f"IP {reference['ip']:.4g}.",
        "",
        *(line for note in notes for line in (f"**Warning:** {note}.", "")),
        f"Rule: {rule.describe()}.",
        "",
        *(line for r in rescues for line in (_rescue_line(r, grid), "")),
        f"**Outcome: {choice.message}.** Best CT configuration: {overrides}.",
        "",
        _recommendation_line(choice, chosen, best, protocol),
        "",
        f"Training: epochs {base.epochs}, batch {base.batch_size}, nce {base.nce}, T {base.max_steps}, "
        f"generator {base.generator} {base.generator_options or ''}, {seeds_text}. Evaluation: "
        f"{protocol.rounds} rounds x {protocol.n_factuals} validation factuals, lambda_energy "
        f"{list(protocol.lambda_energies)}, tau {protocol.tau}, T {protocol.max_steps}; `ip_significant`: the IP "
        f"difference is significant at {_interval(protocol)} (in every seed, in the same direction).",
        "",
        "![validation IP reduction against validity, one numbered point per configuration](tune.png)",
    ]
    csv_path, md_path = write_tables(table, out, header)
    picked = " ".join(f"{k}={_format(v)}" for k, v in zip(axes, best[axes], strict=True))
    figure = plot_grid(table, axes, out, figure_title(spec.name, choice, best, picked, number), rule.max_validity_drop,
                       choice.recommendation)
    paths = {"csv": csv_path, "markdown": md_path, "figure": figure}
    if chosen is None:  # nothing recommended: no config to train, and no stale one left behind
        (out / "chosen.json").unlink(missing_ok=True)
        return paths
    mature = float(best.mature_last) if "mature_last" in best else math.nan
    meta = {
        "dataset": spec.name, "overrides": overrides, "passed": choice.passed, "fallback": choice.fallback,
        "message": choice.message, "rule": rule.to_dict(), "grid": grid, "rescue": rescues,
        "protocol": dataclasses.asdict(protocol), "validation_split": split, "reference": reference,
        "chosen_cell": str(best.cell), "recommendation": choice.recommendation, "seeds": seeds,
        "ct_train": (ct_config or chosen).to_dict(), "warnings": notes,
        "ct_maturity": mature if math.isfinite(mature) else None,
    }
    return {"config": write_chosen(out / "chosen.json", chosen.to_dict(), meta), **paths}
