"""Running a grid: every cell not completed yet, then the results table (:func:`run_grid`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ct_plugin.errors import CTPluginError
from ct_plugin.grid.cells import GridConfig
from ct_plugin.grid.executors import Progress, run_local, run_ray
from ct_plugin.grid.results import read_result, results_table, write_results


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
