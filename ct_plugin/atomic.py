"""Atomic file writes that never follow a link: the one write-to-temporary-then-rename of the project.

Every file ct-plugin writes into a folder it may share with a user (run directories, tuning and
grid outputs, caches) goes through :func:`atomic_write`:

* the temporary file is created by :func:`tempfile.mkstemp` in the target's folder, which opens it
  with ``O_CREAT | O_EXCL`` (and ``O_NOFOLLOW`` where the platform has it): a link planted under
  any name is never written through, and two writers never share a temporary;
* the temporary is renamed over the target with :func:`os.replace`, which replaces a link planted
  at the target's name instead of writing to where it points;
* a kill at any moment leaves either the old file or the new one, never half of one; a failed
  write (a full disk, say) removes its temporary and raises.

Temporaries are named ``.<name>.<random>.tmp`` beside their target (:func:`temporaries` finds the
ones a killed writer left behind).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from ct_plugin.errors import CTPluginError

# the permissions a plain open() would give (mkstemp creates 0600 files)
_UMASK = os.umask(0)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK


def atomic_write(path: str | Path, data: bytes | str | Callable[[IO[bytes]], Any]) -> Path:
    """Write ``data`` (bytes, text, or a function writing to a binary handle) to ``path`` atomically."""
    path = Path(path)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            if callable(data):
                data(handle)
            else:
                handle.write(data.encode() if isinstance(data, str) else data)
        os.chmod(temporary, FILE_MODE)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return path


def atomic_write_json(path: str | Path, payload: Any, indent: int | None = 2) -> Path:
    """Write ``payload`` as JSON (values JSON cannot hold written with ``str``) to ``path`` atomically."""
    return atomic_write(path, json.dumps(payload, indent=indent, default=str))


def temporaries(folder: str | Path, name: str) -> list[Path]:
    """The temporaries of ``name`` in ``folder`` that an interrupted :func:`atomic_write` left behind."""
    return sorted(Path(folder).glob(f".{name}.*.tmp"))


def make_folder(folder: Path) -> Path:
    """``folder`` (and its parents) created if missing; a clear error when a file is in the way."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocking = next((p for p in [folder, *folder.parents] if p.exists() and not p.is_dir()), folder)
        raise CTPluginError(f"cannot use {folder} as an output folder: {blocking} is a file, not a folder") from None
    except OSError as exc:
        raise CTPluginError(f"cannot create the output folder {folder}: {exc.strerror}") from None
    return folder


def safe_name(text: str, fallback: str = "output") -> str:
    """``text`` as one harmless path component: letters, digits, ``_ . -`` only, no leading dot (never ``..``).

    For folder names derived from a file's contents (a run's dataset name), which must not steer a
    write anywhere else.
    """
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).strip("._")
    return name[:100] or fallback


def claim_folder(folder: Path, own: tuple[str, ...], overwrite: bool, what: str) -> Path:
    """``folder`` as an output folder: new, empty, holding a previous ``what`` (one of ``own``), or ``overwrite``.

    A command writes into an existing folder only to redo its own work (recognised by the files in
    ``own`` it leaves there) or when asked (``--overwrite``); files of others are never removed.
    """
    if folder.exists() and not folder.is_dir():
        raise CTPluginError(f"cannot use {folder} as an output folder: it is a file, not a folder")
    if folder.is_dir() and not overwrite:
        entries = sorted(p.name for p in folder.iterdir())
        if entries and not any((folder / name).exists() for name in own):
            shown = ", ".join(entries[:4]) + (", ..." if len(entries) > 4 else "")
            raise CTPluginError(
                f"{folder} already holds files that are not a previous {what} ({shown}); choose another --out, "
                "or pass --overwrite to write into it anyway"
            )
    return make_folder(folder)
