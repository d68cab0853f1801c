"""What the commands share: the ``--threads`` flag, ``KEY=VALUE`` options and comma-separated lists."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from ct_plugin.errors import CTPluginError
from ct_plugin.settings.coerce import parse_key_values

DATA_DIR_HELP = (
    "folder with the real tables' CSV files; searched first, then $CT_PLUGIN_DATA, then "
    "~/.cache/ct-plugin/data (`ct-plugin datasets --where` shows the order)"
)
THREADS_HELP = (
    "torch CPU threads (default: $OMP_NUM_THREADS if set, else chosen from the model and batch sizes; 1 for "
    "small models)"
)


def key_values(pairs: Sequence[str] | None, flag: str) -> dict[str, Any]:
    """``KEY=VALUE`` flags through the validation layer (values typed against the plugin's signature later)."""
    return parse_key_values(pairs, flag)


def names(values: Sequence[str] | None) -> list[str]:
    """Accept repeated flags and comma-separated lists."""
    return [name.strip() for value in values or () for name in value.split(",") if name.strip()]


def floats(text: str | None) -> tuple[float, ...] | None:
    """Comma-separated numbers (None stays None)."""
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError as exc:
        raise CTPluginError(f"expected comma-separated numbers, got {text!r}") from exc
    if not values:
        raise CTPluginError(f"expected comma-separated numbers, got {text!r}")
    return values


def add_threads_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--threads N`` as every computing command offers it."""
    parser.add_argument("--threads", type=int, metavar="N", help=THREADS_HELP)


DEVICE_HELP = ("where models, data and searches live: auto (CUDA when torch sees one, the default), cpu, "
               "cuda or cuda:INDEX")


def add_device_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup, what: str = "") -> None:
    """``--device`` (default auto, as ``train``'s); ``what`` says what runs there."""
    parser.add_argument("--device", default="auto", metavar="DEVICE", help=DEVICE_HELP + (f"; {what}" if what else ""))


def add_experiment_arguments(parser: argparse.ArgumentParser) -> None:
    """``--rounds``, ``--workers``, ``--threads`` and ``--quiet`` as the experiments (reproduce, compare) offer them."""
    parser.add_argument("--rounds", type=int, help="evaluation rounds (default 100, 10 with --quick)")
    parser.add_argument("--workers", type=int,
                        help="worker processes of one torch thread each (default: the number of CPUs)")
    parser.add_argument("--threads", type=int, help=THREADS_HELP)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    add_device_argument(parser, "every training and evaluation (a run trained on one device is reused on another)")


CSV_OPTIONS = {
    "test_csv": ("--test-csv", "FILE", "a given test split for --csv (default: 20%% of the rows held out, stratified)"),
    "categorical": ("--categorical", "NAMES", "--csv columns to one-hot encode (default: every non-numeric column)"),
    "desired": ("--desired", "CLASS", "the favourable outcome of --csv (a label value or class name), the target "
                "of recourse (`ct-plugin explain`)"),
    "protected": ("--protected", "NAMES", "--csv features the evaluation treats as protected (frozen in its "
                  "protected setting; --protect makes them immutable in training)"),
    "impute": ("--impute", "median", "fill missing values of --csv (continuous: training median; categorical: "
               "level 'missing'); default: missing values are an error"),
    "split_seed": ("--split-seed", "N", "seed of the --csv train/test split (default 0, whatever --seed)"),
}
"""Options of the ``csv`` dataset that have flags of their own (``--dataset-option KEY=VALUE`` gives any)."""


def add_csv_arguments(group: argparse._ArgumentGroup) -> None:
    """``--csv FILE --target COLUMN`` and the flags of the ``csv`` dataset's options."""
    group.add_argument("--csv", metavar="FILE", help="train on your own CSV file (needs --target) instead of --dataset")
    group.add_argument("--target", metavar="COLUMN", help="label column of --csv")
    for dest, (flag, metavar, help_text) in CSV_OPTIONS.items():
        kwargs: dict[str, Any] = {"dest": dest, "metavar": metavar, "help": help_text}
        if dest in ("categorical", "protected"):
            kwargs["action"] = "append"
        elif dest == "split_seed":
            kwargs["type"] = int
        elif dest == "impute":
            kwargs = {"dest": dest, "choices": ["median"], "help": help_text}
        group.add_argument(flag, **kwargs)


def csv_dataset_options(args: argparse.Namespace) -> dict[str, Any] | None:
    """The ``csv`` dataset's options given by flags (None when no CSV flag is given).

    The file paths are made absolute, so a run's config (and a ``tune`` choice) reads the same
    files from any folder.
    """
    from pathlib import Path

    given = {dest: getattr(args, dest, None) for dest in CSV_OPTIONS}
    given = {dest: value for dest, value in given.items() if value is not None}
    if not (args.csv or args.target or given):
        return None
    if not args.csv:
        flags = [CSV_OPTIONS[d][0] for d in given] + (["--target"] if args.target else [])
        raise CTPluginError(f"{', '.join(flags)}: only with --csv FILE (your training table)")
    if getattr(args, "dataset", None):
        raise CTPluginError("give either --dataset or --csv, not both")
    if not args.target:
        raise CTPluginError(f"--csv {args.csv} needs --target COLUMN (the label column)")
    for flag, path in (("--csv", args.csv), ("--test-csv", given.get("test_csv"))):
        if path is not None and not Path(path).is_file():
            raise CTPluginError(f"{flag} file {str(path)!r} not found")
    options: dict[str, Any] = {"path": str(Path(args.csv).resolve()), "target": args.target}
    for dest, value in given.items():
        if dest in ("categorical", "protected"):
            value = names(value)
        elif dest == "test_csv":
            value = str(Path(value).resolve())
        options[dest] = value
    return options
