"""Checkpoints that survive a kill at any moment, and a lock so two processes never share a run.

:func:`save_checkpoint` writes ``checkpoint.pt.tmp``, keeps the current ``checkpoint.pt`` as
``checkpoint.prev.pt`` (a hard link, or a copy where links are not supported) and renames the
new file into place, so at every instant ``checkpoint.pt`` is complete (or absent before the
first epoch) and the epoch before it is kept too. :func:`load_checkpoint` turns a truncated or
corrupted file into a :class:`~ct_plugin.errors.CheckpointError` that names the intact older
one and the flag that uses it (``--resume-from-previous``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from ct_plugin.errors import CheckpointError, RunDirectoryError, RunLockedError

CHECKPOINT = "checkpoint.pt"
PREVIOUS = "checkpoint.prev.pt"
LOCK = ".lock"
REQUIRED_KEYS = ("epoch", "model", "optimiser", "rng")


def save_checkpoint(run_dir: Path, payload: dict[str, Any]) -> None:
    """Atomically replace ``checkpoint.pt``, keeping the one before as ``checkpoint.prev.pt``."""
    current, previous = run_dir / CHECKPOINT, run_dir / PREVIOUS
    tmp = run_dir / (CHECKPOINT + ".tmp")
    # no fsync: a killed process loses nothing the kernel already holds, and an fsync per epoch
    # would cost more than many epochs of the small models trained here (power loss is out of scope)
    with open(tmp, "wb") as handle:
        torch.save(payload, handle)
    if current.is_file():
        keep = run_dir / (PREVIOUS + ".tmp")
        keep.unlink(missing_ok=True)
        try:
            os.link(current, keep)
        except OSError:  # file systems without hard links
            shutil.copyfile(current, keep)
        keep.replace(previous)
    tmp.replace(current)


def _read(path: Path, device: torch.device | str) -> dict[str, Any]:
    from ct_plugin.rundir import safe_torch_load

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


@contextlib.contextmanager
def run_lock(run_dir: Path | None) -> Iterator[None]:
    """Hold an exclusive lock on ``run_dir`` while training; a second process gets :class:`RunLockedError`.

    The lock is an OS file lock (``flock``): it is released when the process ends, even by SIGKILL,
    so a killed run never leaves a stale lock behind.
    """
    if run_dir is None:
        yield
        return
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no flock; training proceeds unlocked
        yield
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK
    handle = open(path, "a+")  # noqa: SIM115 - held for the whole block
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise RunLockedError(
                f"another process (pid {holder}) is training into {run_dir}; wait for it to finish, "
                "or choose another --out"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()
