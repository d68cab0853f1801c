"""Run directories: what a training run writes, and safe loading of it.

Layout::

    config.json      resolved TrainConfig
    dataset.json     dataset spec metadata (features, mutability, bounds, standardiser)
    dataset.npz      the encoded split (loaded with allow_pickle=False)
    model.json       architecture name and options (to rebuild the module)
    model.pt         final weights: a plain state dict (loaded with weights_only=True)
    checkpoint.pt    last completed epoch: weights, optimiser, RNG state (weights_only=True)
    checkpoint.prev.pt  the epoch before (kept by atomic rotation; ``--resume-from-previous``)
    .lock            held (flock) by the process training into the directory
    log.jsonl        one JSON record per epoch

Nothing is ever unpickled: opening a run directory someone sent you cannot execute code.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ct_plugin.config import TrainConfig
from ct_plugin.data.spec import DatasetSpec
from ct_plugin.errors import RunDirectoryError

REQUIRED_FILES = ("config.json", "dataset.json", "dataset.npz", "model.json", "model.pt")
RUN_FILES = (*REQUIRED_FILES, "checkpoint.pt", "log.jsonl")
"""Every file a training run writes (what ``overwrite`` removes; other files are left alone)."""


def clear_run_dir(run_dir: str | Path) -> None:
    """Remove the files of a previous run (and their temporary siblings) from ``run_dir``."""
    run_dir = Path(run_dir)
    for name in RUN_FILES:
        for path in (run_dir / name, run_dir / (name + ".tmp")):
            path.unlink(missing_ok=True)


def atomic_write_json(path: Path, payload: Any) -> None:
    """Write JSON to ``path`` via a temporary file and rename."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str))
    tmp.replace(path)


def atomic_torch_save(path: Path, payload: Any) -> None:
    """``torch.save`` to a temporary file, then rename (a kill never leaves a half-written file)."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def safe_torch_load(path: Path, device: torch.device | str = "cpu") -> Any:
    """``torch.load`` restricted to tensors and plain containers; anything else is refused."""
    if not path.is_file():
        raise RunDirectoryError(f"{path.parent} is incomplete: {path.name} is missing")
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights_only" not in str(exc) and "Weights only" not in str(exc):
            raise RunDirectoryError(f"{path} cannot be read (truncated or corrupted): {_first_line(exc)}") from exc
        raise RunDirectoryError(
            f"refused to load {path}: it is not a plain tensor state dict (loading it would have to "
            f"unpickle arbitrary objects, which could run code). Detail: {_first_line(exc)}"
        ) from exc
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, IndexError) as exc:
        raise RunDirectoryError(f"{path} cannot be read (truncated or corrupted): {_first_line(exc)}") from exc
    except (AttributeError, TypeError) as exc:
        raise RunDirectoryError(
            f"refused to load {path}: it is not a plain tensor state dict (loading it would have to "
            f"unpickle arbitrary objects, which could run code). Detail: {str(exc).splitlines()[0]}"
        ) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def read_json(path: Path) -> Any:
    """Read a JSON file of a run directory with a clear error."""
    if not path.is_file():
        raise RunDirectoryError(f"{path.parent} is incomplete: {path.name} is missing")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise RunDirectoryError(f"{path} is not valid JSON: {exc}") from exc


def read_log(run_dir: str | Path) -> list[dict[str, Any]]:
    """Per-epoch records of a run (empty if it has none yet)."""
    path = Path(run_dir) / "log.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


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
    from ct_plugin.registry import get_registry

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
    from ct_plugin.records import check_consistency

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
