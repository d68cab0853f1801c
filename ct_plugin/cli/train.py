"""``ct-plugin train``: its flags (shared with the commands that train), the config they give, the command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ct_plugin.cli.common import (
    DATA_DIR_HELP,
    add_csv_arguments,
    add_threads_argument,
    csv_dataset_options,
    key_values,
    names,
)
from ct_plugin.config import TERM_WEIGHT_PREFIX, TRAIN_SETTINGS, TrainConfig, load_config_file
from ct_plugin.errors import CTPluginError
from ct_plugin.plugins.registry import LossTerm, get_registry
from ct_plugin.settings.files import read_settings_file
from ct_plugin.settings.table import Setting
from ct_plugin.tracking import add_tracking_arguments, tracking_from_args

COMMANDS = ("train",)


GROUPS = ("data", "model", "counterfactual training", "optimisation and output")
"""The ``--help`` groups of the training flags, in order (each setting names its group in the table)."""

GENERATOR_SHORTCUTS = {
    "lambda_cost": "the generator's L1 cost weight (generator option lambda_cost; default: the generator's, "
                   "0.001 for eccco and generic, the reference's)",
    "lambda_energy": "ECCCo's energy weight (generator option lambda_energy; default: the generator's, 5 for "
                     "eccco, the reference's)",
    "step_size": "the search step size (generator option step_size; default: the generator's, 0.25 for eccco and "
                 "generic: the project preset's and the paper's text; the reference's code ran 0.1)",
}
"""Flags that set a generator option (``--step-size 0.1`` is ``--generator-option step_size=0.1``)."""

SPECIAL_HELP = {
    "dataset": "registered dataset name (see `ct-plugin datasets`; default moons); or --csv",
    "data_dir": DATA_DIR_HELP,
    "immutable": "features that must not change (comma-separated)",
    "increase_only": "features that may only increase (comma-separated)",
    "decrease_only": "features that may only decrease (comma-separated)",
}
"""Help lines that say more than the settings table's (the table's default still applies)."""


def add_setting_argument(group: Any, row: Setting, help_text: str) -> None:
    """The flag of one row of the settings table, typed by the row's kind."""
    flag = row.cli_flag
    assert flag is not None
    if row.kind == "bool":
        group.add_argument(flag, dest=row.name, action="store_true", default=None, help=help_text)
    elif row.kind in ("names", "options"):
        metavar = "NAMES" if row.kind == "names" else "KEY=VALUE"
        group.add_argument(flag, dest=row.name, action="append", metavar=metavar, help=help_text + " (repeatable)")
    elif row.kind == "choice":
        group.add_argument(flag, dest=row.name, choices=row.choices, help=help_text)
    else:
        kind = {"int": int, "float": float}.get(row.kind, str)
        group.add_argument(flag, dest=row.name, type=kind, help=help_text)


def add_train_arguments(parser: argparse.ArgumentParser, terms: Sequence[LossTerm] = ()) -> None:
    """Arguments shared by ``train`` (and reused by commands that train): one flag per setting of the table.

    ``terms``: the registered loss terms; each one that is not a field of the config (a plugin's)
    gets its ``--lambda-<term>`` flag.
    """
    groups = {name: parser.add_argument_group(name) for name in GROUPS}
    data = groups["data"]
    add_csv_arguments(data)
    groups["model"].add_argument("--hidden", help="MLP hidden sizes, comma-separated (default 32)")
    for row in TRAIN_SETTINGS:
        if row.cli_flag is not None:
            help_text = SPECIAL_HELP.get(row.name) or TRAIN_SETTINGS.help(row.name)
            add_setting_argument(groups[row.group], row, help_text.replace("%", "%%"))
    ct = groups["counterfactual training"]
    for term in terms:
        if term.weight_setting not in TRAIN_SETTINGS:
            ct.add_argument(f"--lambda-{term.name}", dest=term.weight_setting, type=float,
                            help=f"weight of the {term.name} term ({term.description}; plugin {term.plugin}); "
                                 f"setting it above 0 switches the term on with any strategy")
    for name, help_text in GENERATOR_SHORTCUTS.items():
        ct.add_argument("--" + name.replace("_", "-"), dest=name, type=float, help=help_text)
    opt = groups["optimisation and output"]
    opt.add_argument("--config", help="TOML/YAML/JSON file of settings (command-line flags win)")
    opt.add_argument("--out", help="run directory to write (weights, config, dataset spec, log, checkpoints)")
    opt.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its last checkpoint; flags given with it change "
        "optimisation/CT settings (e.g. a smaller --lr after a divergence)",
    )
    opt.add_argument(
        "--resume-from-previous",
        action="store_true",
        help="like --resume, from the checkpoint before the last (checkpoint.prev.pt), e.g. when the last is corrupted",
    )
    opt.add_argument(
        "--restart",
        action="store_true",
        help="like --resume, but a run whose checkpoints are gone trains again from its first epoch with its "
        "stored settings (instead of being refused)",
    )
    opt.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    add_threads_argument(opt)
    opt.add_argument("--quiet", action="store_true", help="no progress bar")
    add_tracking_arguments(parser)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Resolve a TrainConfig from a config file plus command-line flags."""
    values: dict[str, Any] = load_config_file(args.config) if args.config else {}
    config = TrainConfig.from_dict(values)
    return config.replace(**overrides_from_args(args)).validate()


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given explicitly as command-line flags (not the config file)."""
    overrides: dict[str, Any] = {}
    for row in TRAIN_SETTINGS:
        value = getattr(args, row.name, None) if row.cli_flag is not None else None
        if value is None:
            continue
        if row.kind == "names":
            value = names(value)
        elif row.kind == "options":
            value = key_values(value, row.cli_flag)
        if value or value is False or value == 0:
            overrides[row.name] = value
    overrides.update({key: value for key, value in vars(args).items()
                      if key.startswith(TERM_WEIGHT_PREFIX) and key not in TRAIN_SETTINGS and value is not None})
    model_options = dict(overrides.get("model_options", {}))
    if getattr(args, "hidden", None):
        try:
            model_options["hidden"] = [int(h) for h in args.hidden.split(",")]
        except ValueError as exc:
            raise CTPluginError(f"--hidden expects comma-separated integers, got {args.hidden!r}") from exc
        overrides["model_options"] = model_options
    generator_options = dict(overrides.get("generator_options", {}))
    for name in GENERATOR_SHORTCUTS:
        value = getattr(args, name, None)
        if value is not None:
            generator_options[name] = value
    if generator_options:
        overrides["generator_options"] = generator_options
    return overrides


def _tune_note(config_path: str | None, log: Sequence[dict[str, Any]] = ()) -> None:
    """Notes on a config file that is a ``tune`` choice, after training it.

    Says so when the choice recommends vanilla, and warns (on stderr) when the run trained with
    counterfactuals matured less over the last epochs than tune's rule requires (tune measured
    maturity on its carved training rows only): both figures and the rule's floor are named.
    """
    if not config_path:
        return
    meta = read_settings_file(config_path).get("tune")
    if not isinstance(meta, dict):
        return
    if meta.get("recommendation") == "vanilla":
        print(f"note: {config_path} is a `ct-plugin tune` choice that recommends vanilla on this table "
              f"({meta.get('message', '')}); its tune.ct_train holds the best CT configuration")
    # the training code imports torch: imported when the command runs, not for --help
    from ct_plugin.training.health import tuned_maturity_problem

    rule = meta.get("rule") if isinstance(meta.get("rule"), dict) else {}
    floor, epochs, tuned = rule.get("min_maturity", 0.5), rule.get("maturity_epochs", 10), meta.get("ct_maturity")
    try:
        problem = tuned_maturity_problem(log, float(floor), int(epochs),
                                         None if tuned is None else float(tuned))
    except (TypeError, ValueError):  # a hand-edited rule: no comparison rather than a crash after training
        return
    if problem:
        print(f"warning: {config_path}: {problem}", file=sys.stderr)


def cmd_train(args: argparse.Namespace) -> int:
    from ct_plugin.training.train import train  # torch: imported when a command runs, not for --help

    if args.resume or args.resume_from_previous or args.restart:
        if not args.out:
            raise CTPluginError("--resume needs --out RUN_DIR (the run to continue)")
        if not (Path(args.out) / "config.json").is_file():
            raise CTPluginError(f"nothing to resume in {args.out}: it holds no run (no config.json); "
                                "train without --resume")
        changes = {**(load_config_file(args.config) if args.config else {}), **overrides_from_args(args)}
        resume = "previous" if args.resume_from_previous else "restart" if args.restart else True
        with tracking_from_args(args):
            result = train(out=args.out, resume=resume, quiet=args.quiet, threads=args.threads, **changes)
    else:
        config = config_from_args(args)
        csv_options = csv_dataset_options(args)
        if csv_options is not None:  # the csv dataset: the run records how its table was read
            config = config.replace(dataset="csv", data_dir=None,
                                    dataset_options={**config.dataset_options, **csv_options}).validate()
        data = None
        with tracking_from_args(args):
            result = train(data, config=config, out=args.out, quiet=args.quiet, threads=args.threads,
                           overwrite=args.overwrite)
    last = result.log[-1] if result.log else {}
    _tune_note(args.config, result.log)
    source = result.config.generator if result.config.strategy != "vanilla" else "no generator"
    print(
        f"trained {result.config.strategy} ({source}) "
        f"on {result.spec.name}: {len(result.log)} epochs"
    )
    terms = [term.name for term in get_registry().loss_terms()]
    keys = (*terms, "train_accuracy", "test_accuracy", "mature", "nascent", "mean_steps")
    print("last epoch: " + ", ".join(f"{k}={last[k]:.4g}" for k in keys if last.get(k) is not None))
    seconds = sum(r["epoch_seconds"] for r in result.log)
    print(f"training time: {seconds:.1f} s ({seconds / max(len(result.log), 1):.3f} s/epoch)")
    if result.run_dir is not None:
        print(f"run directory: {result.run_dir}")
    return 0


def register(subparsers: Any, with_plugins: bool = True) -> None:
    """Add the ``train`` sub-command."""
    p = subparsers.add_parser(
        "train",
        help="train a model (vanilla or counterfactual training) and write a run directory",
        description="Train a classifier with counterfactual training (or a baseline) and write a run directory.",
    )
    add_train_arguments(p, get_registry().loss_terms() if with_plugins else ())
    p.set_defaults(func=cmd_train)
