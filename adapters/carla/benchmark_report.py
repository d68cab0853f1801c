"""The tables, plot and notes of ``ct-plugin benchmark``: what a benchmark run writes and prints.

:func:`write_outputs` writes ``benchmark.csv``, ``benchmark.md`` (a Markdown table from
:func:`to_markdown`, with the :func:`direction_legend` and the :func:`failure_summary`) and
``benchmark.png`` (:func:`plot`); :func:`mutability_note` warns when the runs restrict different
features. None of this needs CARLA: it works on the summary table of
:func:`ct_plugin.adapters.carla.benchmark.run_benchmark`, which re-exports every name here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ct_plugin.atomic import atomic_write

if TYPE_CHECKING:
    from ct_plugin.adapters.carla.benchmark import BenchmarkModel


def to_markdown(table: pd.DataFrame, digits: int = 3) -> str:
    """A GitHub-flavoured Markdown table (no extra dependency)."""
    columns = list(table.columns)

    def cell(value: Any) -> str:
        if isinstance(value, float | np.floating):
            return "nan" if math.isnan(value) else f"{value:.{digits}f}"
        return str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for _, record in table.iterrows():
        lines.append("| " + " | ".join(cell(record[c]) for c in columns) + " |")
    return "\n".join(lines) + "\n"


HIGHER_IS_BETTER = ("Success_Rate", "y-Nearest-Neighbours", "yNN", "validity")
LOWER_IS_BETTER = ("Distance_1", "Distance_2", "Distance_3", "Distance_4", "Constraint_Violation", "Redundancy",
                   "Average_Time", "cost_l1", "ip", "ip_star", "violations", "failed", "seconds")


def direction_legend(columns: Sequence[str]) -> str:
    """Which way is better for each metric column shown (one line under every table)."""
    higher = [c for c in columns if c in HIGHER_IS_BETTER]
    lower = [c for c in columns if c in LOWER_IS_BETTER]
    return f"Better: higher {', '.join(higher) or '-'}; lower {', '.join(lower) or '-'}."


def plot(table: pd.DataFrame, path: Path) -> None:
    """Grouped bars per method, one bar per model, for validity, cost, IP and CARLA's success rate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [
        ("validity", "validity (ours), higher is better"),
        ("Success_Rate", "CARLA Success_Rate, higher is better"),
        ("cost_l1", "L1 cost (ours), lower is better"),
        ("ip", "IP (ours), lower is better"),
    ]
    methods = list(dict.fromkeys(table["method"]))
    labels = list(dict.fromkeys(table["model"]))
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.8))
    width = 0.8 / max(len(labels), 1)
    for axis, (column, title) in zip(axes, metrics):
        for k, label in enumerate(labels):
            part = table[table["model"] == label].set_index("method").reindex(methods)
            values = part[column].to_numpy(dtype=float) if column in part else np.full(len(methods), np.nan)
            x = np.arange(len(methods)) + k * width
            axis.bar(x, np.nan_to_num(values), width, label=label)
            for xi in x[np.isnan(values)]:  # no result (failed, or no valid counterfactual): say so
                axis.text(xi, 0, "n/a", rotation=90, ha="center", va="bottom", fontsize="x-small")
        axis.set_xticks(np.arange(len(methods)) + width * (len(labels) - 1) / 2)
        axis.set_xticklabels([m.removeprefix("carla-") for m in methods], rotation=45, ha="right")
        axis.set_xlabel("CARLA method")
        axis.set_ylabel(column)
        axis.set_title(title, fontsize="small")
    axes[-1].legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.suptitle(f"CARLA benchmark: {table['dataset'].iloc[0]}, {int(table['n_factuals'].iloc[0])} factuals")
    fig.tight_layout()
    atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=120))
    plt.close(fig)


def write_outputs(table: pd.DataFrame, out: str | Path, command: str = "", wall: float | None = None) -> list[Path]:
    """Write ``benchmark.csv``, ``benchmark.md`` and ``benchmark.png`` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, md_path, png_path = out / "benchmark.csv", out / "benchmark.md", out / "benchmark.png"
    atomic_write(csv_path, table.to_csv(index=False))
    header = ""
    if command:
        header += f"Command: `{command}`\n\n"
    if wall is not None:
        header += f"Wall time: {wall:.0f} s\n\n"
    shown = table.drop(columns=[c for c in ("dataset", "note") if c in table.columns])
    shown = shown.rename(columns={"y-Nearest-Neighbours": "yNN"})
    text = header + to_markdown(shown) + "\n" + direction_legend(list(shown.columns)) + "\n"
    problems = failure_summary(table)
    if problems:
        text += "\nNo result:\n\n" + "".join(f"- {line}\n" for line in problems)
    atomic_write(md_path, text)
    plot(table, png_path)
    return [csv_path, md_path, png_path]


def mutability_note(models: Sequence[BenchmarkModel]) -> str | None:
    """A warning when the runs were trained with different immutable/monotone features.

    The ``violations`` column counts each run's own constraints, so runs with different
    constraints are not compared like for like (e.g. one trained with ``--protect``, one without).
    """
    def restricted(entry: BenchmarkModel) -> str:
        spec = entry.spec
        names = [f"{name} ({spec.mutability[spec.columns_of(name)[0]]})" for name in spec.raw_feature_names
                 if spec.mutability[spec.columns_of(name)[0]] != "both"]
        return ", ".join(names) or "none"

    kinds = {entry.label: restricted(entry) for entry in models}
    if len(set(kinds.values())) <= 1:
        return None
    listing = "; ".join(f"{label}: {value}" for label, value in kinds.items())
    return (f"the runs restrict different features ({listing}); CARLA's methods respect each run's own "
            "immutables, so Constraint_Violation and violations compare unequal tasks. Train every run "
            "with the same --protect/--immutable flags for a like-for-like comparison.")


def failure_summary(table: pd.DataFrame) -> list[str]:
    """One line per (model, method) pair that failed or returned nothing."""
    lines = []
    for _, record in table.iterrows():
        error = record.get("error")
        note = record.get("note")
        if isinstance(error, str) and error:
            lines.append(f"{record['model']} / {record['method']}: failed: {error}")
        elif isinstance(note, str) and note:
            lines.append(f"{record['model']} / {record['method']}: {note}")
    return lines
