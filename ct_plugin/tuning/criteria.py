"""The criteria table of ``tune``: per configuration its seeds' mean validation figures against vanilla's,
and the standard error of each difference that the selection rule holds to a tolerance.

**Why standard errors.** The rule's tolerances (1 point of accuracy, 5 of validity) are judged on
a validation split of a few hundred to a few thousand rows, and the chosen configuration is then
retrained on all training rows and measured on the test split. A configuration that passes at
4.9 validity points of loss is as likely to land beyond 5 points as within them (GMSC, 626
validation rows: 4.9 points on validation, 6.8 on test). The rule therefore adds a margin of
``SelectionRule.margin_se`` standard errors to each measured loss before comparing it with its
tolerance (the guard band of an acceptance test; the same idea as the "one-standard-error rule"
of model selection).

**The standard errors** (fractions, like the figures):

- *accuracy*: each seed's CT model and same-seed vanilla model classify the same validation rows,
  so the difference of their accuracies is the mean of a paired per-row difference (+1, 0 or -1);
  its standard error is ``sd / sqrt(n)`` (:func:`paired_difference_se`);
- *validity*: each model's validity is a share of the protocol's searches; the two shares' standard
  errors combined (:func:`proportion_difference_se`), over the searches that can differ: rounds x
  energies x factuals, but at most energies x validation rows (one row searched twice with one
  energy gives the same outcome, :func:`validity_searches`);
- *over seeds* (:func:`seed_mean_se`): the larger of the propagated sampling error of the seeds' mean
  and the spread of the seeds' differences (``sd / sqrt(k)``), which also holds the training seed's
  own variation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ct_plugin.data.spec import DatasetSpec
from ct_plugin.evaluation.protocol import ProtocolConfig, accepts_lambda_energy
from ct_plugin.evaluation.protocol.paper import default_n_factuals
from ct_plugin.grid import Cell
from ct_plugin.runs.files import read_log
from ct_plugin.runs.load import load_model
from ct_plugin.training.health import mature_share
from ct_plugin.tuning.seeds import mean_figures, mean_of

#: one configuration of the grid: its point and its cells, one per training seed (in seed order)
Config = tuple[dict[str, Any], list[Cell]]


def mature_last(run_dir: Path, epochs: int) -> float:
    """The share of mature in-training counterfactuals over the last ``epochs`` epochs (nan when none searched)."""
    share = mature_share(read_log(run_dir), epochs)  # the figure `train --config chosen.json` checks again
    return float("nan") if share is None else share


def validation_accuracy(run_dir: Path) -> float:
    """A tune cell's last-epoch accuracy on the validation rows (its log's test slot holds them)."""
    log = read_log(run_dir)
    return float(log[-1]["test_accuracy"]) if log else float("nan")


def paired_difference_se(first: np.ndarray, second: np.ndarray) -> float:
    """Standard error of ``mean(first - second)`` over paired rows: ``sd(first - second) / sqrt(n)`` (nan below 2)."""
    difference = np.asarray(first, dtype=float) - np.asarray(second, dtype=float)
    if difference.size < 2:
        return float("nan")
    return float(difference.std(ddof=1) / math.sqrt(difference.size))


def proportion_difference_se(first: float, second: float, n: int) -> float:
    """Standard error of the difference of two independent shares, each measured on ``n`` trials."""
    if n < 1 or not (math.isfinite(first) and math.isfinite(second)):
        return float("nan")
    p, q = min(max(first, 0.0), 1.0), min(max(second, 0.0), 1.0)
    return math.sqrt((p * (1 - p) + q * (1 - q)) / n)


def seed_mean_se(differences: Sequence[float], sampling_se: Sequence[float]) -> float:
    """Standard error of the mean of ``k`` seeds' differences (see the module docstring; nan if none is finite)."""
    pairs = [(d, s) for d, s in zip(differences, sampling_se, strict=True) if math.isfinite(d) and math.isfinite(s)]
    if not pairs:
        return float("nan")
    k = len(pairs)
    within = math.sqrt(sum(s * s for _, s in pairs)) / k
    between = float(np.std([d for d, _ in pairs], ddof=1)) / math.sqrt(k) if k > 1 else 0.0
    return max(within, between)


def validity_searches(protocol: ProtocolConfig, spec: DatasetSpec) -> int:
    """The searches behind one model's validation validity that can have different outcomes."""
    energies = len(protocol.lambda_energies) if accepts_lambda_energy(protocol.generator) else 1
    factuals = protocol.n_factuals or default_n_factuals(spec)
    return max(1, min(protocol.rounds * energies * factuals, energies * len(spec.y_test)))


class CorrectRows:
    """Which validation rows each tune cell's model classifies correctly (computed once per cell)."""

    def __init__(self, out: Path, spec: DatasetSpec):
        self._cells = out / "cells"
        self._X = torch.as_tensor(np.asarray(spec.X_test), dtype=torch.float32)
        self._y = np.asarray(spec.y_test, dtype=np.int64)
        self._seen: dict[str, np.ndarray] = {}

    def __call__(self, cell_id: str) -> np.ndarray:
        """A boolean per validation row, for the model of cell ``cell_id``."""
        if cell_id not in self._seen:
            model = load_model(self._cells / cell_id)
            with torch.no_grad():
                predicted = torch.cat([model(part).argmax(dim=1) for part in torch.split(self._X, 65536)])
            self._seen[cell_id] = predicted.numpy() == self._y
        return self._seen[cell_id]


def criteria_table(
    configs: Sequence[Config], vanillas: Sequence[Cell], rows: Mapping[str, dict[str, Any]],
    figures: Mapping[str, dict[str, float]], reference: dict[str, float], out: Path, maturity_epochs: int,
    correct: CorrectRows, searches: int,
) -> pd.DataFrame:
    """One row per configuration: its criteria (the mean over its seeds), their standard errors, and vanilla's.

    ``cell`` is the first seed's cell id; ``accuracy_se`` and ``validity_se`` the standard errors of the
    differences from vanilla (fractions); ``searches`` as :func:`validity_searches`.
    """
    records = []
    for point, cells in configs:
        results = [rows.get(cell.cell_id, {}) for cell in cells]
        failed = next((r for r in results if r.get("status") != "ok"), None)
        seconds = [r.get("train_seconds") for r in results]
        record: dict[str, Any] = {
            **point, "cell": cells[0].cell_id, "status": "ok" if failed is None else failed.get("status", "missing"),
            "train_seconds": sum(seconds) if all(v is not None for v in seconds) else None,
        }
        if failed is None:
            dirs = [out / "cells" / cell.cell_id for cell in cells]
            per_seed = [figures[cell.cell_id] for cell in cells]
            f = mean_figures(per_seed)
            accuracies = [validation_accuracy(d) for d in dirs]
            references = [validation_accuracy(out / "cells" / v.cell_id) for v in vanillas]
            record.update(
                accuracy=mean_of(accuracies),
                accuracy_se=seed_mean_se(
                    [a - r for a, r in zip(accuracies, references, strict=True)],
                    [paired_difference_se(correct(c.cell_id), correct(v.cell_id))
                     for c, v in zip(cells, vanillas, strict=True)]),
                mature_last=mean_of([mature_last(d, maturity_epochs) for d in dirs]),
                validity=f["validity_run"],
                validity_se=seed_mean_se(
                    [s["validity_run"] - s["validity_reference"] for s in per_seed],
                    [proportion_difference_se(s["validity_run"], s["validity_reference"], searches)
                     for s in per_seed]),
                ip=f["ip_run"], ip_reduction_pct=f["ip_reduction_pct"],
                ip_significant=f["ip_significant"], ip_star_reduction_pct=f["ip_star_reduction_pct"],
                ip_star_significant=f["ip_star_significant"],
                cost_reduction_pct=f.get("cost_reduction_pct", float("nan")),
            )
        else:
            record["reasons"] = f"training failed: {failed.get('error', 'no result')}"
        record.update(vanilla_accuracy=reference["accuracy"], vanilla_validity=reference["validity"],
                      vanilla_ip=reference["ip"])
        records.append(record)
    return pd.DataFrame.from_records(records)
