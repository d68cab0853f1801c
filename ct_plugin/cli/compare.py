"""``ct-plugin compare``: every method on one protocol (:mod:`ct_plugin.compare`)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from ct_plugin.cli.common import DATA_DIR_HELP, add_experiment_arguments, names
from ct_plugin.errors import CTPluginError
from ct_plugin.threads import resolve_threads

COMMANDS = ("compare",)

COMPARE_EPILOG = """\
examples:
  ct-plugin compare --quick --datasets circles,credit_default --out /tmp/ct-compare
  ct-plugin compare --methods ct,ct_recourse,cat --datasets credit_default,gmsc
  ct-plugin compare --data-dir DATA --out docs          # the committed docs/strategies.md

Per dataset and method: `tune` chooses the method's settings on a validation split of the training
rows (at most 9 configurations x 2 seeds, CT's own budget), then the method's best configuration
trains for every seed (nothing immutable; the protected feature immutable) beside a shared vanilla
baseline, and every (method, seed) is evaluated with the paper and strict protocols on the same
factual draws. Trained runs, tunes and evaluations are cached: an interrupted comparison continues,
and CT's runs are shared with `ct-plugin reproduce` (same --runs-dir).
"""


def command_line(args: argparse.Namespace) -> str:
    """The ``compare`` command that gives these settings (recorded in strategies.md; the data folder left out)."""
    parts = ["ct-plugin", "compare"]
    for flag, values in (("--datasets", args.datasets), ("--methods", args.methods)):
        if values:
            parts += [flag, ",".join(names(values))]
    if args.quick:
        parts.append("--quick")
    if args.max_cost_increase is not None:
        parts += ["--max-cost-increase", f"{args.max_cost_increase:g}"]
    defaults = {"--out": "compare-out", "--runs-dir": "runs/reproduce"}
    for flag, value in (("--seeds", args.seeds), ("--rounds", args.rounds), ("--out", args.out),
                        ("--runs-dir", args.runs_dir)):
        if value is not None and defaults.get(flag) != value:
            parts += [flag, shlex.quote(str(value))]
    return " ".join(parts)


def cmd_compare(args: argparse.Namespace) -> int:
    """``ct-plugin compare``."""
    import torch  # imported when the command runs, not for --help

    from ct_plugin.compare.methods import resolve_methods
    from ct_plugin.compare.run import run_compare
    from ct_plugin.reproduce.plan import DEFAULT_DATASETS, Plan

    torch.set_num_threads(resolve_threads(args.threads))
    if args.seeds is not None and args.seeds < 1:
        raise CTPluginError(f"--seeds must be at least 1, got {args.seeds}")
    if args.max_cost_increase is not None and not args.max_cost_increase >= 0:
        raise CTPluginError(f"--max-cost-increase must be a percentage >= 0, got {args.max_cost_increase}")
    if args.workers is not None and args.workers < 1:
        raise CTPluginError(f"--workers must be at least 1, got {args.workers}")
    methods = resolve_methods(names(args.methods))
    datasets = names(args.datasets) or list(DEFAULT_DATASETS["reference"])
    plan = Plan.for_mode(args.quick, seeds=args.seeds, sources=("tune",), device=args.device)
    result = run_compare(datasets, methods, plan, Path(args.out), Path(args.runs_dir), args.data_dir,
                         command_line(args), log=lambda m: print(m, file=sys.stderr, flush=True), rounds=args.rounds,
                         workers=args.workers, progress=not args.quiet,
                         max_cost_increase=None if args.max_cost_increase is None else args.max_cost_increase / 100)
    print(result["markdown"].read_text())
    return 0


def register(subparsers: Any, with_plugins: bool = True) -> None:
    """Add the ``compare`` sub-command."""
    cp = subparsers.add_parser(
        "compare", help="train CT, its leads and the peer methods, each tuned on validation, on one protocol",
        description="Compare training methods on the paper's datasets and write strategies.md.",
        epilog=COMPARE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cp.add_argument("--methods", action="append", metavar="NAMES",
                    help="comma-separated methods (default: all: ct, ct_blockwise, ct_flipped, ct_no_adv, ct_gradsup, "
                    "ct_blockwise_gradsup, ct_recourse, cat, counternet, recourse); ct is always included")
    cp.add_argument("--datasets", action="append", metavar="NAMES",
                    help="comma-separated datasets (default: reproduce's nine, reference data style)")
    cp.add_argument("--quick", action="store_true",
                    help="CI-sized run: 1 seed, 15 epochs, nce <= 300, 10 rounds")
    cp.add_argument("--seeds", type=int, help="training seeds per model (default 3; 1 with --quick)")
    cp.add_argument("--max-cost-increase", type=float, metavar="PCT",
                    help="every method's tune also judges cost: a configuration whose validation cost of recourse "
                    "exceeds vanilla's by more than PCT%% fails (as `tune --max-cost-increase`; default: not judged)")
    cp.add_argument("--data-dir", help=DATA_DIR_HELP)
    cp.add_argument("--out", default="compare-out",
                    help="output folder for strategies.md, figures/ and results/ (default compare-out; "
                    "`--out docs` rewrites the committed docs/strategies.md)")
    cp.add_argument("--runs-dir", default="runs/reproduce",
                    help="where trained runs and tunes go (default runs/reproduce, shared with reproduce)")
    add_experiment_arguments(cp)
    cp.set_defaults(func=cmd_compare)
