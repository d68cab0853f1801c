"""Loading a run directory: its model, its dataset spec, its config and its log (:func:`load_run`).

The files and their readers are :mod:`ct_plugin.runs.files`; nothing is ever unpickled.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ct_plugin.config import TrainConfig
from ct_plugin.data.spec import DatasetSpec
from ct_plugin.errors import CTPluginError, RunDirectoryError
from ct_plugin.plugins.options import build_with_options
from ct_plugin.plugins.registry import get_registry
from ct_plugin.runs.files import REQUIRED_FILES, read_log, safe_torch_load, verify_manifest
from ct_plugin.runs.record import check_consistency
from ct_plugin.untrusted import Fields, read_json_object


def check_run_dir(run_dir: str | Path) -> Path:
    """Raise a clear error unless ``run_dir`` holds a complete run."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirectoryError(f"run directory {run_dir} does not exist")
    missing = [name for name in REQUIRED_FILES if not (run_dir / name).is_file()]
    if missing:
        raise RunDirectoryError(
            f"run directory {run_dir} is incomplete: missing {', '.join(missing)} "
            "(was the run interrupted? resume it with `ct-plugin train --resume --out DIR`)"
        )
    return run_dir


MODEL_LIMITS = {"n_features": (1, 100_000_000), "n_classes": (2, 10_000_000)}
"""Ranges of ``model.json``'s sizes (anything beyond is not a model ct-plugin trained)."""


def read_model_description(run_dir: Path) -> dict[str, Any]:
    """``model.json``, every field checked (a fault names the file and the field)."""
    path = run_dir / "model.json"
    fields = Fields(read_json_object(path), path)
    description = dict(fields.payload)
    description["architecture"] = fields.text("architecture", optional=True)
    for key, (low, high) in MODEL_LIMITS.items():
        description[key] = fields.integer(key, low, high)
    description["options"] = fields.mapping("options", optional=True)
    if description["architecture"] is None:
        description["class"] = fields.text("class", optional=True) or "unknown class"
    return description


def read_config(run_dir: Path) -> TrainConfig:
    """``config.json`` as a validated :class:`TrainConfig` (a fault names the file and the setting)."""
    path = run_dir / "config.json"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # settings warnings (a huge lr) are the training's business, not loading's
            return TrainConfig.from_dict(read_json_object(path)).validate()
    except RunDirectoryError:
        raise
    except CTPluginError as exc:
        raise RunDirectoryError(f"{path}: {exc}") from None


def build_model_from_description(
    description: dict[str, Any], weights: dict[str, torch.Tensor] | None = None
) -> torch.nn.Module:
    """Rebuild a registered architecture from ``model.json`` (checked against ``weights`` before any allocation).

    With ``weights``, the architecture is first built on torch's ``meta`` device, which allocates
    nothing, and its parameter shapes are compared with the weights: a ``model.json`` that asks for
    a billion hidden units next to small weights is refused instead of filling the memory.
    """
    architecture = description.get("architecture")
    if not architecture:
        raise RunDirectoryError(
            f"this run used a custom module ({description.get('class', 'unknown class')}); "
            "pass an instance of it: load_model(run_dir, model=MyModule(...))"
        )
    registry = get_registry()
    if architecture not in registry.names("model"):
        raise RunDirectoryError(
            f"model.json names the architecture {architecture!r}, which no installed plugin registers "
            f"(registered: {', '.join(registry.names('model'))}); install the plugin the run was trained with"
        )
    factory = registry.get("model", architecture).factory
    n_features, n_classes, options = description["n_features"], description["n_classes"], description["options"]

    def build() -> torch.nn.Module:
        try:
            return build_with_options("model", architecture, factory, n_features, n_classes, **options)
        except CTPluginError as exc:
            raise RunDirectoryError(f"model.json cannot be built: {exc}") from None

    if weights is not None:
        try:
            with torch.device("meta"):
                skeleton = build()
        except RunDirectoryError:
            raise
        except Exception:  # a plugin architecture that cannot be built on the meta device: check after building
            skeleton = None
        if skeleton is not None:
            check_weights_fit(skeleton, weights)
    return build()


def check_weights_fit(module: torch.nn.Module, weights: dict[str, torch.Tensor]) -> None:
    """Refuse weights whose names or shapes differ from ``module``'s (naming the first difference)."""
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise RunDirectoryError("model.pt must hold a state dict of tensors")
    expected = {name: tuple(t.shape) for name, t in module.state_dict().items()}
    found = {name: tuple(t.shape) for name, t in weights.items()}
    for name in sorted(set(expected) | set(found)):
        if expected.get(name) != found.get(name):
            raise RunDirectoryError(
                f"the weights in model.pt do not fit the model model.json describes: parameter {name!r} is "
                f"{found.get(name, 'missing')} in the weights but {expected.get(name, 'absent')} in the architecture"
            )


def load_model(
    run_dir: str | Path, model: torch.nn.Module | None = None, device: torch.device | str = "cpu"
) -> torch.nn.Module:
    """The trained model of a run directory (encoded features -> logits), in eval mode.

    Registered architectures are rebuilt from ``model.json`` (checked against the weights before
    anything is allocated); for a custom module pass an untrained instance as ``model`` and its
    weights are loaded into it.
    """
    run_dir = check_run_dir(run_dir)
    description = read_model_description(run_dir)
    state = safe_torch_load(run_dir / "model.pt", device)
    module = model if model is not None else build_model_from_description(description, state)
    check_weights_fit(module, state)
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        raise RunDirectoryError(f"weights in {run_dir / 'model.pt'} do not fit the model: {exc}") from exc
    return module.to(device).eval()


@dataclass
class Run:
    """A loaded run directory."""

    path: Path
    model: torch.nn.Module
    spec: DatasetSpec
    config: TrainConfig
    log: list[dict[str, Any]]
    model_description: dict[str, Any]


def load_run(run_dir: str | Path, model: torch.nn.Module | None = None, device: str = "cpu") -> Run:
    """Load model, dataset spec, config and log of a run directory, every file checked first.

    Every file must hold what it should (:func:`read_config`, :func:`read_model_description`,
    :meth:`DatasetSpec.load`, :func:`~ct_plugin.runs.files.read_log`), the files must agree with each
    other, and the run's manifest (``manifest.json``: each file's SHA-256) must match them. Any fault is one
    :class:`RunDirectoryError` naming the file and the field.
    """
    run_dir = check_run_dir(run_dir)
    config = read_config(run_dir)
    description = read_model_description(run_dir)
    spec = DatasetSpec.load(run_dir)
    check_consistency(run_dir)  # files that disagree are named for what they say
    verify_manifest(run_dir)  # files changed or mixed in from another run, even where they still agree
    return Run(
        path=run_dir,
        model=load_model(run_dir, model=model, device=device),
        spec=spec,
        config=config,
        log=read_log(run_dir),
        model_description=description,
    )
