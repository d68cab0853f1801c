"""Running grid cells: one cell in its own run directory, and the executors that run many.

:func:`run_cell` trains one cell into ``OUT/cells/<cell id>/`` (resuming an interrupted run
there) and writes its ``result.json``; :func:`run_local` runs cells one after the other or in a
pool of spawned processes, :func:`run_ray` as one Ray task per cell. ``run_cell`` stays a
top-level function: the process pool and Ray send it to their workers by reference.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import torch

from ct_plugin.atomic import atomic_write_json
from ct_plugin.data.spec import DatasetSpec
from ct_plugin.errors import MissingDependencyError
from ct_plugin.grid.cells import Cell
from ct_plugin.grid.results import evaluate_model, summarise_log
from ct_plugin.training.train import train

RAY_INSTALL = "pip install 'ct-plugin[ray]'  (or: pip install 'ray[default]>=2.9')"


# ----------------------------------------------------------------- one cell
def run_cell(cell: Cell, out: str, threads: int | None = 1) -> dict[str, Any]:
    """Train one cell into ``out/cells/<id>`` and return its result row (never raises).

    The row is also written to ``result.json`` in the cell's directory. An interrupted
    run there (checkpoint but no result) is resumed.
    """
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
