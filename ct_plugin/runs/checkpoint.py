"""Checkpoints that survive a kill at any moment, and a lock so two processes never share a run.

:func:`save_checkpoint` serialises the new state, keeps the current ``checkpoint.pt`` as
``checkpoint.prev.pt`` (a hard link, or a copy where links are not supported) and writes the new
file into place with :func:`~ct_plugin.atomic.atomic_write`, so at every instant ``checkpoint.pt``
is complete (or absent before the first epoch) and the epoch before it is kept too.
:func:`load_checkpoint` turns a truncated or
corrupted file into a :class:`~ct_plugin.errors.CheckpointError` that names the intact older
one and the flag that uses it (``--resume-from-previous``).
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Any

import torch

from ct_plugin.atomic import atomic_write
from ct_plugin.errors import CheckpointError, RunDirectoryError
from ct_plugin.jobs import folder_lock
from ct_plugin.runs.files import safe_torch_load

CHECKPOINT = "checkpoint.pt"
PREVIOUS = "checkpoint.prev.pt"
REQUIRED_KEYS = ("epoch", "model", "optimiser", "rng")


def save_checkpoint(run_dir: Path, payload: dict[str, Any]) -> None:
    """Atomically replace ``checkpoint.pt``, keeping the one before as ``checkpoint.prev.pt``."""
    current, previous = run_dir / CHECKPOINT, run_dir / PREVIOUS
    # no fsync: a killed process loses nothing the kernel already holds, and an fsync per epoch
    # would cost more than many epochs of the small models trained here (power loss is out of scope)
    data = io.BytesIO()
    torch.save(payload, data)
    if current.is_file() and not current.is_symlink():
        # the current checkpoint becomes the previous one: a hard link of it (a copy where links are not
        # supported) under a fresh temporary name, renamed into place; never through a planted link
        keep = run_dir / f".{PREVIOUS}.{os.getpid()}.tmp"
        keep.unlink(missing_ok=True)
        try:
            os.link(current, keep, follow_symlinks=False)
        except OSError:  # file systems without hard links
            atomic_write(keep, current.read_bytes())
        keep.replace(previous)
    atomic_write(current, data.getbuffer())


def _read(path: Path, device: torch.device | str) -> dict[str, Any]:
    state = safe_torch_load(path, device)
    if not isinstance(state, dict) or any(key not in state for key in REQUIRED_KEYS):
        raise RunDirectoryError(f"{path} is not a ct-plugin checkpoint (keys {', '.join(REQUIRED_KEYS)} expected)")
    return state


def _intact(path: Path) -> bool:
    try:
        _read(path, "cpu")
    except RunDirectoryError:
        return False
    return True


def load_checkpoint(run_dir: Path, device: torch.device | str, previous: bool = False) -> dict[str, Any] | None:
    """The state of ``checkpoint.pt`` (or ``checkpoint.prev.pt`` with ``previous=True``); None if there is none.

    A checkpoint that cannot be read raises :class:`CheckpointError`; its message names the
    older intact checkpoint when there is one, and how to continue from it.
    """
    current, older = run_dir / CHECKPOINT, run_dir / PREVIOUS
    if previous:
        if not older.is_file():
            raise CheckpointError(f"{run_dir} has no previous checkpoint ({PREVIOUS}) to resume from")
        return _read(older, device)
    if not current.is_file():
        return None
    try:
        return _read(current, device)
    except RunDirectoryError as exc:
        fallback = str(older) if older.is_file() and _intact(older) else None
        advice = (
            f"; the previous checkpoint {fallback} is intact: continue from it (one epoch earlier) with "
            f"`ct-plugin train --resume-from-previous --out {run_dir}` or train(..., resume='previous')"
            if fallback
            else "; no intact older checkpoint exists: delete the run directory and train again"
        )
        raise CheckpointError(f"checkpoint {current} is truncated or corrupted ({exc}){advice}", fallback) from exc


def run_lock(run_dir: Path | None) -> contextlib.AbstractContextManager[None]:
    """Hold an exclusive lock on ``run_dir`` while training; a second process gets :class:`RunLockedError`.

    An OS file lock (:func:`ct_plugin.jobs.folder_lock`): released when the process ends, even by
    SIGKILL, so a killed run never leaves a stale lock behind.
    """
    return folder_lock(run_dir, "training into")
