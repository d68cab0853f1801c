"""What a training run is made of, resolved before its first epoch.

The config (a :class:`TrainConfig`, a dict or nothing, with keyword overrides), the dataset
spec (a spec or a registered name, with the run's mutability constraints) and its checks, the
model (a module or a registered architecture, optionally started from another run's weights with
``init_from``), the in-training generator, and the stored settings of a run to resume (with the
changes a resumed run may make). :func:`ct_plugin.training.train.train` puts them together.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch

from ct_plugin.config import TRAIN_SETTINGS, TrainConfig
from ct_plugin.data.load import load_dataset
from ct_plugin.data.spec import DatasetSpec
from ct_plugin.errors import CTPluginError
from ct_plugin.generators.base import CounterfactualGenerator
from ct_plugin.plugins.options import accepts_option, build_with_options
from ct_plugin.plugins.registry import LossTerm, get_registry
from ct_plugin.runs.files import read_json
from ct_plugin.runs.load import load_model, read_config
from ct_plugin.runs.record import check_consistency
from ct_plugin.torch_utils import all_finite
from ct_plugin.training.strategies import CLASSIFICATION_TERM, TrainingStrategy

RESUME_FIXED = tuple(row.name for row in TRAIN_SETTINGS.where(fixed_on_resume=True))
"""Settings a resumed run cannot change (they define its data and its model)."""


def build_generator(name: str, options: dict[str, Any]) -> CounterfactualGenerator:
    """Build a registered generator, turning bad options into a clear error."""
    item = get_registry().get("generator", name)
    return build_with_options("generator", name, item.factory, **options)


def resolve_terms(strategy: TrainingStrategy, config: TrainConfig) -> list[LossTerm]:
    """The loss terms a run may switch on, in summation order: yloss, the strategy's, the weighted plugin terms.

    A strategy naming a term no plugin registered, or a weight set for such a term, is refused
    with the registered terms listed.
    """
    registry = get_registry()
    registered = registry.loss_terms()
    known = {term.name for term in registered}
    listing = ", ".join(sorted(known))
    unknown = sorted(set(strategy.terms) - known)
    if unknown:
        raise CTPluginError(f"strategy {strategy.name!r} names loss term(s) {unknown} that no plugin registered; "
                            f"registered loss terms: {listing}")
    check_term_weights(config)
    wanted = {CLASSIFICATION_TERM, *strategy.terms, *(t for t in config.term_weights if config.weight_is_set(t))}
    return [term for term in registered if term.name in wanted]


def check_term_weights(config: TrainConfig) -> None:
    """Refuse a weight set for a loss term that no plugin registered (naming the registered ones)."""
    known = {term.name for term in get_registry().loss_terms()}
    unknown = sorted(set(config.term_weights) - known)
    if unknown:
        flags = ", ".join(f"lambda_{name}" for name in unknown)
        raise CTPluginError(f"{flags}: no plugin registered a loss term called {', '.join(map(repr, unknown))}; "
                            f"registered loss terms: {', '.join(sorted(known))} (`ct-plugin plugins` lists them)")


def resolve_config(config: TrainConfig | dict[str, Any] | None, **overrides: Any) -> TrainConfig:
    """Merge a config (object, dict or None) with keyword overrides and validate."""
    if config is None:
        config = TrainConfig()
    elif isinstance(config, dict):
        config = TrainConfig.from_dict(config)
    elif not isinstance(config, TrainConfig):
        raise CTPluginError(f"config must be a TrainConfig or a dict, got {type(config).__name__}")
    overrides = {k: v for k, v in overrides.items() if v is not None}
    return config.replace(**overrides).validate()


def resolve_spec(data: DatasetSpec | str | None, config: TrainConfig) -> DatasetSpec:
    """The run's dataset spec (a given spec or the registered dataset), with the config's mutability applied."""
    if isinstance(data, DatasetSpec):
        spec = data
    else:
        name = data if isinstance(data, str) else config.dataset
        spec = load_dataset(name, data_dir=config.data_dir, seed=config.seed, **config.dataset_options)
    if config.immutable or config.increase_only or config.decrease_only or config.protect:
        spec = spec.with_mutability(config.immutable, config.increase_only, config.decrease_only, config.protect)
    return spec


def resolve_model(
    model: torch.nn.Module | str | None, spec: DatasetSpec, config: TrainConfig
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The module to train (given or registered; seeded; ``init_from`` weights loaded) and its ``model.json``."""
    torch.manual_seed(config.seed)
    if isinstance(model, torch.nn.Module):
        description = {
            "architecture": None,
            "class": f"{type(model).__module__}.{type(model).__qualname__}",
            "n_features": spec.n_features,
            "n_classes": spec.n_classes,
        }
        module = model
    else:
        name = model if isinstance(model, str) else config.model
        factory = get_registry().get("model", name).factory
        options = dict(config.model_options)
        if spec.image_shape is not None and "image_shape" not in options and accepts_option(factory, "image_shape"):
            options["image_shape"] = list(spec.image_shape)  # an image model learns the data's shape (model.json)
        module = build_with_options("model", name, factory, spec.n_features, spec.n_classes, **options)
        description = {
            "architecture": name,
            "options": options,
            "n_features": spec.n_features,
            "n_classes": spec.n_classes,
        }
    if config.init_from:
        _load_initial_weights(module, description, spec, config.init_from)
    return module, description


def _load_initial_weights(
    module: torch.nn.Module, description: dict[str, Any], spec: DatasetSpec, init_from: str
) -> None:
    """Start from a trained run's weights; a run of other data or another architecture is refused clearly."""
    source = Path(init_from)
    theirs = read_json(source / "dataset.json") if (source / "dataset.json").is_file() else {}
    if theirs and (theirs.get("feature_names") != spec.feature_names or theirs.get("class_names") != spec.class_names):
        raise CTPluginError(
            f"init_from {source}: that run was trained on dataset {theirs.get('name')!r} "
            f"({len(theirs.get('feature_names', []))} features, classes {theirs.get('class_names')}), this run "
            f"uses {spec.name!r} ({spec.n_features} features, classes {spec.class_names}); fine-tuning needs "
            "the same encoded features and classes"
        )
    if theirs and theirs.get("name") != spec.name:
        warnings.warn(
            f"init_from {source}: that run was trained on {theirs.get('name')!r}, this one uses {spec.name!r} "
            "(same encoded features and classes, so its weights are used)",
            UserWarning,
            stacklevel=4,
        )
    start = load_model(source, model=module if description["architecture"] is None else None)
    try:
        module.load_state_dict(start.state_dict())
    except RuntimeError as exc:
        theirs_model = read_json(source / "model.json")
        them = theirs_model.get("architecture") or theirs_model.get("class")
        us = description.get("architecture") or description.get("class")
        raise CTPluginError(
            f"init_from {source}: its weights do not fit this model (that run used architecture {them!r} with "
            f"options {theirs_model.get('options', {})}, this run {us!r} with options "
            f"{description.get('options', {})}): {str(exc).splitlines()[0]}"
        ) from exc


def check_terms_fit(spec: DatasetSpec, config: TrainConfig) -> None:
    """Refuse, before anything is written, a loss term that needs a desired class the data lack.

    The terms checked: those whose weight is set, and those the strategy names (e.g. ``recourse``).
    """
    if spec.desired is not None:
        return
    registry = get_registry()
    named = set(getattr(registry.build("strategy", config.strategy, config), "terms", ()))
    for term in registry.loss_terms():
        if term.needs_desired_class and (config.weight_is_set(term.name) or term.name in named):
            raise CTPluginError(
                f"loss term {term.name!r} needs the dataset's desired class (the outcome recourse aims at); "
                f"dataset {spec.name!r} names none: name it (--desired with --csv, desired= in from_dataframe)"
            )


def validate_spec(spec: DatasetSpec) -> None:
    """Refuse a spec whose arrays cannot be trained on (shapes, labels, non-finite values)."""
    X, y = spec.X_train, spec.y_train
    if X.ndim != 2 or X.shape[1] != spec.n_features:
        raise CTPluginError(f"X_train must have shape (n, {spec.n_features}), got {X.shape}")
    if len(y) != len(X):
        raise CTPluginError(f"X_train has {len(X)} rows but y_train has {len(y)} labels")
    if not all_finite(X):
        raise CTPluginError("X_train contains NaN or inf values")
    if y.min() < 0 or y.max() >= spec.n_classes:
        raise CTPluginError(f"labels must be integers in [0, {spec.n_classes - 1}], got range [{y.min()}, {y.max()}]")


def resumed_settings(
    out_path: Path,
    config: TrainConfig | dict[str, Any] | None,
    data: DatasetSpec | str | None,
    strategy: str | None,
    generator: str | None,
    overrides: dict[str, Any],
) -> tuple[Any, dict[str, Any], DatasetSpec | str | None]:
    """The stored config of a run to resume, with the caller's changes (those that may change) applied."""
    if not (out_path / "config.json").is_file():
        if config is None:
            raise CTPluginError(
                f"nothing to resume in {out_path}: it holds no run (no config.json); train without --resume "
                "(or, in Python, pass the run's config)"
            )
        named = {k: v for k, v in (("strategy", strategy), ("generator", generator)) if v is not None}
        return config, {**overrides, **named}, data  # killed before its first file: start it with the settings given
    if all((out_path / name).is_file() for name in ("dataset.json", "model.json")):
        check_consistency(out_path)
    stored = read_config(out_path)
    changes = {k: v for k, v in {**overrides, "strategy": strategy, "generator": generator}.items() if v is not None}
    fixed = sorted(k for k in changes if k in RESUME_FIXED and changes[k] != getattr(stored, k, None))
    if fixed:
        raise CTPluginError(
            f"cannot change {', '.join(fixed)} when resuming {out_path}: they define the run's data and model "
            "(start a new run, or fine-tune with init_from)"
        )
    if (out_path / "dataset.npz").is_file() and (out_path / "dataset.json").is_file():
        data = DatasetSpec.load(out_path)
    return stored, changes, data
