"""Run records that tell the truth, and a check that a run directory's files agree.

``config.json`` holds the resolved :class:`~ct_plugin.config.TrainConfig` with the mutability
actually used (read back from the dataset spec, so a spec built with ``immutable=[...]`` is not
recorded as ``"immutable": []``), the generator's options with their defaults filled in, and a
``record`` table: library and torch versions, Python, and the seeds of each random draw.
:func:`check_consistency` compares ``config.json``, ``dataset.json``, ``model.json`` and the
arrays and says which files disagree.
"""

from __future__ import annotations

import inspect
import platform
from pathlib import Path
from typing import Any

import torch

from ct_plugin._version import __version__
from ct_plugin.data.spec import DatasetSpec
from ct_plugin.errors import RunDirectoryError
from ct_plugin.plugins.registry import get_registry
from ct_plugin.runs.files import read_json
from ct_plugin.untrusted import npz_shapes


def mutability_of(spec: DatasetSpec) -> dict[str, list[str]]:
    """``immutable``/``increase_only``/``decrease_only`` feature names as the spec applies them."""
    lists: dict[str, list[str]] = {"immutable": [], "increase_only": [], "decrease_only": []}
    key = {"none": "immutable", "increase": "increase_only", "decrease": "decrease_only"}
    for feature in spec.raw_feature_names:
        columns = spec.columns_of(feature)
        kinds = {spec.mutability[c] for c in columns}
        if len(kinds) == 1:
            kind = kinds.pop()
            if kind in key:
                lists[key[kind]].append(feature)
            continue
        for c in columns:  # a one-hot group restricted level by level
            if spec.mutability[c] in key:
                lists[key[spec.mutability[c]]].append(spec.feature_names[c])
    return lists


def generator_options_of(generator: Any, name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options a generator runs with: the given ones plus its signature's defaults."""
    resolved: dict[str, Any] = {}
    try:
        factory = get_registry().get("generator", name).factory
        for p in inspect.signature(factory).parameters.values():
            if p.default is not inspect.Parameter.empty and _plain(p.default):
                resolved[p.name] = p.default
    except Exception:  # an exotic plugin signature: record the given options only
        pass
    resolved.update(options)
    return resolved


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str | list | tuple)


def resolved_config(config: Any, spec: DatasetSpec, generator: Any) -> dict[str, Any]:
    """The dict written to ``config.json``: settings as used, plus the provenance ``record``."""
    values = config.to_dict()
    values.update(mutability_of(spec))
    # a named dataset is recorded by the spec's name; the csv dataset by "csv" and its options (the file)
    values["dataset"] = config.dataset if config.dataset == "csv" else spec.name
    if generator is not None:
        values["generator_options"] = generator_options_of(generator, config.generator, config.generator_options)
    values["record"] = {
        "ct_plugin_version": __version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "seeds": {
            "data_split": spec.options.get("split_seed", config.seed),
            "model_init": config.seed,
            "sampling": config.seed,
            "torch_generator": "torch.Generator().manual_seed(seed), state saved in checkpoint.pt",
        },
        "n_features": spec.n_features,
        "n_classes": spec.n_classes,
    }
    return values


def check_consistency(run_dir: str | Path) -> None:
    """Raise :class:`RunDirectoryError` naming the files of ``run_dir`` that disagree."""
    run_dir = Path(run_dir)
    config = read_json(run_dir / "config.json")
    dataset = read_json(run_dir / "dataset.json")
    model = read_json(run_dir / "model.json")
    problems: list[str] = []
    for name, payload in (("config.json", config), ("dataset.json", dataset), ("model.json", model)):
        if not isinstance(payload, dict):
            raise RunDirectoryError(f"{run_dir / name} must hold a JSON object, not {type(payload).__name__}")
    features = dataset.get("feature_names", [])
    classes = dataset.get("class_names", [])
    if config.get("dataset") not in (dataset.get("name"), "csv"):  # the csv dataset is named after its file
        problems.append(f"config.json names dataset {config.get('dataset')!r}, dataset.json {dataset.get('name')!r}")
    if model.get("n_features") != len(features):
        problems.append(f"model.json expects {model.get('n_features')} features, dataset.json has {len(features)}")
    if model.get("n_classes") != len(classes):
        problems.append(f"model.json expects {model.get('n_classes')} classes, dataset.json has {len(classes)}")
    if model.get("architecture") and config.get("model") != model.get("architecture"):
        problems.append(f"config.json names model {config.get('model')!r}, model.json {model.get('architecture')!r}")
    problems += _mutability_problems(config, dataset)
    problems += _array_problems(run_dir, len(features), dataset)
    if problems:
        raise RunDirectoryError(f"the files of run {run_dir} disagree: " + "; ".join(problems))


def _mutability_problems(config: dict[str, Any], dataset: dict[str, Any]) -> list[str]:
    names, kinds = dataset.get("feature_names", []), dataset.get("mutability", [])
    if len(names) != len(kinds):
        return [f"dataset.json lists {len(names)} features but {len(kinds)} mutabilities"]
    restricted = {"none": "immutable", "increase": "increase_only", "decrease": "decrease_only"}
    problems = []
    for kind, key in restricted.items():
        recorded = config.get(key)
        if not isinstance(recorded, list):
            continue
        in_spec = {n.split("=", 1)[0] for n, k in zip(names, kinds, strict=True) if k == kind}
        in_spec |= {n for n, k in zip(names, kinds, strict=True) if k == kind}
        missing = sorted(set(recorded) - in_spec)
        if missing:
            problems.append(f"config.json lists {key} {missing}, which dataset.json does not restrict that way")
    return problems


def _array_problems(run_dir: Path, n_features: int, dataset: dict[str, Any]) -> list[str]:
    path = run_dir / "dataset.npz"
    if not path.is_file():
        return []
    shapes = npz_shapes(path)  # from the headers: nothing is decompressed (an unreadable archive raises)
    if "X_train" not in shapes or "y_train" not in shapes:
        return [f"dataset.npz lacks X_train or y_train (it holds {sorted(shapes)})"]
    shape, n_train = shapes["X_train"][0], shapes["y_train"][0][0] if shapes["y_train"][0] else 0
    problems = []
    if len(shape) != 2 or shape[1] != n_features:
        problems.append(f"dataset.npz has X_train of shape {shape}, dataset.json {n_features} features")
    if dataset.get("n_train") is not None and dataset["n_train"] != n_train:
        problems.append(f"dataset.npz has {n_train} training rows, dataset.json says {dataset['n_train']}")
    return problems
