"""The results of a grid: each cell's row, its stored ``result.json``, and the results table.

A cell's row holds its final-epoch figures and timing (:func:`summarise_log`) and, with
``[evaluate]``, a few seeded test-time figures (:func:`evaluate_model`); :func:`results_table` puts
the rows in grid order with a fixed set of columns and :func:`write_results` writes ``results.csv``
and ``results.md``.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

from ct_plugin.atomic import atomic_write
from ct_plugin.constraints import SearchConstraints
from ct_plugin.evaluation import metrics
from ct_plugin.generators.gradient import ECCCoGenerator
from ct_plugin.grid.cells import Cell
from ct_plugin.runs.load import load_run
from ct_plugin.sampling import sample_targets
from ct_plugin.torch_utils import predict_classes

#: columns of the results table, in order (metric columns follow when evaluation ran)
BASE_COLUMNS = (
    "cell", "dataset", "strategy", "generator", "seed", "params", "status", "epochs", "train_accuracy",
    "test_accuracy", "mature", "nascent", "mean_steps", "epoch_seconds", "search_seconds", "train_seconds",
)
#: figures that depend on the machine's speed, left out of comparisons of tables
TIMING_COLUMNS = frozenset({"epoch_seconds", "search_seconds", "train_seconds"})


# ----------------------------------------------------------------- one cell
def _mean(values: Iterable[float | None]) -> float | None:
    kept = [float(v) for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def summarise_log(log: list[dict[str, Any]]) -> dict[str, Any]:
    """Final-epoch figures and timing of a run's log."""
    if not log:
        return {"epochs": 0}
    last = log[-1]
    return {
        "epochs": len(log),
        "train_accuracy": last.get("train_accuracy"),
        "test_accuracy": last.get("test_accuracy"),
        "mature": last.get("mature"),
        "nascent": last.get("nascent"),
        "mean_steps": last.get("mean_steps"),
        "epoch_seconds": _mean(r.get("epoch_seconds") for r in log),
        "search_seconds": _mean(r.get("search_seconds") for r in log),
        "train_seconds": sum(float(r.get("epoch_seconds", 0.0)) for r in log),
    }


def evaluate_model(run_dir: Path, options: dict[str, Any]) -> dict[str, Any]:
    """A few seeded test-time figures of a trained cell (the evaluation module's metrics).

    ECCCo counterfactuals (tau 0.95, T 50) of ``n_factuals`` (default 200) test rows drawn with
    ``seed`` (default 0): validity and mean implausibility (IP) to at most ``max_samples``
    (default 1000) training rows of the target class; and FGSM robust accuracy on the test split
    at ``epsilon`` (default 0.1).
    """
    run = load_run(run_dir)
    spec, model = run.spec, run.model
    gen = torch.Generator().manual_seed(int(options.get("seed", 0)))
    X_test = torch.as_tensor(spec.X_test, dtype=torch.float32)
    y_test = torch.as_tensor(spec.y_test, dtype=torch.long)
    n = min(int(options.get("n_factuals", 200)), len(X_test))
    index = torch.randperm(len(X_test), generator=gen)[:n]
    factuals = X_test[index]
    targets = sample_targets(predict_classes(model, factuals), spec.n_classes, gen)
    constraints = SearchConstraints.from_spec(spec)
    result = ECCCoGenerator().search(model, factuals, targets, constraints, tau=0.95, max_steps=50, epsilon=0.3)
    X_train = torch.as_tensor(spec.X_train, dtype=torch.float32)
    y_train = torch.as_tensor(spec.y_train, dtype=torch.long)
    ip = []
    for cls in targets.unique().tolist():
        rows = targets == cls
        samples = X_train[y_train == cls][: int(options.get("max_samples", 1000))]
        ip.append(metrics.implausibility(result.counterfactuals[rows], samples))
    epsilon = float(options.get("epsilon", 0.1))
    robust = metrics.robust_accuracy(model, X_test, y_test, [epsilon])[0]
    return {
        "eval_validity": metrics.validity(model, result.counterfactuals, targets),
        "eval_ip": float(torch.cat(ip).mean()),
        f"eval_robust_acc_{epsilon:g}": robust,
    }



# ------------------------------------------------------------------ results
def format_value(value: Any) -> str:
    """A table cell: empty for None and NaN, 4 significant digits for floats."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def results_table(rows: Sequence[dict[str, Any]], order: Sequence[Cell]) -> list[dict[str, Any]]:
    """Rows in grid order with a fixed set of columns (base columns, then any metric columns)."""
    by_id = {row["cell"]: row for row in rows}
    ordered = [by_id[c.cell_id] for c in order if c.cell_id in by_id]
    extra = sorted({k for row in ordered for k in row if k.startswith("eval_")})
    columns = [*BASE_COLUMNS, *extra, "warnings", "error"]
    return [{c: row.get(c) for c in columns} for row in ordered]


def write_results(table: list[dict[str, Any]], out: Path) -> tuple[Path, Path]:
    """``results.csv`` and ``results.md`` in ``out``."""
    columns = list(table[0]) if table else list(BASE_COLUMNS)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in table:
        writer.writerow({k: format_value(v) for k, v in row.items()})
    csv_path = atomic_write(out / "results.csv", text.getvalue())
    shown = [c for c in columns if c not in ("cell", "warnings", "error") or any(r.get(c) for r in table)]
    lines = ["| " + " | ".join(shown) + " |", "|" + "|".join("---" for _ in shown) + "|"]
    for row in table:
        cells = [format_value(row.get(c)).replace("|", "/").replace("\n", " ")[:200] for c in shown]
        lines.append("| " + " | ".join(cells) + " |")
    md_path = atomic_write(out / "results.md", "\n".join(lines) + "\n")
    return csv_path, md_path
