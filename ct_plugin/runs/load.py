"""Loading a run directory: its model, its dataset spec, its config and its log (:func:`load_run`).

The files and their readers are :mod:`ct_plugin.runs.files`; nothing is ever unpickled.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ct_plugin.config import TrainConfig
from ct_plugin.data.spec import DatasetSpec
from ct_plugin.errors import RunDirectoryError
from ct_plugin.plugins.registry import get_registry
from ct_plugin.runs.files import REQUIRED_FILES, read_json, read_log, safe_torch_load
from ct_plugin.runs.record import check_consistency


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


def build_model_from_description(description: dict[str, Any]) -> torch.nn.Module:
    """Rebuild a registered architecture from ``model.json``."""
    architecture = description.get("architecture")
    if not architecture:
        raise RunDirectoryError(
            f"this run used a custom module ({description.get('class', 'unknown class')}); "
            "pass an instance of it: load_model(run_dir, model=MyModule(...))"
        )
    return get_registry().build(
        "model",
        architecture,
        description["n_features"],
        description["n_classes"],
        **description.get("options", {}),
    )


def load_model(
    run_dir: str | Path, model: torch.nn.Module | None = None, device: torch.device | str = "cpu"
) -> torch.nn.Module:
    """The trained model of a run directory (encoded features -> logits), in eval mode.

    Registered architectures are rebuilt from ``model.json``; for a custom module pass an
    untrained instance as ``model`` and its weights are loaded into it.
    """
    run_dir = check_run_dir(run_dir)
    description = read_json(run_dir / "model.json")
    module = model if model is not None else build_model_from_description(description)
    state = safe_torch_load(run_dir / "model.pt", device)
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
    """Load model, dataset spec, config and log of a run directory."""
    run_dir = check_run_dir(run_dir)
    check_consistency(run_dir)
    return Run(
        path=run_dir,
        model=load_model(run_dir, model=model, device=device),
        spec=DatasetSpec.load(run_dir),
        config=TrainConfig.from_dict(read_json(run_dir / "config.json")),
        log=read_log(run_dir),
        model_description=read_json(run_dir / "model.json"),
    )
