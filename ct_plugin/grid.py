"""Experiment grids: datasets x strategies x generators x hyperparameters x seeds, one run per cell.

``ct-plugin grid CONFIG.toml`` expands the grid of a TOML (or YAML/JSON) file, trains every cell
with :func:`ct_plugin.train` into its own run directory ``OUT/cells/<cell id>/`` and collects
one results table (``OUT/results.csv`` and ``OUT/results.md``). A config::

    [grid]
    datasets = ["moons", "circles"]
    strategies = ["vanilla", "ct"]
    generators = ["eccco", "generic"]
    seeds = [0, 1, 2]

    [grid.params]          # hyperparameter axes: any TrainConfig key -> list of values
    nce = [250, 1000]

    [train]                # fixed settings of every cell (TrainConfig keys)
    epochs = 20

    [datasets.adult]       # settings for one dataset only (override [train])
    batch_size = 1000

A cell's id is readable (dataset, strategy, generator, axis values, seed) plus a hash of its
complete settings, so changing a fixed setting makes new cells instead of reusing stale ones.
Vanilla cells do not depend on the generator or on counterfactual-only settings (nce, tau, ...),
so the grid holds one vanilla cell per dataset, other axes and seed.

Executors: ``local`` (default) runs the cells one after the other, or in a process pool with
``--workers N``; ``ray`` submits one Ray task per cell (``--address`` joins an existing
cluster; otherwise a local Ray instance with ``--workers`` CPUs is started). Every cell writes
``result.json`` when it finishes (status ``ok`` or ``failed`` with the error); a re-run skips
cells whose ``result.json`` says ``ok``, resumes interrupted runs from their checkpoint and
retries failed ones. Cells are seeded, so any executor gives the same table.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import json
import math
import os
import re
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ct_plugin.config import TrainConfig
from ct_plugin.errors import CTPluginError, MissingDependencyError

#: settings that only matter when counterfactuals are searched (vanilla cells ignore them)
CT_ONLY_SETTINGS = frozenset({
    "generator", "generator_options", "nce", "search_every", "tau", "max_steps", "epsilon", "burnin",
    "lambda_div", "lambda_reg", "lambda_adv",
})
#: columns of the results table, in order (metric columns follow when evaluation ran)
BASE_COLUMNS = (
    "cell", "dataset", "strategy", "generator", "seed", "params", "status", "epochs", "train_accuracy",
    "test_accuracy", "mature", "nascent", "mean_steps", "epoch_seconds", "search_seconds", "train_seconds",
)
#: figures that depend on the machine's speed, left out of comparisons of tables
TIMING_COLUMNS = frozenset({"epoch_seconds", "search_seconds", "train_seconds"})
#: keys of the optional [evaluate] table (see :func:`evaluate_model`)
EVALUATE_KEYS = frozenset({"enabled", "n_factuals", "epsilon", "seed", "max_samples"})
RAY_INSTALL = "pip install 'ct-plugin[ray]'  (or: pip install 'ray[default]>=2.9')"


# ---------------------------------------------------------------- the grid
@dataclass(frozen=True)
class Cell:
    """One experiment of the grid: a complete TrainConfig dict plus what identifies it."""

    cell_id: str
    dataset: str
    strategy: str
    generator: str
    seed: int
    params: dict[str, Any]
    config: dict[str, Any]
    evaluate: dict[str, Any] = field(default_factory=dict)
    #: a saved DatasetSpec directory to train on instead of loading ``config["dataset"]`` by name
    spec_dir: str | None = None

    def row_keys(self) -> dict[str, Any]:
        """The identifying columns of this cell's row in the results table."""
        return {
            "cell": self.cell_id,
            "dataset": self.dataset,
            "strategy": self.strategy,
            "generator": self.generator,
            "seed": self.seed,
            "params": ", ".join(f"{k}={_short(v)}" for k, v in sorted(self.params.items())),
        }


@dataclass
class GridConfig:
    """A parsed grid file."""

    datasets: list[str]
    strategies: list[str]
    generators: list[str]
    seeds: list[int]
    params: dict[str, list[Any]]
    train: dict[str, Any]
    per_dataset: dict[str, dict[str, Any]]
    evaluate: dict[str, Any]
    name: str = "grid"

    def cells(self) -> list[Cell]:
        """All cells of the grid, in a fixed order (vanilla cells deduplicated)."""
        axes = sorted(self.params)
        seen: set[str] = set()
        cells: list[Cell] = []
        combos = itertools.product(
            self.datasets, self.strategies, self.generators,
            itertools.product(*(self.params[a] for a in axes)), self.seeds,
        )
        for dataset, strategy, generator, values, seed in combos:
            params = dict(zip(axes, values))
            vanilla = strategy == "vanilla"
            if vanilla:
                params = {k: v for k, v in params.items() if k not in CT_ONLY_SETTINGS}
            settings = {**self.train, **self.per_dataset.get(dataset, {}), **params}
            settings.update(dataset=dataset, strategy=strategy, seed=seed)
            if not vanilla:
                settings["generator"] = generator
            try:
                config = TrainConfig.from_dict(settings).validate().to_dict()
            except CTPluginError as exc:
                raise CTPluginError(f"grid cell {dataset}/{strategy}/{generator}/{params}/seed {seed}: {exc}") from exc
            if vanilla:  # one vanilla cell however many generators / CT-only values
                defaults = TrainConfig().to_dict()
                for key in CT_ONLY_SETTINGS:
                    config[key] = defaults[key]
            cell_id = make_cell_id(dataset, strategy, "none" if vanilla else generator, params, seed, config)
            if cell_id in seen:
                continue
            seen.add(cell_id)
            cells.append(Cell(cell_id, dataset, strategy, "none" if vanilla else generator, seed, params, config,
                              dict(self.evaluate)))
        return cells


def _short(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":")) if isinstance(value, dict | list) else str(value)


def make_cell_id(
    dataset: str, strategy: str, generator: str, params: dict[str, Any], seed: int, config: dict[str, Any]
) -> str:
    """Readable, filesystem-safe id: the identifying values plus a hash of the complete settings."""
    digest = hashlib.sha1(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:8]
    parts = [dataset, strategy, generator] + [f"{k}{_short(v)}" for k, v in sorted(params.items())] + [f"s{seed}"]
    text = re.sub(r"[^A-Za-z0-9_.=+-]+", "_", "-".join(parts))[:100]
    return f"{text}-{digest}"


def _as_list(value: Any, name: str, kind: type | tuple[type, ...] = str) -> list[Any]:
    values = value if isinstance(value, list) else [value]
    if not values:
        raise CTPluginError(f"grid: {name} must not be empty")
    bad = [v for v in values if not isinstance(v, kind) or (isinstance(v, bool) and kind is not bool)]
    if bad:
        raise CTPluginError(f"grid: {name} has invalid value(s) {bad}")
    return values


def parse_grid(values: dict[str, Any]) -> GridConfig:
    """Validate the tables of a grid file (``[grid]``, ``[grid.params]``, ``[train]``, ``[datasets.X]``)."""
    if "grid" not in values or not isinstance(values["grid"], dict):
        raise CTPluginError("grid file needs a [grid] table (datasets, strategies, generators, seeds, params)")
    known_tables = {"grid", "train", "datasets", "evaluate"}
    unknown = sorted(set(values) - known_tables)
    if unknown:
        raise CTPluginError(f"grid file: unknown table(s) {unknown}; valid: {sorted(known_tables)}")
    grid = dict(values["grid"])
    known = {"name", "datasets", "strategies", "generators", "seeds", "params"}
    unknown = sorted(set(grid) - known)
    if unknown:
        raise CTPluginError(f"[grid]: unknown key(s) {unknown}; valid: {sorted(known)}")
    if "datasets" not in grid:
        raise CTPluginError("[grid] must list datasets, e.g. datasets = [\"moons\"]")
    params = grid.get("params", {})
    if not isinstance(params, dict):
        raise CTPluginError("[grid.params] must be a table of setting = [values]")
    valid_keys = set(TrainConfig().to_dict())
    reserved = {"dataset", "strategy", "generator", "seed"}
    for key, axis in params.items():
        if key in reserved:
            raise CTPluginError(f"[grid.params] {key!r}: use the [grid] list {key}s / {key}s = [...] instead")
        if key not in valid_keys:
            raise CTPluginError(f"[grid.params] unknown setting {key!r}; valid: {', '.join(sorted(valid_keys))}")
        if not isinstance(axis, list) or not axis:
            raise CTPluginError(f"[grid.params] {key} must be a non-empty list of values")
    train = _absolute_data_dir(dict(values.get("train", {})))
    per_dataset = {k: _absolute_data_dir(dict(v)) if isinstance(v, dict) else v
                   for k, v in values.get("datasets", {}).items()}
    for where, table in [("[train]", train)] + [(f"[datasets.{k}]", v) for k, v in per_dataset.items()]:
        if not isinstance(table, dict):
            raise CTPluginError(f"{where} must be a table of settings")
        bad = sorted(set(table) - valid_keys)
        if bad:
            raise CTPluginError(f"{where}: unknown setting(s) {bad}; valid: {', '.join(sorted(valid_keys))}")
    evaluate = values.get("evaluate", {})
    if not isinstance(evaluate, dict):
        raise CTPluginError("[evaluate] must be a table (enabled, n_factuals, epsilon)")
    bad = sorted(set(evaluate) - EVALUATE_KEYS)
    if bad:
        raise CTPluginError(f"[evaluate]: unknown key(s) {bad}; valid: {', '.join(sorted(EVALUATE_KEYS))}")
    config = GridConfig(
        name=str(grid.get("name", "grid")),
        datasets=_as_list(grid["datasets"], "datasets"),
        strategies=_as_list(grid.get("strategies", ["ct"]), "strategies"),
        generators=_as_list(grid.get("generators", ["eccco"]), "generators"),
        seeds=_as_list(grid.get("seeds", [0]), "seeds", int),
        params={k: list(v) for k, v in params.items()},
        train=train,
        per_dataset=per_dataset,
        evaluate=dict(evaluate),
    )
    _check_names(config)
    return config


def _absolute_data_dir(table: dict[str, Any]) -> dict[str, Any]:
    """A relative ``data_dir`` is taken from the current folder (worker processes may start elsewhere)."""
    if isinstance(table.get("data_dir"), str) and not os.path.isabs(table["data_dir"]):
        table["data_dir"] = str(Path(table["data_dir"]).resolve())
    return table


def _check_names(config: GridConfig) -> None:
    from ct_plugin.registry import get_registry

    registry = get_registry()
    for kind, names in (("dataset", config.datasets), ("strategy", config.strategies)):
        for name in names:
            registry.get(kind, name)  # raises UnknownNameError listing the valid names
    if any(s != "vanilla" for s in config.strategies):
        for name in config.generators:
            registry.get("generator", name)


def load_grid(path: str | Path) -> GridConfig:
    """Read and validate a grid file (TOML, YAML or JSON)."""
    from ct_plugin.settings_files import read_settings_file

    return parse_grid(read_settings_file(path, "grid file"))


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
    at ``epsilon`` (default 0.1). Returns an empty dict when the evaluation module is not there.
    """
    try:
        from ct_plugin.evaluation import metrics
    except ImportError:
        return {}
    if not all(hasattr(metrics, f) for f in ("validity", "implausibility", "robust_accuracy")):
        return {}
    import torch

    from ct_plugin.constraints import SearchConstraints
    from ct_plugin.generators.gradient import ECCCoGenerator
    from ct_plugin.rundir import load_run
    from ct_plugin.sampling import sample_targets

    run = load_run(run_dir)
    spec, model = run.spec, run.model
    gen = torch.Generator().manual_seed(int(options.get("seed", 0)))
    X_test = torch.as_tensor(spec.X_test, dtype=torch.float32)
    y_test = torch.as_tensor(spec.y_test, dtype=torch.long)
    n = min(int(options.get("n_factuals", 200)), len(X_test))
    index = torch.randperm(len(X_test), generator=gen)[:n]
    factuals = X_test[index]
    with torch.no_grad():
        targets = sample_targets(model(factuals).argmax(dim=1), spec.n_classes, gen)
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


def run_cell(cell: Cell, out: str, threads: int | None = 1) -> dict[str, Any]:
    """Train one cell into ``out/cells/<id>`` and return its result row (never raises).

    The row is also written to ``result.json`` in the cell's directory. An interrupted
    run there (checkpoint but no result) is resumed.
    """
    import torch

    from ct_plugin.data.spec import DatasetSpec
    from ct_plugin.rundir import atomic_write_json
    from ct_plugin.trainer import train

    previous_threads = torch.get_num_threads()
    if threads:  # one cell per core: several threads per cell only contend
        torch.set_num_threads(int(threads))
    run_dir = Path(out) / "cells" / cell.cell_id
    row: dict[str, Any] = cell.row_keys()
    start = time.perf_counter()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        resume = (run_dir / "checkpoint.pt").is_file() and (run_dir / "config.json").is_file()
        if resume:
            result = train(out=run_dir, resume=True, quiet=True)
        else:
            data = DatasetSpec.load(cell.spec_dir) if cell.spec_dir else None
            result = train(data, config=dict(cell.config), out=run_dir, quiet=True)
        row.update(summarise_log(result.log))
        if cell.evaluate.get("enabled", True):
            row.update(evaluate_model(run_dir, cell.evaluate))
        row["status"] = "ok"
    except Exception as exc:  # a failing cell is reported in the table, the grid goes on
        row.update(status="failed", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
    finally:
        torch.set_num_threads(previous_threads)
    row["wall_seconds"] = time.perf_counter() - start
    with contextlib.suppress(OSError):  # the row still goes back to the caller
        atomic_write_json(run_dir / "result.json", row)
    return row


def read_result(out: str | Path, cell: Cell) -> dict[str, Any] | None:
    """The stored result row of a cell, if it completed."""
    path = Path(out) / "cells" / cell.cell_id / "result.json"
    if not path.is_file():
        return None
    try:
        row = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    return row if row.get("status") == "ok" else None


# ---------------------------------------------------------------- executors
Progress = Callable[[dict[str, Any], int, int], None]


def run_local(cells: Sequence[Cell], out: str, workers: int = 1, progress: Progress | None = None,
              threads: int | None = 1) -> list[dict]:
    """Run cells in this process (``workers`` 1) or in a pool of ``workers`` processes (``threads`` each)."""
    rows: list[dict[str, Any]] = []
    if workers <= 1:
        for cell in cells:
            rows.append(run_cell(cell, out, threads))
            if progress:
                progress(rows[-1], len(rows), len(cells))
        return rows
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # torch and fork do not mix
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [pool.submit(run_cell, cell, out, threads) for cell in cells]
        for future in as_completed(futures):
            rows.append(future.result())
            if progress:
                progress(rows[-1], len(rows), len(cells))
    return rows


def import_ray() -> Any:
    """Ray, or a clear error with the install command."""
    try:
        import ray
    except ImportError as exc:
        raise MissingDependencyError("Ray (needed for --executor ray)", RAY_INSTALL) from exc
    return ray


def run_ray(
    cells: Sequence[Cell],
    out: str,
    workers: int | None = None,
    address: str | None = None,
    progress: Progress | None = None,
    gpus_per_cell: float = 0.0,
) -> list[dict]:
    """Run one Ray task per cell (1 CPU, ``gpus_per_cell`` GPUs); join ``address`` or start a local Ray instance.

    On a cluster, ``out`` should be a filesystem every node sees (the result rows come back to
    the driver either way, and the driver writes each ``result.json`` too).
    """
    from ct_plugin.rundir import atomic_write_json

    ray = import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        options: dict[str, Any] = {"ignore_reinit_error": True, "include_dashboard": False,
                                   "log_to_driver": False, "configure_logging": False}
        if address:
            options["address"] = address
        else:
            options["num_cpus"] = workers or os.cpu_count() or 1
        ray.init(**options)
    try:
        task = ray.remote(num_cpus=1, num_gpus=gpus_per_cell, max_retries=0)(run_cell)
        pending = {task.remote(cell, str(Path(out).resolve())): cell for cell in cells}
        rows: list[dict[str, Any]] = []
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                cell = pending.pop(ref)
                try:
                    row = ray.get(ref)
                except Exception as exc:  # the worker itself died (out of memory, node lost)
                    row = {**cell.row_keys(), "status": "failed", "error": f"Ray task failed: {exc}"}
                rows.append(row)
                run_dir = Path(out) / "cells" / cell.cell_id
                run_dir.mkdir(parents=True, exist_ok=True)
                atomic_write_json(run_dir / "result.json", row)
                if progress:
                    progress(row, len(rows), len(cells))
        return rows
    finally:
        if started_here:
            ray.shutdown()


# ------------------------------------------------------------------ results
def _format(value: Any) -> str:
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
    columns = [*BASE_COLUMNS, *extra, "error"]
    return [{c: row.get(c) for c in columns} for row in ordered]


def write_results(table: list[dict[str, Any]], out: Path) -> tuple[Path, Path]:
    """``results.csv`` and ``results.md`` in ``out``."""
    import csv

    columns = list(table[0]) if table else list(BASE_COLUMNS)
    csv_path = out / "results.csv"
    with csv_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in table:
            writer.writerow({k: _format(v) for k, v in row.items()})
    md_path = out / "results.md"
    shown = [c for c in columns if c not in ("cell", "error") or any(r.get(c) for r in table)]
    lines = ["| " + " | ".join(shown) + " |", "|" + "|".join("---" for _ in shown) + "|"]
    for row in table:
        cells = [_format(row.get(c)).replace("|", "/").replace("\n", " ")[:200] for c in shown]
        lines.append("| " + " | ".join(cells) + " |")
    md_path.write_text("\n".join(lines) + "\n")
    return csv_path, md_path


def run_grid(
    config: GridConfig,
    out: str | Path,
    executor: str = "local",
    workers: int | None = 1,
    address: str | None = None,
    progress: Progress | None = None,
    log: Callable[[str], None] = lambda message: None,
    gpus_per_cell: float = 0.0,
    threads: int | None = 1,
) -> list[dict[str, Any]]:
    """Run every cell not completed yet and return the whole results table (grid order).

    ``threads``: torch threads per cell of the local executor (default 1: cells run side by side).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cells = config.cells()
    done = {c.cell_id: row for c in cells if (row := read_result(out, c)) is not None}
    todo = [c for c in cells if c.cell_id not in done]
    log(f"grid {config.name!r}: {len(cells)} cells, {len(done)} already completed, {len(todo)} to run "
        f"({executor} executor)")
    (out / "grid.json").write_text(json.dumps(
        {"name": config.name, "cells": [{"cell": c.cell_id, "config": c.config} for c in cells]}, indent=2
    ))
    if todo:
        if executor == "local":
            rows = run_local(todo, str(out), workers or 1, progress, threads)
        elif executor == "ray":
            rows = run_ray(todo, str(out), workers, address, progress, gpus_per_cell)
        else:
            raise CTPluginError(f"unknown executor {executor!r}; choose local or ray")
    else:
        rows = []
    table = results_table([*done.values(), *rows], cells)
    write_results(table, out)
    return table


# ---------------------------------------------------------------------- CLI
def cmd_grid(args: argparse.Namespace) -> int:
    """``ct-plugin grid``: run a grid file and print where the table is."""
    config = load_grid(args.config)
    if args.executor == "ray":
        import_ray()  # fail before any work when Ray is missing
    if args.workers is not None and args.workers < 1:
        raise CTPluginError(f"--workers must be at least 1, got {args.workers}")
    if args.gpus_per_cell < 0:
        raise CTPluginError(f"--gpus-per-cell must be >= 0, got {args.gpus_per_cell}")
    out = Path(args.out or Path("runs") / Path(args.config).stem)

    def progress(row: dict[str, Any], i: int, n: int) -> None:
        if args.quiet:
            return
        status = row.get("status")
        detail = (f"test accuracy {_format(row.get('test_accuracy'))}, {_format(row.get('train_seconds'))} s"
                  if status == "ok" else row.get("error", ""))
        print(f"[{i}/{n}] {row['cell']}: {status} ({detail})", flush=True)

    table = run_grid(config, out, args.executor, args.workers, args.address, progress,
                     log=(lambda m: None) if args.quiet else print, gpus_per_cell=args.gpus_per_cell,
                     threads=args.threads or 1)
    failed = [row for row in table if row.get("status") != "ok"]
    print(f"results: {out / 'results.csv'} and {out / 'results.md'} ({len(table)} cells, {len(failed)} failed)")
    for row in failed:
        print(f"  failed: {row['cell']}: {row.get('error')}")
    return 1 if failed else 0


def register_commands(subparsers: Any) -> None:
    """Add the ``grid`` sub-command to the ``ct-plugin`` parser."""
    p = subparsers.add_parser(
        "grid",
        help="run a grid of experiments (datasets x strategies x generators x settings x seeds)",
        description=__doc__.split("\n\n")[0] + "\n\nSee `ct_plugin.grid` for the file format.",
    )
    p.add_argument("config", help="grid file (.toml, .yaml or .json) with [grid], [grid.params], [train] tables")
    p.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="local (default: sequential, or a process pool with --workers) or ray (one task per cell)")
    p.add_argument("--workers", type=int, default=None,
                   help="local: processes (default 1: sequential); ray without --address: CPUs of the local "
                        "Ray instance (default: all)")
    p.add_argument("--address", help="Ray cluster to join (e.g. auto or ray://head:10001); implies --executor ray")
    p.add_argument("--gpus-per-cell", type=float, default=0.0,
                   help="ray: GPUs each cell's task reserves (e.g. 1, or 0.25 to share a GPU); set device = "
                        "\"cuda\" in [train] so training uses it")
    p.add_argument("--out", help="output folder (default runs/<config name>); a re-run skips completed cells")
    p.add_argument("--threads", type=int, metavar="N",
                   help="torch CPU threads per cell (default 1: cells run side by side, more threads only contend)")
    p.add_argument("--quiet", action="store_true", help="print the summary only")
    p.set_defaults(func=_dispatch)


def _dispatch(args: argparse.Namespace) -> int:
    if args.address and args.executor != "ray":
        args.executor = "ray"
    return cmd_grid(args)
