"""Built-in parts, registered through the same hooks (and entry point) as any third-party plugin.

Registering imports neither torch nor pandas: every factory is a
:class:`~ct_plugin.plugins.registry.LazyFactory` that imports its module on first use.
"""

from __future__ import annotations

from functools import partial

from ct_plugin.config import TRAIN_SETTINGS
from ct_plugin.data import tabular
from ct_plugin.plugins.hookspecs import hookimpl
from ct_plugin.plugins.registry import LazyFactory, LossTerm, PluginItem
from ct_plugin.training.strategies import BUILTIN_STRATEGIES, make_strategy

CT_PLUGIN_API = "2.0"

SYNTHETIC_KINDS = ("linearly_separable", "overlapping", "circles", "moons")


@hookimpl
def ct_plugin_generators():
    gradient = "ct_plugin.generators.gradient"
    return [
        PluginItem("generic", LazyFactory(gradient, "GenericGenerator"),
                   "Wachter et al.: yloss + L1 cost, batched gradient search"),
        PluginItem("eccco", LazyFactory(gradient, "ECCCoGenerator"),
                   "ECCCo: Generic + energy penalty (faithful); the default generator, as in the reference's "
                   "experiments (preset: project by default, or reference)"),
        PluginItem("revise", LazyFactory("ct_plugin.generators.revise", "REVISEGenerator"),
                   "REVISE: gradient search in the latent space of a VAE"),
        PluginItem("counternet", LazyFactory("ct_plugin.generators.counternet", "CounterNetGenerator"),
                   "CounterNet's generator network (Guo et al. 2023): trained against the frozen model, then one "
                   "forward pass per factual (post-hoc)"),
    ]


def _strategy_factory(name: str, config=None):
    burnin = float(getattr(config, "burnin", 0.0) or 0.0)
    return make_strategy(name, burnin)


@hookimpl
def ct_plugin_loss_terms():
    objective = "ct_plugin.training.objective"

    def weight(term: str) -> float:  # the TrainConfig field's default is the term's default weight
        return float(TRAIN_SETTINGS.default(f"lambda_{term}"))

    energy_suspect = "lambda_reg (the energy regulariser keeps div bounded) or lr"
    return [
        LossTerm("yloss", LazyFactory(objective, "yloss_term"), "classification loss: cross-entropy of M(x) vs y",
                 default_weight=weight("yloss"), uses_counterfactuals=False),
        LossTerm("div", LazyFactory(objective, "divergence_term"),
                 "contrastive divergence E(x+, y+) - E(x', y+): counterfactuals that look like data",
                 default_weight=weight("div"), suspect=energy_suspect, blamed_weights=("div",)),
        LossTerm("reg", LazyFactory(objective, "ridge_term"), "energy ridge E(x+)^2 + E(x')^2: bounded energies",
                 default_weight=weight("reg"), explodes_above=1e8, suspect=energy_suspect, blamed_weights=("div",)),
        LossTerm("adv", LazyFactory(objective, "adversarial_term"),
                 "adversarial loss: cross-entropy of the nascent counterfactuals vs y", default_weight=weight("adv")),
        LossTerm("gradsup", LazyFactory(objective, "gradient_supervision_term"),
                 "gradient supervision (Teney et al. 2020): 1 - cos(grad_x M(x)[y+], x' - x); off unless "
                 "--lambda-gradsup > 0, with any strategy", default_weight=0.0),
        LossTerm("augment", LazyFactory(objective, "augmentation_term"),
                 "counterfactual augmentation (CAT, Luu & Inoue 2023): cross-entropy of M(x') vs the target class; "
                 "on in strategy cat, or with any strategy when --lambda-augment > 0", default_weight=1.0),
        LossTerm("cn_validity", LazyFactory("ct_plugin.training.counternet", "validity_term"),
                 "CounterNet's validity: mean squared error of M(g(x))'s probabilities to the target class "
                 "(strategy counternet only)", default_weight=0.2, uses_counterfactuals=False),
        LossTerm("cn_proximity", LazyFactory("ct_plugin.training.counternet", "proximity_term"),
                 "CounterNet's proximity: mean L1 distance from x to g(x) (strategy counternet only)",
                 default_weight=0.1, uses_counterfactuals=False),
        LossTerm("recourse", LazyFactory(objective, "recourse_term"),
                 "recourse-adversarial loss (Ross et al. 2021): yloss(M(x + delta), desired) for the rows denied the "
                 "desired class, delta one first-order step of size epsilon on the actionable features; on in strategy "
                 "recourse, or with any strategy when --lambda-recourse > 0", default_weight=1.0,
                 uses_counterfactuals=False, needs_desired_class=True),
    ]


@hookimpl
def ct_plugin_update_schedules():
    schedules = "ct_plugin.training.schedules"
    return [PluginItem("joint", LazyFactory(schedules, "JointUpdate"),
                       "one optimiser step on the weighted sum of every active term (the paper's)"),
            PluginItem("blockwise", LazyFactory(schedules, "BlockwiseUpdate"),
                       "a step on yloss, then a step on the other active terms (CounterNet, Guo et al. 2023)")]


@hookimpl
def ct_plugin_factual_selectors():
    factuals = "ct_plugin.training.factuals"
    return [PluginItem("uniform", LazyFactory(factuals, "UniformFactuals"),
                       "a uniform draw of nce training rows (the paper's)"),
            PluginItem("entropy", LazyFactory(factuals, "EntropyFactuals"),
                       "the nce rows with the highest entropy of the predicted classes (after CAT, Luu & Inoue 2023)"),
            PluginItem("misclassified", LazyFactory(factuals, "MisclassifiedFactuals"),
                       "the misclassified rows first, then a uniform draw of the others")]


def _counternet_factory(config=None):
    burnin = float(getattr(config, "burnin", 0.0) or 0.0)
    return LazyFactory("ct_plugin.training.counternet", "CounterNetStrategy")(burnin)


def _flipped_factory(config=None):
    burnin = float(getattr(config, "burnin", 0.0) or 0.0)
    return LazyFactory("ct_plugin.training.flipped", "FlippedAdversarialStrategy")(burnin)


@hookimpl
def ct_plugin_strategies():
    return [
        PluginItem(name, partial(_strategy_factory, name), description)
        for name, (_, description) in BUILTIN_STRATEGIES.items()
    ] + [PluginItem("ct_flipped", _flipped_factory, "full counterfactual training, the adversarial term only on "
                    "nascent examples the model misclassifies (Freiesleben 2022)"),
        PluginItem("counternet", _counternet_factory, "CounterNet (Guo et al. 2023): the classifier and a "
                   "generator network trained together, block-wise (yloss, then validity + proximity)")]


def _synthetic_loader(kind: str, data_dir=None, seed: int = 0, **options):
    from ct_plugin.data import synthetic  # numpy and scikit-learn: when a synthetic set is loaded

    return synthetic.make_synthetic(kind, seed=seed, **options)


def _bundled_loader(loader: str, data_dir=None, seed: int = 0, **options):
    return LazyFactory("ct_plugin.data.bundled", loader)(seed=seed, **options)


def _data_folder_loader(module: str, loader: str, data_dir=None, seed: int = 0, **options):
    return LazyFactory(module, loader)(data_dir=data_dir, seed=seed, **options)


REFERENCE_DATA = (
    ("uci_adult", "ct_plugin.data.uci_adult", "load_uci_adult",
     "UCI Adult as published, the reference's preprocessing: 108 columns (every level one-hot, ? a level); "
     "test='official' for adult.test"),
    ("mnist", "ct_plugin.data.images", "load_mnist",
     "MNIST 28x28, 10 classes: the IDX files (10,000 class-balanced training images) or the 5k subset"),
    ("fashion_mnist", "ct_plugin.data.images", "load_fashion_mnist",
     "Fashion-MNIST 28x28, 10 classes, from its IDX files (n_train class-balanced training images)"),
)
"""Datasets read from files of the data folder beside the four tables: (name, module, loader, description)."""


def _table_loader(name: str, data_dir=None, seed: int = 0, **options):
    return tabular.load_table(name, data_dir=data_dir, seed=seed, **options)


@hookimpl
def ct_plugin_datasets():
    items = [
        PluginItem(kind, partial(_synthetic_loader, kind), f"synthetic 2-D {kind.replace('_', ' ')} (binary)",
                   extra={"options": LazyFactory("ct_plugin.data.synthetic", "make_synthetic")})
        for kind in SYNTHETIC_KINDS
    ]
    items += [
        PluginItem("digits", partial(_bundled_loader, "load_digits"), "8x8 digit images, 10 classes",
                   extra={"options": LazyFactory("ct_plugin.data.bundled", "load_digits")}),
        PluginItem("breast_cancer", partial(_bundled_loader, "load_breast_cancer"), "breast cancer (binary)",
                   extra={"options": LazyFactory("ct_plugin.data.bundled", "load_breast_cancer")}),
    ]
    items += [
        PluginItem(
            name, partial(_table_loader, name), info.notes, extra={"file": info.file, "options": tabular.load_table}
        )
        for name, info in tabular.TABLES.items()
    ]
    items += [
        PluginItem(name, partial(_data_folder_loader, module, loader), description,
                   extra={"options": LazyFactory(module, loader)})
        for name, module, loader, description in REFERENCE_DATA
    ]
    items.append(PluginItem(
        "csv", LazyFactory("ct_plugin.data.csvfile", "load_csv"),
        "your own CSV file: options path, target, test_csv, categorical, desired, protected, impute, split_seed "
        "(`train --csv FILE --target COLUMN`)",
        extra={"options": LazyFactory("ct_plugin.data.csvfile", "load_csv"),
               "needs_options": "your own CSV file: --csv FILE --target COLUMN (train, tune)"},
    ))
    return items


@hookimpl
def ct_plugin_models():
    return [
        PluginItem("logreg", LazyFactory("ct_plugin.models", "logistic_regression"), "multinomial logistic regression"),
        PluginItem("mlp", LazyFactory("ct_plugin.models", "mlp"),
                   "MLP (hidden=(32,), activation='relu', init='torch' by default; init='glorot' as Flux)"),
        PluginItem("cnn", LazyFactory("ct_plugin.models", "cnn"),
                   "LeNet-style CNN for image data (digits, mnist, fashion_mnist, images of your own; grey or RGB)"),
    ]


@hookimpl
def ct_plugin_metrics():
    from ct_plugin.evaluation.metrics import metric_items  # torch: only when the registry is built

    return metric_items()
