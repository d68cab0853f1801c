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

from ct_plugin.atomic import atomic_write, atomic_write_json
from ct_plugin.config import TrainConfig
from ct_plugin.data.spec import DatasetSpec
from ct_plugin.tuning.selection import Choice, SelectionRule

#: columns of the written table, in order (the grid axes come first)
TABLE_COLUMNS = (
    "stage", "status", "accuracy", "vanilla_accuracy", "accuracy_ok", "mature_last", "maturity_ok", "validity",
    "vanilla_validity", "validity_ok", "ip", "vanilla_ip", "ip_reduction_pct", "ip_significant",
    "ip_star_reduction_pct", "ip_star_significant", "violation_pts", "pass", "chosen", "reasons",
    "train_seconds", "cell",
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


def plot_grid(table: pd.DataFrame, axes: list[str], out: Path, title: str, max_validity_drop: float) -> Path:
    """``tune.png``: validation IP reduction vs validation validity, one point per configuration.

    Passing configurations are filled circles, failing ones crosses, the chosen one is ringed;
    the dashed line is the lowest validity the rule accepts (vanilla's minus the allowed drop).
    """
    fig, ax = plt.subplots(figsize=(7, 5))
    ok = table[table.status == "ok"]
    for passed, marker, label in ((True, "o", "passes the rule"), (False, "x", "fails the rule")):
        part = ok[ok["pass"] == passed]
        if len(part):
            ax.scatter(100 * part.validity, part.ip_reduction_pct, marker=marker, s=60,
                       color="#2ca02c" if passed else "#d62728", label=label, zorder=3)
    for _, row in ok.iterrows():
        text = ", ".join(f"{a}={_format(row[a])}" for a in axes)
        ax.annotate(text, (100 * row.validity, row.ip_reduction_pct), textcoords="offset points",
                    xytext=(5, 4), fontsize=7)
    chosen = ok[ok.chosen]
    if len(chosen):
        ax.scatter(100 * chosen.validity, chosen.ip_reduction_pct, s=260, facecolors="none",
                   edgecolors="black", linewidths=1.5, label="chosen", zorder=4)
    if len(ok):
        vanilla_validity = float(ok.vanilla_validity.iloc[0])
        ax.axvline(100 * (vanilla_validity - max_validity_drop), color="grey", linestyle="--",
                   label=f"vanilla validity - {100 * max_validity_drop:g} points")
    ax.axhline(0.0, color="grey", linewidth=0.8)
    low, high = ax.get_xlim()
    ax.set_xlim(low, min(high, 101.0))
    ax.set_xlabel("validation validity of CT counterfactuals (%)")
    ax.set_ylabel("validation IP reduction vs vanilla (%; higher is better)")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="best")
    path = atomic_write(out / "tune.png",
                        lambda handle: fig.savefig(handle, format="png", dpi=110, bbox_inches="tight"))
    plt.close(fig)
    return path


def _rescue_line(rescue: Mapping[str, Any], grid: Mapping[str, list[Any]]) -> str:
    """One header line: why a rescue stage ran and what it trained."""
    before = f"stage 1 (the grid {dict(grid)})" if rescue["stage"] == 2 else "the earlier stages"
    points = rescue["points"]
    return (f"No configuration of {before} passed, so stage {rescue['stage']} (a rescue) trained {len(points)} "
            f"more with {rescue['change']}: {points}.")


def _recommendation_line(choice: Choice, chosen: TrainConfig) -> str:
    """What ``chosen.json`` trains, and why."""
    if choice.recommend_ct:
        return "**Recommendation: CT** with the configuration above; `chosen.json` trains it."
    written = ("`chosen.json` trains vanilla (its `tune.ct_train` holds the best CT configuration; `always_ct` / "
               "`--always-ct` writes that instead)" if chosen.strategy == "vanilla" else
               "`chosen.json` trains the best CT configuration anyway (`always_ct`)")
    why = ("no configuration passes the rule" if not choice.passed else
           "no configuration that passes the rule lowers validation IP")
    return f"**Recommendation: vanilla** ({why}, and vanilla meets every constraint by definition): {written}."


def write_chosen(path: Path, train: Mapping[str, Any], meta: Mapping[str, Any]) -> Path:
    """The chosen config as JSON: ``train`` (read by ``ct-plugin train --config``) and ``tune`` metadata."""
    atomic_write_json(path, {"train": dict(train), "tune": dict(meta)})
    return path


def write_outputs(
    out: Path, table: pd.DataFrame, axes: list[str], spec: DatasetSpec, base: TrainConfig, chosen: TrainConfig,
    overrides: dict[str, Any], choice: Choice, rule: SelectionRule, protocol: Any, carved: DatasetSpec,
    reference: dict[str, float], grid: dict[str, list[Any]], rescues: list[dict[str, Any]] | None = None,
    ct_config: TrainConfig | None = None, seeds: list[int] | None = None,
) -> dict[str, Path]:
    """Write ``tune.csv``, ``tune.md``, ``tune.png`` and ``chosen.json`` into ``out``; return their paths.

    ``chosen`` is what ``chosen.json`` trains (vanilla when CT is not recommended), ``ct_config``
    the best CT configuration (default ``chosen``), recorded in the metadata as ``ct_train``.
    ``seeds``: the training seeds every configuration ran with (default ``[base.seed]``).

    ``rescues``: the rescue stages trained because no configuration before them passed, each
    ``{"stage": n, "change": what they change, "points": [grid points]}``.
    """
    rescues = list(rescues or [])
    seeds = list(seeds or [base.seed])
    seeds_text = (f"seed {seeds[0]}" if len(seeds) == 1 else
                  f"seeds {', '.join(map(str, seeds))} (every figure of the table is the mean over them, "
                  "each seed's CT run against the same seed's vanilla run)")
    split = carved.options["validation_split"]
    header = [
        f"# CT tuning on {spec.name}",
        "",
        f"Validation split: {len(carved.y_test)} rows carved from the {len(spec.y_train)} training rows "
        f"(seed {split['seed']}); the test split was not read. Vanilla baseline on the same rows"
        f"{'' if len(seeds) == 1 else ' (mean over the seeds)'}: "
        f"accuracy {100 * reference['accuracy']:.1f}%, validity {100 * reference['validity']:.1f}%, "
        f"IP {reference['ip']:.4g}.",
        "",
        f"Rule: {rule.describe()}.",
        "",
        *(line for r in rescues for line in (_rescue_line(r, grid), "")),
        f"**Outcome: {choice.message}.** Best CT configuration: {overrides}.",
        "",
        _recommendation_line(choice, chosen),
        "",
        f"Training: epochs {base.epochs}, batch {base.batch_size}, nce {base.nce}, T {base.max_steps}, "
        f"generator {base.generator} {base.generator_options or ''}, {seeds_text}. Evaluation: "
        f"{protocol.rounds} rounds x {protocol.n_factuals} validation factuals, lambda_energy "
        f"{list(protocol.lambda_energies)}, tau {protocol.tau}, T {protocol.max_steps}.",
        "",
        "![validation IP reduction against validity, one point per configuration](tune.png)",
    ]
    csv_path, md_path = write_tables(table, out, header)
    picked = ", ".join(f"{k}={v}" for k, v in zip(axes, table[table.chosen][axes].iloc[0], strict=True))
    outcome = "chosen" if choice.passed else "FALLBACK (none passes), least violation"
    if not choice.recommend_ct:
        outcome = "vanilla recommended; best CT" + ("" if choice.passed else " (none passes)")
    figure = plot_grid(table, axes, out, f"CT tuning on {spec.name}: {outcome}: {picked}",
                              rule.max_validity_drop)
    meta = {
        "dataset": spec.name, "overrides": overrides, "passed": choice.passed, "fallback": choice.fallback,
        "message": choice.message, "rule": rule.to_dict(), "grid": grid, "rescue": rescues,
        "protocol": dataclasses.asdict(protocol), "validation_split": split, "reference": reference,
        "chosen_cell": str(table[table.chosen].cell.iloc[0]),
        "recommendation": "ct" if choice.recommend_ct else "vanilla", "seeds": seeds,
        "ct_train": (ct_config or chosen).to_dict(),
    }
    config_path = write_chosen(out / "chosen.json", chosen.to_dict(), meta)
    return {"config": config_path, "csv": csv_path, "markdown": md_path, "figure": figure}
