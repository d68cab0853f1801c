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

The pieces: :mod:`ct_plugin.grid_cells` (the grid file and its cells),
:mod:`ct_plugin.grid_executors` (running a cell; the local and Ray executors) and
:mod:`ct_plugin.grid_results` (result rows and the results table); this module runs a grid and
holds the ``grid`` command. Their public names are importable from here as before.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ct_plugin.errors import CTPluginError
from ct_plugin.grid_cells import (
    CT_ONLY_SETTINGS,
    EVALUATE_KEYS,
    Cell,
    GridConfig,
    load_grid,
    make_cell_id,
    parse_grid,
)
from ct_plugin.grid_cells import _absolute_data_dir as _absolute_data_dir  # re-exported (moved)
from ct_plugin.grid_cells import _as_list as _as_list  # re-exported (moved)
from ct_plugin.grid_cells import _check_names as _check_names  # re-exported (moved)
from ct_plugin.grid_cells import _short as _short  # re-exported (moved)
from ct_plugin.grid_executors import RAY_INSTALL, Progress, import_ray, run_cell, run_local, run_ray
from ct_plugin.grid_results import (
    BASE_COLUMNS,
    TIMING_COLUMNS,
    _format,
    evaluate_model,
    read_result,
    results_table,
    summarise_log,
    write_results,
)
from ct_plugin.grid_results import _mean as _mean  # re-exported (moved)

#: the public names of this module (those of grid_cells, grid_executors and grid_results are re-exported)
__all__ = [
    "BASE_COLUMNS",
    "CT_ONLY_SETTINGS",
    "EVALUATE_KEYS",
    "RAY_INSTALL",
    "TIMING_COLUMNS",
    "Cell",
    "GridConfig",
    "Progress",
    "cmd_grid",
    "evaluate_model",
    "import_ray",
    "load_grid",
    "make_cell_id",
    "parse_grid",
    "read_result",
    "register_commands",
    "results_table",
    "run_cell",
    "run_grid",
    "run_local",
    "run_ray",
    "summarise_log",
    "write_results",
]


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
