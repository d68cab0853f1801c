"""Built-in parts, registered through the same hooks (and entry point) as any third-party plugin."""

from __future__ import annotations

from functools import partial

from ct_plugin.data import bundled, synthetic, tabular
from ct_plugin.generators.gradient import ECCCoGenerator, GenericGenerator
from ct_plugin.generators.revise import REVISEGenerator
from ct_plugin.hookspecs import hookimpl
from ct_plugin.models import cnn, logistic_regression, mlp
from ct_plugin.registry import PluginItem
from ct_plugin.strategies import BUILTIN_STRATEGIES, make_strategy


@hookimpl
def ct_plugin_generators():
    return [
        PluginItem("generic", GenericGenerator, "Wachter et al.: yloss + L1 cost, batched gradient search"),
        PluginItem("eccco", ECCCoGenerator, "ECCCo: Generic + energy penalty (faithful); the reference default"),
        PluginItem("revise", REVISEGenerator, "REVISE: gradient search in the latent space of a VAE"),
    ]


def _strategy_factory(name: str, config=None):
    burnin = float(getattr(config, "burnin", 0.0) or 0.0)
    return make_strategy(name, burnin)


@hookimpl
def ct_plugin_strategies():
    return [
        PluginItem(name, partial(_strategy_factory, name), description)
        for name, (_, description) in BUILTIN_STRATEGIES.items()
    ]


def _synthetic_loader(kind: str, data_dir=None, seed: int = 0, **options):
    return synthetic.make_synthetic(kind, seed=seed, **options)


def _bundled_loader(loader, data_dir=None, seed: int = 0, **options):
    return loader(seed=seed, **options)


def _table_loader(name: str, data_dir=None, seed: int = 0, **options):
    return tabular.load_table(name, data_dir=data_dir, seed=seed, **options)


@hookimpl
def ct_plugin_datasets():
    items = [
        PluginItem(
            kind,
            partial(_synthetic_loader, kind),
            f"synthetic 2-D {kind.replace('_', ' ')} (binary)",
            extra={"options": synthetic.make_synthetic},
        )
        for kind in synthetic.SYNTHETIC
    ]
    items += [
        PluginItem(
            "digits",
            partial(_bundled_loader, bundled.load_digits),
            "8x8 digit images, 10 classes",
            extra={"options": bundled.load_digits},
        ),
        PluginItem(
            "breast_cancer",
            partial(_bundled_loader, bundled.load_breast_cancer),
            "breast cancer (binary)",
            extra={"options": bundled.load_breast_cancer},
        ),
    ]
    items += [
        PluginItem(
            name, partial(_table_loader, name), info.notes, extra={"file": info.file, "options": tabular.load_table}
        )
        for name, info in tabular.TABLES.items()
    ]
    return items


@hookimpl
def ct_plugin_models():
    return [
        PluginItem("logreg", logistic_regression, "multinomial logistic regression"),
        PluginItem("mlp", mlp, "MLP (hidden=(32,), activation='relu' by default)"),
        PluginItem("cnn", cnn, "small LeNet-style CNN for square images (digits)"),
    ]


@hookimpl
def ct_plugin_metrics():
    from ct_plugin.evaluation.metrics import metric_items

    return metric_items()


@hookimpl
def ct_plugin_add_commands(subparsers):
    from ct_plugin import grid
    from ct_plugin.evaluation import commands

    commands.register_commands(subparsers)
    grid.register_commands(subparsers)
