"""Running grid cells: one cell in its own run directory, many through the job runner.

:func:`run_cell` trains one cell into ``OUT/cells/<cell id>/`` (resuming an interrupted run
there) and writes its done-marker ``result.json``; :func:`run_cells` runs many with
:func:`ct_plugin.jobs.run_jobs` (one after the other, a pool of spawned processes, or Ray tasks).
``run_cell`` stays a top-level function: the process pool and Ray send it to their workers by reference.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import shutil
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import torch

from ct_plugin.data.spec import DatasetSpec
from ct_plugin.grid.cells import Cell
from ct_plugin.grid.results import evaluate_model, summarise_log
from ct_plugin.jobs import Job, read_marker, run_jobs, write_marker
from ct_plugin.threads import available_cpus
from ct_plugin.training.train import train

RESULT = "result.json"
"""A cell's done-marker (:mod:`ct_plugin.jobs`): its result row, fingerprinted by the cell id."""


# ----------------------------------------------------------------- one cell
def run_cell(cell: Cell, out: str) -> dict[str, Any]:
    """Train one cell into ``out/cells/<id>`` and return its result row (never raises).

    The row is also written as the cell's done-marker ``result.json``. An interrupted run there
    (checkpoint but no result) is resumed. The warnings the cell's training and evaluation raise
    (a search that rarely matures, say) go into the row's ``warnings`` column, each once, instead of
    the terminal: a grid or ``tune`` of dozens of cells in parallel workers printed them interleaved,
    and ``tune`` judges maturity in its own table.
    """
    run_dir = Path(out) / "cells" / cell.cell_id
    row: dict[str, Any] = cell.row_keys()
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
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
    messages = list(dict.fromkeys(str(w.message) for w in caught))
    if messages:
        row["warnings"] = "; ".join(messages)
    row["wall_seconds"] = time.perf_counter() - start
    with contextlib.suppress(OSError):  # the row still goes back to the caller
        write_marker(run_dir, RESULT, cell.cell_id, row)
    return row


def read_result(out: str | Path, cell: Cell) -> dict[str, Any] | None:
    """The stored result row of a cell, if it completed (a failed, foreign or unreadable marker: None)."""
    row = read_marker(Path(out) / "cells" / cell.cell_id, RESULT, cell.cell_id)
    return row if row is not None and row.get("status") == "ok" else None


def adopt_finished_cells(cells: Sequence[Cell], out: str | Path, sources: Sequence[str | Path]) -> list[str]:
    """Copy into ``out`` the cells that another grid folder of ``sources`` has already finished.

    A cell's id hashes its complete settings, seed and data, so a finished cell of the same id elsewhere
    is the same training: ``tune --methods`` tunes each method into its own folder and trains the shared
    vanilla baseline once this way. A cell already finished in ``out`` is kept; an unfinished attempt
    there is replaced. The copy lands under a temporary name and is renamed into place, so a kill leaves
    either no cell or a complete one. Returns the ids adopted.
    """
    out = Path(out)
    adopted = []
    for cell in cells:
        if read_result(out, cell) is not None:
            continue
        for source in sources:
            source = Path(source)
            if source.resolve() == out.resolve() or read_result(source, cell) is None:
                continue
            target = out / "cells" / cell.cell_id
            partial_copy = target.with_name(target.name + ".adopting")
            shutil.rmtree(partial_copy, ignore_errors=True)
            shutil.copytree(source / "cells" / cell.cell_id, partial_copy)
            shutil.rmtree(target, ignore_errors=True)
            partial_copy.rename(target)
            adopted.append(cell.cell_id)
            break
    return adopted


def _lost(cell: Cell, error: BaseException) -> dict[str, Any]:
    return {**cell.row_keys(), "status": "failed", "error": f"the worker running it died: {error}"}


# ---------------------------------------------------------------- executors
Progress = Callable[[dict[str, Any], int, int], None]


def default_workers(n_cells: int, on_accelerator: bool = False) -> int:
    """Processes the local executor trains ``n_cells`` cells in when the caller names none.

    One single-threaded cell per core this process may use, at most one per cell; 1 (in this process)
    inside a daemonic process, such as a pool's worker, which may not start processes of its own, and
    where the cells train on a GPU (``on_accelerator``): one process per core would put as many CUDA
    contexts on one device.
    """
    if on_accelerator or multiprocessing.current_process().daemon:
        return 1
    return min(available_cpus(), max(1, n_cells))


def trains_on_accelerator(cell: Cell) -> bool:
    """Whether ``cell`` trains on a GPU (its ``device``; ``auto`` where torch sees one)."""
    device = str(cell.config.get("device", "auto"))
    if device == "auto":
        return torch.cuda.is_available()
    return not device.startswith("cpu")


def run_cells(
    cells: Sequence[Cell], out: str | Path, executor: str = "local", workers: int | None = None,
    address: str | None = None, progress: Progress | None = None, gpus_per_cell: float = 0.0, threads: int | None = 1,
) -> list[dict[str, Any]]:
    """Run cells with :func:`ct_plugin.jobs.run_jobs` (local processes or Ray, ``threads`` torch threads each).

    ``workers``: local processes (None: :func:`default_workers`), or the CPUs of a local Ray instance
    (None: all). On a Ray cluster ``out`` should be a filesystem every node sees; the driver also
    writes each cell's ``result.json`` as its row comes back.
    """
    if workers is None and executor == "local":
        workers = default_workers(len(cells), any(trains_on_accelerator(cell) for cell in cells))
    out = str(Path(out).resolve()) if executor == "ray" else str(out)
    jobs = [Job(cell.cell_id, run_cell, (cell, out), on_lost=partial(_lost, cell)) for cell in cells]

    def arrived(row: dict[str, Any], done: int, total: int) -> None:
        if executor == "ray":
            run_dir = Path(out) / "cells" / row["cell"]
            run_dir.mkdir(parents=True, exist_ok=True)
            write_marker(run_dir, RESULT, row["cell"], row)
        if progress is not None:
            progress(row, done, total)

    return run_jobs(jobs, executor, workers, threads=threads, address=address, gpus_per_job=gpus_per_cell,
                    callback=arrived)
