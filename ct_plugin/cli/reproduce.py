"""``ct-plugin reproduce``: the paper's experiment end to end (:mod:`ct_plugin.reproduce`)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from ct_plugin.cli.common import DATA_DIR_HELP, add_experiment_arguments, key_values
from ct_plugin.errors import CTPluginError
from ct_plugin.threads import resolve_threads

COMMANDS = ("reproduce",)

REPRODUCE_EPILOG = """\
examples:
  ct-plugin reproduce --quick --datasets circles,moons --out /tmp/ct-quick
  ct-plugin reproduce --data-dir DATA --out docs           # the committed docs/results.md

Per dataset: tunes tau and lambda_reg on a validation split of the training rows, then trains a
vanilla baseline and CT (nothing immutable; protected feature immutable) with the paper's Table C.1
settings and with the tuned ones, for each seed, evaluates them with the paper's protocol and the
strict one, and writes OUT/results.md, OUT/figures/*.png and OUT/results/<dataset>/.
"""



def command_line(args: argparse.Namespace) -> str:
    """The ``reproduce`` command that gives these settings (recorded in results.md).

    The data folder is left out (it differs between machines): the tables are found the same way
    whichever way it is given.
    """
    parts = ["ct-plugin", "reproduce"]
    if args.datasets:
        parts += ["--datasets", ",".join(d.strip() for v in args.datasets for d in v.split(",") if d.strip())]
    for flag, on in (("--quick", args.quick), ("--no-ablations", args.no_ablations)):
        if on:
            parts.append(flag)
    defaults = {"--out": "reproduce-out", "--runs-dir": "runs/reproduce", "--data-style": "reference"}
    for flag, value in (("--seeds", args.seeds), ("--settings", args.settings), ("--data-style", args.data_style),
                        ("--rounds", args.rounds), ("--out", args.out), ("--runs-dir", args.runs_dir)):
        if value is not None and defaults.get(flag) != value:
            parts += [flag, shlex.quote(str(value))]
    for pair in args.dataset_option or ():
        parts += ["--dataset-option", shlex.quote(pair)]
    return " ".join(parts)


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cmd_reproduce(args: argparse.Namespace) -> int:
    """``ct-plugin reproduce``."""
    import torch  # imported when the command runs, not for --help

    from ct_plugin.reproduce.plan import DEFAULT_DATASETS, SOURCES, Plan
    from ct_plugin.reproduce.run import run_reproduce

    # the work runs in worker processes of one thread each; this process only coordinates
    torch.set_num_threads(resolve_threads(args.threads))
    datasets = [d.strip() for value in args.datasets or () for d in value.split(",") if d.strip()] or list(
        DEFAULT_DATASETS[args.data_style])
    sources = tuple(s.strip() for s in (args.settings or ",".join(SOURCES)).split(",") if s.strip())
    bad = [s for s in sources if s not in SOURCES]
    if bad or not sources:
        raise CTPluginError(f"--settings takes a comma-separated subset of {', '.join(SOURCES)}, got {args.settings!r}")
    if args.seeds is not None and args.seeds < 1:
        raise CTPluginError(f"--seeds must be at least 1, got {args.seeds}")
    if args.workers is not None and args.workers < 1:
        raise CTPluginError(f"--workers must be at least 1, got {args.workers}")
    plan = Plan.for_mode(args.quick, seeds=args.seeds, sources=sources, data_style=args.data_style,
                         dataset_options=key_values(args.dataset_option, "--dataset-option"), device=args.device)
    result = run_reproduce(
        datasets, plan, Path(args.out), Path(args.runs_dir), args.data_dir, command_line(args), log=_progress,
        rounds=args.rounds, workers=args.workers, ablations=not args.no_ablations, progress=not args.quiet,
    )
    print(result["markdown"].read_text())
    return 0


def register(subparsers: Any, with_plugins: bool = True) -> None:
    """Add the ``reproduce`` sub-command."""
    formatter = argparse.RawDescriptionHelpFormatter
    rp = subparsers.add_parser(
        "reproduce", help="train baseline and CT models and rebuild the paper's results table",
        description="Train vanilla and CT MLPs on the paper's datasets, evaluate them and write results.md.",
        epilog=REPRODUCE_EPILOG, formatter_class=formatter,
    )
    rp.add_argument("--datasets", action="append", metavar="NAMES",
                    help="comma-separated datasets (default: the nine of the paper; with --data-style reference "
                    "UCI Adult as published (uci_adult) and mnist, with project cf-data adult and digits)")
    rp.add_argument("--quick", action="store_true",
                    help="CI-sized run: 1 seed, 15 epochs, nce <= 300, 10 rounds, no ablations")
    rp.add_argument("--seeds", type=int, help="training seeds per model (default 3; 1 with --quick)")
    rp.add_argument("--settings", help="settings sources, comma-separated: paper (Table C.1), tune (default both)")
    rp.add_argument("--data-style", choices=("reference", "project"), default="reference",
                    help="reference: data as the reference builds it (raw synthetic sets, balanced credit tables, "
                    "UCI Adult as published, MNIST; default); project: the standardised synthetic sets, unbalanced "
                    "tables, cf-data adult and scikit-learn's digits")
    rp.add_argument("--dataset-option", action="append", metavar="KEY=VALUE",
                    help="loader option for every dataset, merged over the --data-style's (a given key wins), e.g. "
                    "max_rows=5000 or, with --datasets california_housing, features=as-is; ablations that change "
                    "the data keep their own (repeatable)")
    rp.add_argument("--no-ablations", action="store_true", help="skip the ablation rows")
    rp.add_argument("--data-dir", help=DATA_DIR_HELP)
    rp.add_argument("--out", default="reproduce-out",
                    help="output folder for results.md, figures/ and results/ (default reproduce-out, git-ignored; "
                    "`--out docs` rewrites the committed docs/results.md)")
    rp.add_argument("--runs-dir", default="runs/reproduce",
                    help="where the trained runs go (default runs/reproduce, git-ignored; complete runs are reused)")
    add_experiment_arguments(rp)
    rp.set_defaults(func=cmd_reproduce)
