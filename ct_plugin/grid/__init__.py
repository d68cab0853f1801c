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

Executors (the job runner of :mod:`ct_plugin.jobs`): ``local`` (default) runs one single-threaded
cell per usable core in a process pool (``--workers N`` chooses; 1 runs them one after the other in
this process); ``ray`` submits one Ray task per cell
(``--address`` joins an existing cluster; otherwise a local Ray instance with ``--workers`` CPUs is
started). Every cell writes its done-marker ``result.json`` when it finishes (status ``ok`` or
``failed`` with the error); a re-run skips cells whose marker says ``ok``, resumes interrupted runs
from their checkpoint and retries failed ones. Cells are seeded, so any executor gives the same table.

The pieces: :mod:`~ct_plugin.grid.cells` (the grid file and its cells),
:mod:`~ct_plugin.grid.executors` (running a cell; the local and Ray executors),
:mod:`~ct_plugin.grid.results` (result rows and the results table) and :mod:`~ct_plugin.grid.run`
(:func:`run_grid`); the ``grid`` command is :mod:`ct_plugin.cli.grid`. This package's face lists
the public names.
"""

from ct_plugin.grid.cells import CT_ONLY_SETTINGS, EVALUATE_KEYS, Cell, GridConfig, load_grid, make_cell_id, parse_grid
from ct_plugin.grid.executors import (
    Progress,
    adopt_finished_cells,
    default_workers,
    read_result,
    run_cell,
    run_cells,
)
from ct_plugin.grid.results import (
    BASE_COLUMNS,
    TIMING_COLUMNS,
    evaluate_model,
    results_table,
    summarise_log,
    write_results,
)
from ct_plugin.grid.run import run_grid

__all__ = [
    "BASE_COLUMNS",
    "CT_ONLY_SETTINGS",
    "EVALUATE_KEYS",
    "TIMING_COLUMNS",
    "Cell",
    "GridConfig",
    "Progress",
    "adopt_finished_cells",
    "default_workers",
    "evaluate_model",
    "load_grid",
    "make_cell_id",
    "parse_grid",
    "read_result",
    "results_table",
    "run_cell",
    "run_cells",
    "run_grid",
    "summarise_log",
    "write_results",
]
