"""``ct-plugin tune``: the command line of :func:`ct_plugin.tune`."""

from __future__ import annotations

import argparse
import contextlib
import math
import shlex
import sys
from pathlib import Path
from typing import Any

from ct_plugin.atomic import safe_name
from ct_plugin.cli.common import (
    DATA_DIR_HELP,
    add_csv_arguments,
    add_device_argument,
    csv_dataset_options,
    key_values,
    names,
)
from ct_plugin.cli.train import GENERATOR_SHORTCUTS, add_setting_argument
from ct_plugin.compare.methods import METHODS
from ct_plugin.config import TRAIN_SETTINGS
from ct_plugin.errors import CTPluginError
from ct_plugin.plugins.registry import get_registry
from ct_plugin.settings.coerce import check_threads
from ct_plugin.settings.table import Setting
from ct_plugin.threads import thread_scope
from ct_plugin.tuning.axes import DEFAULT_GRID, tuning_axes
from ct_plugin.tuning.seeds import DEFAULT_TUNE_SEEDS

COMMANDS = ("tune",)

EXAMPLES = """\
examples:
  ct-plugin tune --dataset circles --epochs 100 --out runs/tune-circles
  ct-plugin tune --dataset adult --data-dir DATA --batch-size 1000 --nce 5000 --workers 2
  ct-plugin tune --csv loans.csv --target approved --grid-tau 0.5,0.75 --grid-lambda-reg 0.1,0.5
  ct-plugin train --config runs/tune-circles/chosen.json --out runs/circles-ct   # train the choice
"""

TRAINING_FLAGS = ("epochs", "batch_size", "nce", "max_steps", "lr", "generator", "generator_options", "seed")
"""Training settings ``tune`` takes as flags of their own (``--train-option KEY=VALUE`` takes any other)."""

MUTABILITY_FLAGS = ("immutable", "increase_only", "decrease_only")
"""Data settings ``tune`` takes like ``train`` (written into chosen.json)."""

TUNE_THREADS_HELP = (
    "torch CPU threads of the validation evaluation, which runs in this process (default: the current setting, "
    "e.g. $OMP_NUM_THREADS); every training cell trains with one thread, --workers of them side by side"
)


def grid_values(text: str, row: Setting) -> list[Any]:
    """The comma-separated values of a ``--grid-<axis>`` flag, typed by the axis (range-checked by ``tune``)."""
    flag = "--grid-" + row.name.replace("_", "-")
    values = [v.strip() for v in text.split(",")]
    if row.kind == "name":  # strategies: names, checked against the registry by tune
        if not all(values):
            raise CTPluginError(f"{flag} expects comma-separated names, got {text!r} (an empty value)")
        return values
    kind = int if row.kind == "int" else float
    if not all(values):
        raise CTPluginError(f"{flag} expects comma-separated {kind.__name__}s, got {text!r} (an empty value)")
    try:
        return [kind(v) for v in values]
    except ValueError as exc:
        raise CTPluginError(f"{flag} expects comma-separated {kind.__name__}s, got {text!r}") from exc


def cmd_tune(args: argparse.Namespace) -> int:
    """Run the tuning and print the outcome and where the files are."""
    # torch and pandas: imported when the command runs, not for --help
    from ct_plugin.jobs import import_ray
    from ct_plugin.tuning.run import tune
    from ct_plugin.tuning.selection import SelectionRule

    check_threads(args.threads, "--threads")
    csv_options = csv_dataset_options(args)
    if not args.dataset and csv_options is None:
        raise CTPluginError("give one of --dataset NAME or --csv FILE --target COLUMN")
    axes = tuning_axes()
    grid = {axis[len("grid_"):]: grid_values(text, axes[axis[len("grid_"):]])
            for axis, text in vars(args).items() if axis.startswith("grid_") and text is not None}
    train: dict[str, Any] = key_values(args.train_option, "--train-option")
    for name in TRAINING_FLAGS:
        if name != "generator_options" and getattr(args, name) is not None:
            train[name] = getattr(args, name)
    generator_options = key_values(args.generator_options, "--generator-option")
    if args.step_size is not None:
        generator_options["step_size"] = args.step_size
    if generator_options:
        train["generator_options"] = generator_options
    for name in MUTABILITY_FLAGS:
        if getattr(args, name):
            train[name] = names(getattr(args, name))
    if args.protect:
        train["protect"] = True
    option_device = train.pop("device", "auto")  # --train-option device=... where --device is not given
    device = args.device if args.device != "auto" else option_device
    protocol = key_values(args.protocol_option, "--protocol-option")
    for name in ("rounds", "n_factuals"):
        if getattr(args, name) is not None:
            protocol[name] = getattr(args, name)
    if args.address and args.executor != "ray":
        args.executor = "ray"
    if args.executor == "ray":
        import_ray()  # fail before any work when Ray is missing
    dataset_options = key_values(args.dataset_option, "--dataset-option")
    if csv_options is not None:  # the csv dataset: chosen.json records how the table was read
        dataset_options = {**dataset_options, **csv_options}
    data = args.dataset or "csv"
    name = args.dataset or Path(args.csv).stem
    out = Path(args.out or Path("runs") / f"tune-{name}")
    rule = SelectionRule(
        margin_se=SelectionRule.margin_se if args.margin_se is None else args.margin_se,
        max_cost_increase=None if args.max_cost_increase is None else args.max_cost_increase / 100.0,
    ).validate()
    if args.methods is not None:
        if grid:
            raise CTPluginError("--methods tunes each method on its own grid; drop the --grid-* options")
        if args.always_ct:
            raise CTPluginError("--always-ct writes one method's best configuration; with --methods, "
                                "train a method's own choice instead (OUT/<method>/chosen.json)")
        with thread_scope(args.threads) if args.threads is not None else contextlib.nullcontext():
            return _tune_methods(args, data, name, out, rule, device, protocol, dataset_options, train)
    # --threads: the validation evaluation runs in this process; each training cell sets its own one thread
    with thread_scope(args.threads) if args.threads is not None else contextlib.nullcontext():
        result = tune(
            data, out=out, grid=grid or None, executor=args.executor, workers=args.workers, address=args.address,
            validation_size=args.validation_size, validation_seed=args.validation_seed, protocol=protocol,
            data_dir=args.data_dir, dataset_options=dataset_options,
            progress=not args.quiet, rescue=not args.no_rescue, always_ct=args.always_ct, seeds=args.seeds, rule=rule,
            device=device, **train,
        )
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{result.message}")
    if result.recommendation == "none":
        print(f"best CT configuration (not judged): {result.overrides}  ({result.seconds:.1f} s)")
        print("recommendation: NONE, the vanilla baseline could not be measured (see above); no chosen.json "
              "was written: train longer (--epochs) and run tune again")
        for key in ("csv", "markdown", "figure"):
            print(f"  {key}: {result.paths[key]}")
        return 1
    banner = "best CT configuration" if result.passed else "FALLBACK (no configuration passes the rule)"
    print(f"{banner}: {result.overrides}  ({result.seconds:.1f} s)")
    if result.recommendation == "vanilla":
        written = ("chosen.json trains vanilla; its tune.ct_train holds the CT configuration (--always-ct writes "
                   "that instead)" if result.config is not None and result.config.strategy == "vanilla" else
                   "chosen.json holds the CT configuration anyway (--always-ct)")
        print(f"recommendation: VANILLA, no significant gain from CT here under the rule's constraints: {written}")
    else:
        method = result.overrides.get("strategy")  # the grid chose among strategies: name the winner
        print(f"recommendation: CT{'' if method is None else f' with strategy {method}'}, chosen.json trains it")
        print(_cost_line(result.chosen_figures().get("cost_reduction_pct", float("nan"))))
    for key in ("config", "csv", "markdown", "figure"):
        print(f"  {key}: {result.paths[key]}")
    # chosen.json records how the table was read (a CSV's file and options too): --config is all it takes
    print(f"  train the choice: ct-plugin train --config {shlex.quote(str(result.paths['config']))} "
          f"--out {shlex.quote(f'runs/{safe_name(name)}')}  (the same table, options and split)")
    return 0


def _cost_line(reduction_pct: float) -> str:
    """What the recommended configuration does to the cost of recourse on the validation split, in one line.

    The rule judges plausibility; a configuration it recommends can still make recourse costlier, which
    a user who has to act on the counterfactuals needs to hear, with the two ways to refuse that.
    """
    if not math.isfinite(reduction_pct):
        return "cost of recourse: not measured on the validation split"
    if reduction_pct >= 0:
        return (f"cost of recourse: {reduction_pct:.3g}% lower than vanilla's on the validation split (L1 distance "
                "of the counterfactuals to their factuals)")
    return (f"cost of recourse: {-reduction_pct:.3g}% HIGHER than vanilla's on the validation split (L1 distance of "
            "the counterfactuals to their factuals); --max-cost-increase 0 refuses configurations that make "
            "recourse costlier, --methods all lets plausibility and cost choose the method")


def _tune_methods(args: argparse.Namespace, data: str, name: str, out: Path, rule: Any, device: str,
                  protocol: dict[str, Any], dataset_options: dict[str, Any], train: dict[str, Any]) -> int:
    """``tune --methods``: each method tuned on its own grid, then the pick (ct_plugin/compare/choose.py)."""
    from ct_plugin.compare import resolve_methods
    from ct_plugin.compare.choose import tune_methods

    methods = resolve_methods(None if args.methods.strip() == "all" else names([args.methods]), "tune --methods")
    result = tune_methods(
        data, methods, out=out, rule=rule, rescue=not args.no_rescue, executor=args.executor, workers=args.workers,
        address=args.address, validation_size=args.validation_size, validation_seed=args.validation_seed,
        protocol=protocol, data_dir=args.data_dir, dataset_options=dataset_options, progress=not args.quiet,
        seeds=args.seeds, device=device, **train,
    )
    for method, outcome in result.outcomes.items():
        print(f"{method}: recommends {outcome.recommendation.upper()}, best {outcome.overrides} "
              f"({outcome.seconds:.1f} s; {out / method / 'tune.md'})")
    for method, why in result.skipped.items():
        print(f"{method}: skipped, {why}")
    print(f"pick: {result.pick.reason}")
    print(f"  markdown: {result.paths['markdown']}")
    if result.config is None:
        return 1
    print(f"  config: {result.paths['config']}")
    print(f"  train the pick: ct-plugin train --config {shlex.quote(str(result.paths['config']))} "
          f"--out {shlex.quote(f'runs/{safe_name(name)}')}  (the same table, options and split)")
    return 0


def register(subparsers: Any, with_plugins: bool = True) -> None:
    """Add the ``tune`` sub-command to the ``ct-plugin`` parser."""
    p = subparsers.add_parser(
        "tune", help="tune CT per table on a validation split (the paper's grid), write the chosen config",
        description=("Tune counterfactual training on a validation split carved from the training rows "
                     "(the test split is never read): a vanilla baseline and a grid of CT runs, judged on "
                     "validation IP, accuracy, maturity and validity; writes chosen.json for "
                     "`ct-plugin train --config`, tune.csv/tune.md and tune.png."),
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    data = p.add_argument_group("data")
    data.add_argument("--dataset", help="registered dataset name (see `ct-plugin datasets`)")
    add_csv_arguments(data)
    data.add_argument("--data-dir", help=DATA_DIR_HELP)
    data.add_argument("--dataset-option", action="append", metavar="KEY=VALUE", help="loader option (repeatable)")
    for name in MUTABILITY_FLAGS:
        data.add_argument("--" + name.replace("_", "-"), dest=name, action="append", metavar="NAMES",
                          help=TRAIN_SETTINGS.help(name).replace("%", "%%") + " (repeatable)")
    data.add_argument("--protect", action="store_true", help=TRAIN_SETTINGS.help("protect").replace("%", "%%"))
    data.add_argument("--validation-size", type=int, help="validation rows (default min(5000, 20%% of training))")
    data.add_argument("--validation-seed", type=int, default=0, help="seed of the validation carve (default 0)")
    grid = p.add_argument_group("grid (comma-separated values; an axis not given stays at its training setting)")
    for axis, row in tuning_axes(get_registry().loss_terms() if with_plugins else []).items():
        default = DEFAULT_GRID.get(axis)
        shown = f"default {','.join(f'{v:g}' for v in default)}" if default else "default: not tuned"
        grid.add_argument("--grid-" + axis.replace("_", "-"), dest=f"grid_{axis}", metavar="VALUES",
                          help=f"{row.help}; each {row.words()} ({shown})".replace("%", "%%"))
    grid.add_argument("--methods", metavar="NAMES",
                      help="tune each of these methods of `ct-plugin compare` on its own grid (comma-separated, "
                           "or all: " + ", ".join(METHODS) + "; ct always included), each into OUT/<method>, "
                           "then pick one on the validation figures: among the methods recommended over "
                           "vanilla, those whose validation cost of recourse is not above vanilla's, the largest "
                           "IP reduction; OUT/chosen.json trains the pick, OUT/pick.md says why (the budget: "
                           "the sum of the methods' grids)")
    grid.add_argument("--no-rescue", action="store_true",
                      help="when no grid configuration passes the rule, take the least violation at once "
                           "(default: first try lambda_reg at 1/2 and 1/10 of the grid's smallest, then "
                           "lambda_div and lambda_adv at 1/5 and 1/25)")
    grid.add_argument("--max-cost-increase", type=float, metavar="PCT",
                      help="judge cost too: a configuration whose validation cost of recourse (protected search, "
                           "mean L1 of valid counterfactuals) exceeds vanilla's by more than PCT%% fails the rule "
                           "(0: no costlier than vanilla; default: cost not judged)")
    grid.add_argument("--margin-se", type=float, metavar="K",
                      help="judge each validation accuracy and validity drop with K standard errors added, so a "
                           "configuration on the edge of a tolerance does not pass (default 1; 0: the measured "
                           "drops alone)")
    grid.add_argument("--always-ct", action="store_true",
                      help="write the best CT configuration into chosen.json even when tune recommends vanilla "
                           "(no configuration passes the rule and lowers validation IP significantly)")
    train = p.add_argument_group("training (fixed for every cell)")
    for name in TRAINING_FLAGS:
        add_setting_argument(train, TRAIN_SETTINGS[name], TRAIN_SETTINGS.help(name).replace("%", "%%"))
    train.add_argument("--step-size", type=float, help=GENERATOR_SHORTCUTS["step_size"])
    train.add_argument("--seeds", type=int, default=DEFAULT_TUNE_SEEDS,
                       help=f"training seeds per configuration and for vanilla, --seed and up; every criterion "
                            f"is their mean (default {DEFAULT_TUNE_SEEDS}; 1 halves the time)")
    train.add_argument("--train-option", action="append", metavar="KEY=VALUE",
                       help="any other TrainConfig setting, e.g. lambda_div=0.5 (repeatable)")
    evaluation = p.add_argument_group("validation evaluation")
    evaluation.add_argument("--rounds", type=int, help="rounds per test-time energy (default 4, x 5 energies)")
    evaluation.add_argument("--n-factuals", type=int, help="validation factuals per round (default 100)")
    evaluation.add_argument("--protocol-option", action="append", metavar="KEY=VALUE",
                            help="ProtocolConfig setting, e.g. lambda_energies=[0.1,1,10] (repeatable)")
    run = p.add_argument_group("execution and output")
    run.add_argument("--out", help="output folder (default runs/tune-<dataset>); a re-run reuses finished cells")
    run.add_argument("--executor", choices=["local", "ray"], default="local", help="local (default) or ray")
    run.add_argument("--workers", type=int, default=None,
                     help="local: processes, each training one cell with one thread (default: the usable CPUs, at "
                          "most one per cell; 1 where the cells train on a GPU); ray: CPUs")
    run.add_argument("--address", help="Ray cluster to join; implies --executor ray")
    run.add_argument("--threads", type=int, metavar="N", help=TUNE_THREADS_HELP)
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    add_device_argument(run, "every cell's training and the validation evaluation (not written into chosen.json)")
    p.set_defaults(func=cmd_tune)
