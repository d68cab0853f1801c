"""What both evaluation protocols (``paper`` and ``strict``) share.

The :class:`Evaluation` record they return; loading and checking the runs and labelling them;
the dataset spec of each search setting; building the post-hoc generator; and the per-run
summary rows (mean, standard error) of the per-round figures. All re-exported by
:mod:`ct_plugin.evaluation.protocol`.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ct_plugin.data.spec import DatasetSpec
from ct_plugin.errors import CTPluginError
from ct_plugin.evaluation.protocol.config import MAIN, PROTECTED, ProtocolConfig
from ct_plugin.generators.base import CounterfactualGenerator
from ct_plugin.plugins.options import build_with_options
from ct_plugin.plugins.registry import get_registry
from ct_plugin.runs.load import Run, load_run
from ct_plugin.torch_utils import check_finite_outputs


def capped_class_rows(X: np.ndarray, y: np.ndarray, n_classes: int, cap: int, gen: torch.Generator,
                      where: str) -> dict[int, torch.Tensor]:
    """Up to ``cap`` rows of every class (a seeded subsample), at least two each (``where`` names the rows)."""
    X_t = torch.as_tensor(X, dtype=torch.float32)
    y_t = torch.as_tensor(y, dtype=torch.long)
    out = {}
    for cls in range(n_classes):
        rows = X_t[y_t == cls]
        if len(rows) < 2:
            raise CTPluginError(f"{where} has {len(rows)} rows of class {cls}; the metrics need at least two per class")
        if len(rows) > cap:
            rows = rows[torch.randperm(len(rows), generator=gen)[:cap]]
        out[cls] = rows
    return out


def search_specs(spec: DatasetSpec, config: ProtocolConfig) -> dict[str, DatasetSpec]:
    """The dataset spec of each search setting: main (free or as trained) and protected (+ protected frozen)."""
    main = spec if config.main_search == "spec" else dataclasses.replace(spec, mutability=["both"] * spec.n_features)
    protected = main.with_mutability(protect=True) if spec.protected else main
    return {MAIN: main, PROTECTED: protected}


def frozen_features(spec: DatasetSpec) -> list[str]:
    """Features that cannot move freely in a search over ``spec``: immutable or one-directional."""
    out = []
    for feature in spec.raw_feature_names:
        kinds = {spec.mutability[c] for c in spec.columns_of(feature)}
        kind = "none" if "none" in kinds else next(iter(kinds - {"both"}), "both")
        if kind != "both":
            out.append(feature if kind == "none" else f"{feature} ({kind} only)")
    return out


@dataclass
class Evaluation:
    """Everything the protocol computed; :mod:`ct_plugin.evaluation.report` writes it out."""

    dataset: str
    labels: list[str]
    runs: list[Run]
    config: ProtocolConfig
    rounds: pd.DataFrame
    summary: pd.DataFrame
    comparison: pd.DataFrame
    robustness: pd.DataFrame
    attribution: pd.DataFrame
    row_attribution: pd.DataFrame | None
    ig_maps: dict[str, np.ndarray]
    examples: dict[str, dict[str, np.ndarray]]
    seconds: float
    frozen: dict[str, list[str]] = field(default_factory=dict)
    """Per search setting, the features frozen (immutable) or restricted to one direction."""

    @property
    def spec(self) -> DatasetSpec:
        """The dataset spec of the reference run."""
        return self.runs[0].spec


# --------------------------------------------------------------------- checks
def load_runs(run_dirs: Sequence[str | Path]) -> list[Run]:
    """Load run directories (each must be complete) and check they share one dataset split."""
    if not run_dirs:
        raise CTPluginError("give at least one run directory to evaluate")
    runs = [load_run(path) for path in run_dirs]
    check_same_dataset(runs)
    return runs


def check_same_dataset(runs: Sequence[Run]) -> None:
    """Refuse runs trained on different datasets or different splits of one dataset, and models that output NaN."""
    for run in runs:
        test_rows = torch.as_tensor(run.spec.X_test, dtype=torch.float32)
        check_finite_outputs(run.model, test_rows, f"the model of {run.path}")
    first = runs[0]
    for run in runs[1:]:
        a, b = first.spec, run.spec
        if a.name != b.name:
            raise CTPluginError(
                f"runs were trained on different datasets: {first.path} on {a.name!r}, {run.path} on "
                f"{b.name!r}; evaluate runs of one dataset together"
            )
        same = (
            a.feature_names == b.feature_names
            and a.X_test.shape == b.X_test.shape
            and np.array_equal(a.X_test, b.X_test)
            and np.array_equal(a.y_test, b.y_test)
        )
        if not same:
            raise CTPluginError(
                f"runs {first.path} and {run.path} were trained on different splits or versions of "
                f"dataset {a.name!r} (features or test rows differ: check seed, dataset options, "
                "max_rows); evaluate runs of one split together"
            )


def run_labels(runs: Sequence[Run]) -> list[str]:
    """Unique short labels: the directory names, made unique with the parent's name if needed."""
    labels = [run.path.name for run in runs]
    if len(set(labels)) < len(labels):
        labels = [f"{run.path.parent.name}/{run.path.name}" for run in runs]
    if len(set(labels)) < len(labels):
        labels = [f"{i}:{label}" for i, label in enumerate(labels)]
    return labels


# ----------------------------------------------------------------- generators
def build_posthoc(name: str, options: dict[str, Any], lambda_energy: float | None) -> CounterfactualGenerator:
    """Build the post-hoc generator, with ``lambda_energy`` if it accepts one."""
    item = get_registry().get("generator", name)
    opts = dict(options)
    if lambda_energy is not None:
        opts["lambda_energy"] = lambda_energy
    return build_with_options("post-hoc generator", name, item.factory, **opts)


def accepts_lambda_energy(name: str) -> bool:
    """Whether the generator's factory names a ``lambda_energy`` parameter.

    Factories that only take ``**options`` (the DiCE and CARLA adapters) do not count: they
    would reject the option, and an energy weight means nothing to them.
    """
    try:
        params = inspect.signature(get_registry().get("generator", name).factory).parameters
    except (TypeError, ValueError):
        return False
    return "lambda_energy" in params


# ---------------------------------------------------------------- summary rows
METRIC_SETTING = {
    "validity": MAIN, "ip": MAIN, "ip_star": MAIN, "redundancy": MAIN, "mean_steps": MAIN,
    "seconds_per_cf": MAIN, "cost": PROTECTED, "cost_mad": PROTECTED, "validity_protected": PROTECTED,
    "ip_star_0.5": MAIN,
}


def summary_records(rounds: pd.DataFrame, labels: Sequence[str], metrics: Sequence[str]) -> list[dict[str, Any]]:
    """Per run and metric: the mean over rounds, its standard error and the number of finite rounds."""
    rows = []
    for label in labels:
        part = rounds[rounds.run == label]
        for metric in metrics:
            values = part[metric].to_numpy(dtype=float)
            finite = values[np.isfinite(values)]
            rows.append({
                "run": label, "metric": metric, "setting": METRIC_SETTING.get(metric, MAIN),
                "mean": float(finite.mean()) if len(finite) else float("nan"),
                "se": float(finite.std(ddof=1)) if len(finite) > 1 else float("nan"),
                "rounds": len(finite),
            })
    return rows
