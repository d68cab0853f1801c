"""``ct-plugin benchmark``: trained runs against CARLA's recourse methods, with CARLA's ``Benchmark``.

For every (run, method) pair, CARLA's ``Benchmark(mlmodel, method, factuals).run_benchmark()``
computes its own metrics (Distance_1..4 = L0/L1/L2/L-inf in CARLA's [0, 1] space,
Constraint_Violation, Redundancy, y-Nearest-Neighbours, Success_Rate, Average_Time); this module
adds ours, computed in our standardised encoding on the same counterfactuals:

* ``validity``: share of factuals whose counterfactual the model assigns to class 1 (failures are
  invalid),
* ``cost_l1``: mean L1 distance of the valid counterfactuals to their factuals,
* ``ip``: mean L2 distance of each valid counterfactual to the training samples of class 1 (implausibility),
* ``ip_star``: unbiased squared MMD (Gaussian kernel, median-heuristic bandwidth) between the
  valid counterfactuals and the class-1 training samples,

(IP and IP* are :mod:`ct_plugin.evaluation.metrics`' own functions.)
* ``violations``: mean number of violated ct-plugin constraints (mutability, domain, one-hot)
  per returned counterfactual, as CARLA returned it (no repair),
* ``failed``: factuals on which the method raised (they count as "no counterfactual"; a method
  that raises on every factual gets an ``error`` column instead of metrics, and the other pairs
  go on).

Every pair uses the same factuals: a seeded draw of test rows that every model predicts as class 0.

The tables, plot and notes written and printed from the summary table live in
:mod:`~ct_plugin.adapters.carla.benchmark_report` (re-exported here).
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ct_plugin.adapters.carla.benchmark_report import (  # noqa: F401
    HIGHER_IS_BETTER,
    LOWER_IS_BETTER,
    direction_legend,
    failure_summary,
    mutability_note,
    plot,
    to_markdown,
    write_outputs,
)
from ct_plugin.adapters.carla.compat import import_carla, quiet
from ct_plugin.adapters.carla.generators import METHODS, CarlaGenerator, RowwiseFallback, torch_threads
from ct_plugin.constraints import SearchConstraints
from ct_plugin.data.spec import DatasetSpec
from ct_plugin.errors import CTPluginError
from ct_plugin.evaluation import metrics
from ct_plugin.plugins.registry import get_registry
from ct_plugin.progress import progress_bar
from ct_plugin.runs.load import load_run
from ct_plugin.threads import resolve_threads
from ct_plugin.torch_utils import check_finite_outputs, frozen, model_device

carla = import_carla()

CARLA_COLUMNS = (
    "Distance_1",
    "Distance_2",
    "Distance_3",
    "Distance_4",
    "Constraint_Violation",
    "Redundancy",
    "y-Nearest-Neighbours",
    "Success_Rate",
    "Average_Time",
)
OUR_COLUMNS = ("validity", "cost_l1", "ip", "ip_star", "violations")


@dataclass
class BenchmarkModel:
    """One model to benchmark: a label for the table, the module, and the spec it was trained on."""

    label: str
    model: torch.nn.Module
    spec: DatasetSpec
    strategy: str = ""


def _predict(model: torch.nn.Module, X: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.as_tensor(X, dtype=torch.float32, device=model_device(model))).argmax(dim=1).cpu().numpy()


def select_factuals(models: Sequence[BenchmarkModel], n: int, seed: int) -> np.ndarray:
    """Indices of up to ``n`` test rows, in a seeded order, that every model predicts as class 0."""
    spec = models[0].spec
    order = np.random.default_rng(seed).permutation(len(spec.X_test))
    negative = np.ones(len(order), dtype=bool)
    for entry in models:
        with frozen(entry.model):
            negative &= _predict(entry.model, spec.X_test[order]) == 0
    chosen = order[negative][:n]
    if len(chosen) == 0:
        raise CTPluginError("no test row is predicted negative (class 0) by every model; nothing to explain")
    return chosen


def _check_same_encoding(models: Sequence[BenchmarkModel], dataset: str | None) -> None:
    first = models[0].spec
    for entry in models:
        spec = entry.spec
        if dataset is not None and spec.name != dataset:
            raise CTPluginError(f"run {entry.label!r} was trained on dataset {spec.name!r}, not {dataset!r}")
        same = (
            spec.feature_names == first.feature_names
            and np.allclose(spec.mean, first.mean)
            and np.allclose(spec.scale, first.scale)
            and spec.X_test.shape == first.X_test.shape
        )
        if not same:
            raise CTPluginError(
                f"run {entry.label!r} uses a different encoding or split of the data than "
                f"{models[0].label!r} "
                "(train the runs with the same dataset options and seed), so they cannot share factuals"
            )


def benchmark_pair(
    entry: BenchmarkModel,
    method: str,
    rows: np.ndarray,
    *,
    seed: int = 0,
    threads: int | None = 1,
    reference_size: int = 1000,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """CARLA's Benchmark plus our metrics for one (model, method) pair.

    Returns the summary row (column means of CARLA's table plus our metrics) and CARLA's raw table.
    """
    key = method.removeprefix("carla-")
    if key not in METHODS:
        raise CTPluginError(f"unknown CARLA method {method!r}; known: {', '.join('carla-' + m for m in METHODS)}")
    spec = entry.spec
    generator = CarlaGenerator(key, threads=threads, seed=seed)
    started = time.perf_counter()
    rng_state = (np.random.get_state(), torch.get_rng_state())
    np.random.seed(seed)
    torch.manual_seed(seed)
    try:
        with frozen(entry.model), quiet(), torch_threads(threads):
            generator.fit(spec)
            mlmodel, recourse = generator.recourse_method(entry.model, desired=1)
            factuals = mlmodel.data.frame(spec.X_test[rows], spec.y_test[rows])  # fresh 0..n-1 index
            safe = RowwiseFallback(recourse, mlmodel.data.columns)
            bench = carla.Benchmark(mlmodel, safe, factuals)
            table = bench.run_benchmark()
            answers = bench._counterfactuals.reset_index(drop=True)
    finally:
        np.random.set_state(rng_state[0])
        torch.set_rng_state(rng_state[1])
    seconds = time.perf_counter() - started

    X = spec.X_test[rows]
    returned = ~answers[mlmodel.data.columns].isna().any(axis=1).to_numpy()
    cf = np.full_like(X, np.nan, dtype=np.float64)
    if returned.any():
        cf[returned] = mlmodel.data.from_carla(answers.loc[returned, mlmodel.data.columns])
    with frozen(entry.model):
        predicted = np.full(len(X), -1)
        if returned.any():
            predicted[returned] = _predict(entry.model, cf[returned].astype(np.float32))
    valid = predicted == 1
    constraints = SearchConstraints.from_spec(spec)
    if returned.any():
        counts = constraints.violations(
            torch.as_tensor(cf[returned], dtype=torch.float32), torch.as_tensor(X[returned])
        )
        violations = float(counts.float().mean())
    else:
        violations = math.nan
    reference = spec.X_train[spec.y_train == 1]
    if len(reference) > reference_size:
        reference = reference[np.random.default_rng(seed).choice(len(reference), reference_size, replace=False)]
    row: dict[str, Any] = {
        "dataset": spec.name,
        "model": entry.label,
        "strategy": entry.strategy,
        "method": method,
        "n_factuals": len(rows),
    }
    for column in CARLA_COLUMNS:
        values = pd.to_numeric(table[column], errors="coerce") if column in table else pd.Series(dtype=float)
        row[column] = float(values.mean()) if values.notna().any() else math.nan
    row["validity"] = float(valid.mean())
    row["cost_l1"] = float(np.abs(cf[valid] - X[valid]).sum(axis=1).mean()) if valid.any() else math.nan
    row["ip"], row["ip_star"] = _plausibility(cf[valid], reference)
    row["violations"] = violations
    row["failed"] = safe.failures
    row["seconds"] = seconds
    if not returned.any():
        row["note"] = (
            f"{method} returned no counterfactual for any of the {len(rows)} factuals"
            + (f" ({safe.failures} raised an error inside CARLA)" if safe.failures else
               " (CARLA's search ended without reaching the other class)")
            + ": every metric is NaN"
        )
    return row, table


def _plausibility(counterfactuals: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """(IP, IP*) of valid counterfactuals against the class-1 training samples, with the core's metrics."""
    if len(counterfactuals) == 0:
        return math.nan, math.nan
    cf = torch.as_tensor(counterfactuals, dtype=torch.float32)
    samples = torch.as_tensor(reference, dtype=torch.float32)
    ip = float(metrics.implausibility(cf, samples).mean())
    if len(cf) < 2:
        return ip, math.nan
    targets = torch.ones(len(cf), dtype=torch.long)
    return ip, metrics.ip_star(cf, targets, {1: samples})


def run_benchmark(
    models: Sequence[BenchmarkModel],
    methods: Sequence[str],
    *,
    n_factuals: int = 20,
    seed: int = 0,
    threads: int | None = 1,
    dataset: str | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Benchmark every (model, method) pair on the same factuals; one summary row per pair."""
    if not models:
        raise CTPluginError("no models to benchmark")
    if not methods:
        raise CTPluginError("no methods to benchmark")
    if n_factuals <= 0:
        raise CTPluginError(f"n_factuals must be positive, got {n_factuals}")
    _check_same_encoding(models, dataset)
    rows = select_factuals(models, n_factuals, seed)
    pairs = [(entry, method) for entry in models for method in methods]
    results = []
    bar = progress_bar(len(pairs), "benchmark", unit="pair", quiet=not progress)
    for entry, method in pairs:
        bar.set_postfix_str(f"{entry.label} / {method}")
        try:
            row, _ = benchmark_pair(entry, method, rows, seed=seed, threads=threads)
        except CTPluginError:
            raise
        except Exception as exc:  # one method failing must not lose the other pairs' results
            row = {
                "dataset": entry.spec.name,
                "model": entry.label,
                "strategy": entry.strategy,
                "method": method,
                "n_factuals": len(rows),
                "error": f"{type(exc).__name__}: {exc}".strip(),
            }
            bar.write(f"{entry.label} / {method} failed: {row['error']}")
        results.append(row)
        bar.update(1)
    bar.close()
    return pd.DataFrame(results)


def _available_methods() -> list[str]:
    registry = get_registry()
    return [item.name for item in registry.items("generator") if item.extra.get("host") == "carla" and item.available]


def run_benchmark_command(args: argparse.Namespace) -> int:
    """The ``ct-plugin benchmark`` command."""

    methods = (
        _available_methods()
        if args.methods.strip() == "all"
        else [m.strip() for m in args.methods.split(",") if m.strip()]
    )
    registry = get_registry()
    for method in methods:
        item = registry.get("generator", method)  # unknown/unavailable names: clear error
        if item.extra.get("host") != "carla":
            raise CTPluginError(f"generator {method!r} is not a CARLA method; benchmark takes carla-* names")
    models = []
    for run_dir in args.runs:
        run = load_run(run_dir)
        test_rows = torch.as_tensor(run.spec.X_test, dtype=torch.float32)
        check_finite_outputs(run.model, test_rows, f"the model of {run_dir}")
        models.append(
            BenchmarkModel(label=Path(run_dir).name, model=run.model, spec=run.spec, strategy=run.config.strategy)
        )
    started = time.perf_counter()
    table = run_benchmark(
        models,
        methods,
        n_factuals=args.n_factuals,
        seed=args.seed,
        threads=resolve_threads(args.threads),
        dataset=args.dataset,
        progress=not args.quiet,
    )
    wall = time.perf_counter() - started
    command = "ct-plugin " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    paths = write_outputs(table, args.out, command=command, wall=wall)
    if not args.quiet:
        print(to_markdown(table.drop(columns=[c for c in ("dataset", "note") if c in table.columns])))
        print(direction_legend(list(table.columns)))
    print(f"wrote {', '.join(str(p) for p in paths)} ({wall:.0f} s)")
    note = mutability_note(models)
    if note:
        print(f"note: {note}", file=sys.stderr)
    problems = failure_summary(table)
    if problems:
        print(f"{len(problems)} of {len(table)} (run, method) pairs gave no result:", file=sys.stderr)
        for line in problems:
            print(f"  {line}", file=sys.stderr)
    failed = int(table["error"].notna().sum()) if "error" in table.columns else 0
    if failed:
        print(f"ct-plugin benchmark: {failed} method run(s) failed (see above); exit status 1", file=sys.stderr)
        return 1
    return 0
