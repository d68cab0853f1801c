"""``ct-plugin train``: its flags (shared with the commands that train), the config they give, the command."""

from __future__ import annotations

import argparse
from typing import Any

from ct_plugin.cli.common import DATA_DIR_HELP, add_threads_argument, key_values, names
from ct_plugin.config import TrainConfig, load_config_file
from ct_plugin.errors import CTPluginError
from ct_plugin.settings.files import read_settings_file
from ct_plugin.tracking import add_tracking_arguments, tracking_from_args

COMMANDS = ("train",)


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments shared by ``train`` (and reused by commands that train)."""
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", help="registered dataset name (see `ct-plugin datasets`); default moons")
    data.add_argument("--data-dir", help=DATA_DIR_HELP)
    data.add_argument("--csv", metavar="FILE", help="train on your own CSV file (needs --target) instead of --dataset")
    data.add_argument("--target", metavar="COLUMN", help="label column of --csv")
    data.add_argument("--test-csv", metavar="FILE", help="a given test split for --csv (default: 20%% held out)")
    data.add_argument(
        "--categorical", action="append", metavar="NAMES",
        help="--csv columns to one-hot encode (default: every non-numeric column)",
    )
    data.add_argument(
        "--dataset-option",
        action="append",
        metavar="KEY=VALUE",
        help="loader option, e.g. n_samples=1000 or max_rows=5000 (repeatable)",
    )
    data.add_argument("--immutable", action="append", metavar="NAMES", help="features that must not change")
    data.add_argument("--increase-only", action="append", metavar="NAMES", help="features that may only increase")
    data.add_argument("--decrease-only", action="append", metavar="NAMES", help="features that may only decrease")
    data.add_argument(
        "--protect",
        action="store_true",
        default=None,
        help="make the dataset's protected features (e.g. age) immutable",
    )

    model = parser.add_argument_group("model")
    model.add_argument("--model", help="architecture: mlp (default), logreg, cnn or a plugin's")
    model.add_argument("--hidden", help="MLP hidden sizes, comma-separated (default 32)")
    model.add_argument("--model-option", action="append", metavar="KEY=VALUE", help="architecture option")
    model.add_argument("--init-from", metavar="RUN_DIR", help="start from the weights of a trained run (fine-tuning)")

    ct = parser.add_argument_group("counterfactual training")
    ct.add_argument("--strategy", help="vanilla, ct (default), energy, adversarial or a plugin's")
    ct.add_argument("--generator", help="in-training generator: eccco (default), generic, revise or a plugin's")
    ct.add_argument("--generator-option", action="append", metavar="KEY=VALUE", help="generator option")
    ct.add_argument("--lambda-cost", type=float, help="generator's L1 cost weight (default 0.001)")
    ct.add_argument("--lambda-energy", type=float, help="ECCCo's energy weight (default 5.0)")
    ct.add_argument("--step-size", type=float, help="search step size (default 0.25)")
    ct.add_argument("--nce", type=int, help="counterfactuals per epoch (default 1000)")
    ct.add_argument("--tau", type=float, help="decision threshold of a mature counterfactual (default 0.75)")
    ct.add_argument("--max-steps", type=int, help="search steps T (default 30)")
    ct.add_argument("--epsilon", type=float, help="L-inf radius of nascent adversarial examples (default 0.3)")
    ct.add_argument("--search-every", choices=["epoch", "batch"], help="one search per epoch (default) or per batch")
    ct.add_argument("--burnin", type=float, help="fraction of epochs with yloss only before CT switches on")
    for term, default in (("yloss", 1.0), ("div", 0.5), ("reg", 0.1), ("adv", 0.25)):
        ct.add_argument(f"--lambda-{term}", type=float, help=f"weight of the {term} term (default {default})")

    opt = parser.add_argument_group("optimisation and output")
    opt.add_argument("--config", help="TOML/YAML/JSON file of settings (command-line flags win)")
    opt.add_argument("--epochs", type=int, help="epochs (default 100)")
    opt.add_argument("--batch-size", type=int, help="mini-batch size (default 30)")
    opt.add_argument("--lr", type=float, help="Adam learning rate (default 0.001)")
    opt.add_argument("--seed", type=int, help="seed of data, initialisation and sampling (default 0)")
    opt.add_argument("--device", help="auto (default), cpu or cuda")
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
    opt.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    add_threads_argument(opt)
    opt.add_argument("--quiet", action="store_true", help="no progress bar")
    add_tracking_arguments(parser)


def config_from_args(args: argparse.Namespace):
    """Resolve a TrainConfig from a config file plus command-line flags."""
    values: dict[str, Any] = load_config_file(args.config) if args.config else {}
    config = TrainConfig.from_dict(values)
    return config.replace(**overrides_from_args(args)).validate()


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given explicitly as command-line flags (not the config file)."""
    overrides: dict[str, Any] = {}
    direct = (
        "dataset",
        "data_dir",
        "model",
        "init_from",
        "strategy",
        "generator",
        "nce",
        "tau",
        "max_steps",
        "epsilon",
        "search_every",
        "burnin",
        "lambda_yloss",
        "lambda_div",
        "lambda_reg",
        "lambda_adv",
        "epochs",
        "batch_size",
        "lr",
        "seed",
        "device",
        "protect",
    )
    for name in direct:
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    for flag in ("immutable", "increase_only", "decrease_only"):
        features = names(getattr(args, flag, None))
        if features:
            overrides[flag] = features
    dataset_options = key_values(args.dataset_option, "--dataset-option")
    model_options = key_values(args.model_option, "--model-option")
    if args.hidden:
        try:
            model_options["hidden"] = [int(h) for h in args.hidden.split(",")]
        except ValueError as exc:
            raise CTPluginError(f"--hidden expects comma-separated integers, got {args.hidden!r}") from exc
    generator_options = key_values(args.generator_option, "--generator-option")
    for name in ("lambda_cost", "lambda_energy", "step_size"):
        value = getattr(args, name, None)
        if value is not None:
            generator_options[name] = value
    if dataset_options:
        overrides["dataset_options"] = dataset_options
    if model_options:
        overrides["model_options"] = model_options
    if generator_options:
        overrides["generator_options"] = generator_options
    return overrides


def _tune_note(config_path: str | None) -> None:
    """Say so when the config file is a ``tune`` choice that recommends vanilla."""
    if not config_path:
        return
    meta = read_settings_file(config_path).get("tune")
    if isinstance(meta, dict) and meta.get("recommendation") == "vanilla":
        print(f"note: {config_path} is a `ct-plugin tune` choice that recommends vanilla on this table "
              f"({meta.get('message', '')}); its tune.ct_train holds the best CT configuration")


def cmd_train(args: argparse.Namespace) -> int:
    from ct_plugin.training.train import train  # torch: imported when a command runs, not for --help

    if args.resume or args.resume_from_previous:
        if not args.out:
            raise CTPluginError("--resume needs --out RUN_DIR (the run to continue)")
        changes = {**(load_config_file(args.config) if args.config else {}), **overrides_from_args(args)}
        resume = "previous" if args.resume_from_previous else True
        with tracking_from_args(args):
            result = train(out=args.out, resume=resume, quiet=args.quiet, threads=args.threads, **changes)
    else:
        config = config_from_args(args)
        data = None
        if args.csv or args.target or args.test_csv:
            from ct_plugin.data.csvfile import load_csv  # pandas: imported when a command runs, not for --help

            if args.dataset:
                raise CTPluginError("give either --dataset or --csv, not both")
            data = load_csv(args.csv, args.target, test_csv=args.test_csv,
                            categorical=names(args.categorical) or None, seed=config.seed)
        with tracking_from_args(args):
            result = train(data, config=config, out=args.out, quiet=args.quiet, threads=args.threads,
                           overwrite=args.overwrite)
    last = result.log[-1] if result.log else {}
    _tune_note(args.config)
    source = result.config.generator if result.config.strategy != "vanilla" else "no generator"
    print(
        f"trained {result.config.strategy} ({source}) "
        f"on {result.spec.name}: {len(result.log)} epochs"
    )
    keys = ("yloss", "div", "reg", "adv", "train_accuracy", "test_accuracy", "mature", "nascent", "mean_steps")
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
    add_train_arguments(p)
    p.set_defaults(func=cmd_train)
