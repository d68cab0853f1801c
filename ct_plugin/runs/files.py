"""The files of a run directory: their names, the one writer of weights, and readers that refuse bad content.

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
    manifest.json    the run format version and each file's SHA-256 (written when the run finishes)

Every file is written by :func:`ct_plugin.atomic.atomic_write` (a temporary created exclusively,
then renamed: never through a planted link). Nothing is ever unpickled: opening a run directory
someone sent you cannot execute code.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path
from typing import Any

import torch

from ct_plugin.atomic import atomic_write, atomic_write_json, make_folder, temporaries
from ct_plugin.data.spec import DatasetSpec
from ct_plugin.errors import RunDirectoryError
from ct_plugin.untrusted import Fields, read_json_object

RUN_FORMAT_VERSION = 2
"""Version of the run-directory format (1: before ``manifest.json``; 2: with it)."""
MANIFEST = "manifest.json"
REQUIRED_FILES = ("config.json", "dataset.json", "dataset.npz", "model.json", "model.pt")
WEIGHTS = "model.pt"
"""The run's final weights (a plain state dict)."""
MANIFEST_FILES = (*REQUIRED_FILES, "log.jsonl")
"""The files the manifest vouches for (a finished run's)."""
RUN_FILES = (*REQUIRED_FILES, "checkpoint.pt", "checkpoint.prev.pt", "log.jsonl", MANIFEST)
"""Every file a training run writes (what ``overwrite`` removes; other files are left alone)."""


def clear_run_dir(run_dir: str | Path) -> None:
    """Remove the files of a previous run (and their temporary siblings) from ``run_dir``."""
    run_dir = Path(run_dir)
    for name in RUN_FILES:
        for path in (run_dir / name, *temporaries(run_dir, name)):
            path.unlink(missing_ok=True)


# ------------------------------------------------------------------ writers
def write_run_files(
    run_dir: Path, config: dict[str, Any], model_description: dict[str, Any], spec: DatasetSpec
) -> None:
    """What a run writes before its first epoch: ``config.json``, ``model.json``, the dataset spec."""
    make_folder(run_dir)
    (run_dir / MANIFEST).unlink(missing_ok=True)  # the run changes from here on: no manifest until it finishes
    atomic_write_json(run_dir / "config.json", config)
    atomic_write_json(run_dir / "model.json", model_description)
    spec.save(run_dir)


def write_log(run_dir: Path, log: list[dict[str, Any]]) -> None:
    """``log.jsonl``: one JSON record per finished epoch."""
    atomic_write(run_dir / "log.jsonl", "".join(json.dumps(record) + "\n" for record in log))


def write_weights(run_dir: Path, state: dict[str, Any]) -> None:
    """``model.pt``: the final state dict."""
    atomic_torch_save(run_dir / WEIGHTS, state)


def atomic_torch_save(path: Path, payload: Any) -> None:
    """``torch.save`` through :func:`~ct_plugin.atomic.atomic_write` (a kill never leaves a half-written file)."""
    atomic_write(path, lambda handle: torch.save(payload, handle))


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


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object of a run directory, with a clear error for a missing, oversized or malformed file."""
    return read_json_object(path)


def read_log(run_dir: str | Path) -> list[dict[str, Any]]:
    """Per-epoch records of a run (empty if it has none yet); a malformed line raises, naming it."""
    path = Path(run_dir) / "log.jsonl"
    if not path.is_file():
        return []
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise RunDirectoryError(f"{path} cannot be read: {exc}") from None
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            raise RunDirectoryError(f"{path}: line {number} is not valid JSON") from None
        if not isinstance(record, dict) or not isinstance(record.get("epoch"), int):
            raise RunDirectoryError(f"{path}: line {number} is not an epoch record (a JSON object with an epoch)")
        records.append(record)
    return records


# ------------------------------------------------------------------ manifest
def file_digest(path: Path) -> str:
    """SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(2**20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def weights_digest(run_dir: str | Path) -> str | None:
    """SHA-256 of the run's trained weights (``model.pt``): from its manifest where it names them, else read
    from the file; None without weights. Identifies the trained model where settings cannot (a run retrained
    by other code, or another runs folder, has the same settings and other weights)."""
    run_dir = Path(run_dir)
    try:
        manifest = json.loads((run_dir / MANIFEST).read_text())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        manifest = None  # none (a run older than manifests) or unreadable: the file itself decides
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if isinstance(files, dict) and isinstance(files.get(WEIGHTS), str):
        return files[WEIGHTS]
    return file_digest(run_dir / WEIGHTS) if (run_dir / WEIGHTS).is_file() else None


def write_manifest(run_dir: Path) -> None:
    """``manifest.json``: the run format version and the SHA-256 of each of the run's files present now."""
    files = {name: file_digest(run_dir / name) for name in MANIFEST_FILES if (run_dir / name).is_file()}
    atomic_write_json(run_dir / MANIFEST, {"format_version": RUN_FORMAT_VERSION, "files": files})


def verify_manifest(run_dir: Path) -> None:
    """Refuse a run whose files changed since it was written (or were mixed from two runs), naming them.

    Runs written before manifests existed (format 1) have none and are accepted as they are.
    """
    path = run_dir / MANIFEST
    if not path.exists():
        return
    fields = Fields(read_json_object(path), path)
    version = fields.integer("format_version", 1, 2**31)
    if version is not None and version > RUN_FORMAT_VERSION:
        raise RunDirectoryError(f"{run_dir} was written by a newer ct-plugin (run format {version}; this one reads "
                                f"up to {RUN_FORMAT_VERSION}): upgrade ct-plugin to load it")
    files = fields.mapping("files")
    changed = []
    for name, digest in files.items():
        if name not in MANIFEST_FILES or not isinstance(digest, str):
            raise fields.fail("files", f"a JSON object of run file -> SHA-256 (files: {', '.join(MANIFEST_FILES)})")
        if not (run_dir / name).is_file() or file_digest(run_dir / name) != digest:
            changed.append(name)
    if changed:
        raise RunDirectoryError(
            f"{run_dir}: {', '.join(changed)} {'does' if len(changed) == 1 else 'do'} not match the run's manifest "
            "(changed since the run was written, or taken from another run); refusing to load a tampered run"
        )
