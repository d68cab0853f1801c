"""``ct-plugin explain``: recourse for people from a trained run (the command line of :func:`ct_plugin.explain`)."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

from ct_plugin.cli.common import add_device_argument, add_threads_argument, key_values, names
from ct_plugin.errors import CTPluginError

COMMANDS = ("explain",)

EPILOG = """\
examples:
  ct-plugin explain runs/loans --row '{"income": 35, "debt": 12, "age": 41, "city": "north"}'
  ct-plugin explain runs/loans --csv applicants.csv --rows 3,17
  ct-plugin explain runs/adult-ct --rejected 500 --out explanations/adult
  ct-plugin explain runs/adult-ct --rejected 5 --compare generic,eccco,dice-random --n 2
  ct-plugin explain runs/loans --rejected 3 --immutable city --max-change income=10 --increase-only income

Prints Markdown (the changed features of each person, before and after, in original units, with
p(target), validity, cost and plausibility); --out also writes explanations.csv,
explanations.json (DiCE's format) and a figure per person.
"""


def parse_max_change(values: list[str] | None) -> dict[str, float]:
    """``--max-change income=10`` (repeatable or comma-separated) as feature -> amount."""
    out: dict[str, float] = {}
    for item in names(values):
        feature, sep, amount = item.partition("=")
        if not sep or not feature.strip():
            raise CTPluginError(f"--max-change expects FEATURE=AMOUNT (original units), got {item!r}")
        try:
            out[feature.strip()] = float(amount)
        except ValueError:
            raise CTPluginError(f"--max-change {item}: {amount!r} is not a number") from None
    return out


def parse_rows(text: str | None) -> list[int] | None:
    """``--rows 3,17`` as 0-based row positions of --csv."""
    if text is None:
        return None
    try:
        rows = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise CTPluginError(
            f"--rows expects comma-separated row numbers (0 = the first data row), got {text!r}") from None
    if not rows or min(rows) < 0:
        raise CTPluginError(f"--rows expects row numbers >= 0, got {text!r}")
    return rows


def people_from_args(args: argparse.Namespace) -> Any:
    """The rows to explain from --csv/--rows, --row or None (then --rejected)."""
    import pandas as pd  # pandas: when the command runs, not for --help

    from ct_plugin.data.csvfile import read_csv

    given = [flag for flag, value in (("--csv", args.csv), ("--row", args.row), ("--rejected", args.rejected))
             if value is not None]
    if len(given) != 1:
        raise CTPluginError("say who to explain with exactly one of --csv FILE, --row JSON or --rejected N"
                            + (f" (got {', '.join(given)})" if given else ""))
    if args.rows is not None and args.csv is None:
        raise CTPluginError("--rows picks rows of --csv FILE")
    if args.row is not None:
        try:
            row = json.loads(args.row)
        except json.JSONDecodeError as exc:
            raise CTPluginError(f"--row is not valid JSON ({exc.msg} at character {exc.pos}): {args.row!r}") from None
        if isinstance(row, dict):
            return [row]
        if isinstance(row, list) and row and all(isinstance(r, dict) for r in row):
            return row
        raise CTPluginError("--row expects a JSON object of feature -> value (or a list of them)")
    if args.csv is not None:
        frame = read_csv(args.csv, "--csv")
        rows = parse_rows(args.rows)
        if rows is not None:
            beyond = [r for r in rows if r >= len(frame)]
            if beyond:
                raise CTPluginError(f"--rows {beyond} lie beyond the {len(frame)} rows of {args.csv}")
            frame = frame.iloc[rows]
        frame.index = pd.Index(list(frame.index), name="person")
        return frame
    return None


def cmd_explain(args: argparse.Namespace) -> int:
    """Explain the people asked for and print (and write) the result."""
    from ct_plugin.recourse import OutOfRangeWarning, explain  # torch: when the command runs, not for --help

    rows = people_from_args(args)
    if args.generator and args.compare:
        raise CTPluginError("give either --generator NAME or --compare NAMES, not both")
    generators: Any = names(args.compare) if args.compare else args.generator
    options = key_values(args.generator_option, "--generator-option")
    if options and args.compare:
        raise CTPluginError("--generator-option goes with --generator (one generator); --compare uses each "
                            "generator's recourse defaults")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", OutOfRangeWarning)
        result = explain(
            args.run, rows, rejected=args.rejected, target=args.target_class, generator=generators,
            generator_options=options or None, n=args.n, seed=args.seed, immutable=names(args.immutable),
            increase_only=names(args.increase_only), decrease_only=names(args.decrease_only),
            max_change=parse_max_change(args.max_change), tau=args.tau, max_steps=args.max_steps,
            recourse_defaults=not args.no_recourse_defaults, within_observed=not args.full_domain,
            progress=not args.quiet, threads=args.threads, device=args.device,
        )
    for warning in caught:
        if issubclass(warning.category, OutOfRangeWarning):
            print(f"warning: {warning.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    print(result.to_markdown(max_people=None if args.out is None and args.show is None else args.show or 10,
                             all_features=args.all_features), end="")
    if args.out:
        paths = result.save(Path(args.out), figures=args.figures)
        figures = sum(1 for key in paths if key.startswith("figure"))
        print(f"\nwrote {paths['markdown']}, {paths['csv']}, {paths['json']} and {figures} figure(s) "
              f"under {Path(args.out) / 'figures'}")
    return 0


def register(subparsers: Any, with_plugins: bool = True) -> None:
    """Add the ``explain`` sub-command."""
    p = subparsers.add_parser(
        "explain", help="recourse for people: what would change a run's decision about them",
        description="Counterfactual explanations (recourse) for people from a trained run: the changes, in "
                    "original units, that would give them the desired outcome, with validity, cost and "
                    "plausibility. The run's immutable features never change.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", help="run directory (ct-plugin train --out)")
    who = p.add_argument_group("who (exactly one)")
    who.add_argument("--csv", metavar="FILE", help="people in a CSV file with the run's feature columns (original "
                     "units; the label column may be there)")
    who.add_argument("--rows", metavar="N,M", help="rows of --csv to explain (0 = the first data row; default all)")
    who.add_argument("--row", metavar="JSON", help="one person as a JSON object, e.g. '{\"income\": 35, ...}'")
    who.add_argument("--rejected", type=int, metavar="N",
                     help="the first N test rows of the run that the model does not give the target class")
    what = p.add_argument_group("what")
    what.add_argument("--target-class", metavar="CLASS",
                      help="class to reach (default: the data's desired class; else the other class of two)")
    what.add_argument("--generator", metavar="NAME",
                      help="counterfactual generator (default: generic with the recourse defaults; see "
                           "`ct-plugin plugins`)")
    what.add_argument("--compare", metavar="NAMES", action="append",
                      help="several generators side by side, e.g. generic,eccco,dice-random,carla-wachter")
    what.add_argument("--generator-option", action="append", metavar="KEY=VALUE",
                      help="an option of --generator over the recourse defaults (repeatable)")
    what.add_argument("--n", type=int, default=1, metavar="K",
                      help="counterfactuals per person: K alternative plans, each avoiding the main feature of "
                           "the earlier ones (default 1)")
    what.add_argument("--no-recourse-defaults", action="store_true",
                      help="search with the generator's own defaults (those of training and the paper protocol) "
                           "instead of the recourse defaults")
    what.add_argument("--tau", type=float, help="stop once p(target) reaches this (default 0.6)")
    what.add_argument("--max-steps", type=int, help="search steps at most (default 300)")
    what.add_argument("--seed", type=int, default=0, help="seed of the generators and plausibility samples (default 0)")
    limits = p.add_argument_group("constraints added to the run's (which always hold)")
    limits.add_argument("--immutable", action="append", metavar="NAMES", help="features that may not change")
    limits.add_argument("--increase-only", action="append", metavar="NAMES", help="features that may only increase")
    limits.add_argument("--decrease-only", action="append", metavar="NAMES", help="features that may only decrease")
    limits.add_argument("--full-domain", action="store_true",
                        help="let features reach the spec's whole domain (the paper's tables: mean -/+ 2 sd, e.g. "
                             "negative counts) instead of the range the training rows show")
    limits.add_argument("--max-change", action="append", metavar="FEATURE=AMOUNT",
                        help="largest change of a continuous feature, in original units (repeatable)")
    output = p.add_argument_group("output")
    output.add_argument("--all-features", action="store_true", help="show every feature, not only the changed ones")
    output.add_argument("--show", type=int, metavar="N", help="people printed (default: all; 10 with --out)")
    output.add_argument("--out", metavar="DIR",
                        help="also write explanations.md/.csv/.json and figures/person-<id>.png here")
    output.add_argument("--figures", type=int, default=20, metavar="N",
                        help="person figures written with --out (default 20)")
    output.add_argument("--quiet", action="store_true", help="no progress bar")
    add_threads_argument(output)
    add_device_argument(output, "the run's model is moved there")
    p.set_defaults(func=cmd_explain)
