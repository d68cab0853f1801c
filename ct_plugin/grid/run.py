"""Running a grid: every cell not completed yet, then the results table (:func:`run_grid`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ct_plugin.atomic import atomic_write_json
from ct_plugin.grid.cells import GridConfig
from ct_plugin.grid.executors import Progress, read_result, run_cells
from ct_plugin.grid.results import results_table, write_results
from ct_plugin.jobs import folder_lock


def run_grid(
    config: GridConfig,
    out: str | Path,
    executor: str = "local",
    workers: int | None = None,
    address: str | None = None,
    progress: Progress | None = None,
    log: Callable[[str], None] = lambda message: None,
    gpus_per_cell: float = 0.0,
    threads: int | None = 1,
) -> list[dict[str, Any]]:
    """Run every cell not completed yet and return the whole results table (grid order).

    ``workers``: local processes (None: one per usable core, at most one per cell, 1 for cells on a GPU;
    1: in this process)
    or a local Ray instance's CPUs. ``threads``: torch threads per cell (default 1: cells run side by
    side). A second grid run in
    the same ``out`` at the same time is refused (:func:`ct_plugin.jobs.folder_lock`).
    """
    out = Path(out)
    cells = config.cells()
    with folder_lock(out, "running a grid in"):
        done = {c.cell_id: row for c in cells if (row := read_result(out, c)) is not None}
        todo = [c for c in cells if c.cell_id not in done]
        log(f"grid {config.name!r}: {len(cells)} cells, {len(done)} already completed, {len(todo)} to run "
            f"({executor} executor)")
        atomic_write_json(out / "grid.json",
                          {"name": config.name, "cells": [{"cell": c.cell_id, "config": c.config} for c in cells]})
        rows = run_cells(todo, out, executor, workers, address, progress, gpus_per_cell, threads)
        table = results_table([*done.values(), *rows], cells)
        write_results(table, out)
    return table
