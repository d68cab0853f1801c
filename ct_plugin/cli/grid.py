"""``ct-plugin grid``: run a grid file (:mod:`ct_plugin.grid`) and print where the table is."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ct_plugin.errors import CTPluginError

COMMANDS = ("grid",)


def cmd_grid(args: argparse.Namespace) -> int:
    """``ct-plugin grid``: run a grid file and print where the table is."""
    # torch and pandas: imported when the command runs, not for --help
    from ct_plugin.grid.cells import load_grid
    from ct_plugin.grid.results import format_value
    from ct_plugin.grid.run import run_grid
    from ct_plugin.jobs import import_ray

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
        detail = (f"test accuracy {format_value(row.get('test_accuracy'))}, {format_value(row.get('train_seconds'))} s"
                  if status == "ok" else row.get("error", ""))
        print(f"[{i}/{n}] {row['cell']}: {status} ({detail})", flush=True)

    table = run_grid(config, out, args.executor, args.workers, args.address, progress,
                     log=(lambda m: None) if args.quiet else print, gpus_per_cell=args.gpus_per_cell,
                     threads=args.threads or 1)
    failed = [row for row in table if row.get("status") != "ok"]
    warned = [row for row in table if row.get("warnings")]
    print(f"results: {out / 'results.csv'} and {out / 'results.md'} ({len(table)} cells, {len(failed)} failed"
          + (f", {len(warned)} with warnings in the table's warnings column" if warned else "") + ")")
    for row in failed:
        print(f"  failed: {row['cell']}: {row.get('error')}")
    return 1 if failed else 0


def register(subparsers: Any, with_plugins: bool = True) -> None:
    """Add the ``grid`` sub-command to the ``ct-plugin`` parser."""
    p = subparsers.add_parser(
        "grid",
        help="run a grid of experiments (datasets x strategies x generators x settings x seeds)",
        description=("Experiment grids: datasets x strategies x generators x hyperparameters x seeds, one run per "
                     "cell.\n\nSee `ct_plugin.grid` for the file format."),
    )
    p.add_argument("config", help="grid file (.toml, .yaml or .json) with [grid], [grid.params], [train] tables")
    p.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="local (default: a process pool, see --workers) or ray (one task per cell)")
    p.add_argument("--workers", type=int, default=None,
                   help="local: processes (default: one single-threaded cell per usable core, at most one per "
                        "cell, or 1 where the cells train on a GPU; 1 runs them one after the other); ray "
                        "without --address: CPUs of the local "
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
