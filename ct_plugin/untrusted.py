"""Reading files that may have been tampered with: size limits, JSON that must hold what it should.

Run directories travel (a colleague sends one, a tracker stores one), so every file ct-plugin reads
back is untrusted input. :func:`read_json_object` reads a JSON object of bounded size, and
:class:`Fields` checks its fields one by one, so that any fault becomes one
:class:`~ct_plugin.errors.RunDirectoryError` naming the file and the field, before anything is
built from it. :func:`npz_shapes` reads the shapes of a ``.npz`` archive's arrays from their headers,
so an archive that would decompress to more memory than the machine has is refused unread.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ct_plugin.errors import RunDirectoryError, show_value

MAX_JSON_BYTES = 256 * 2**20
"""JSON files beyond this are refused (the largest a run writes, dataset.json of an image set, is far smaller)."""


def memory_limit() -> int:
    """Bytes a single array read back may take: half the machine's memory (8 GiB where it cannot be read)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2)
    except (AttributeError, OSError, ValueError):  # not POSIX
        return 8 * 2**30


def read_json_object(path: Path, max_bytes: int = MAX_JSON_BYTES) -> dict[str, Any]:
    """The JSON object in ``path`` (a missing, oversized, unreadable or non-object file raises, naming it)."""
    if not path.is_file():
        raise RunDirectoryError(f"{path.parent} is incomplete: {path.name} is missing")
    size = path.stat().st_size
    if size > max_bytes:
        raise RunDirectoryError(f"{path} is {size:,} bytes; a file of this kind is never larger than {max_bytes:,}")
    try:
        payload = json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise RunDirectoryError(f"{path} is not valid JSON ({type(exc).__name__}: {str(exc)[:120]})") from None
    except OSError as exc:
        raise RunDirectoryError(f"{path} cannot be read: {exc.strerror}") from None
    if not isinstance(payload, dict):
        raise RunDirectoryError(f"{path} must hold a JSON object, not {type(payload).__name__}")
    return payload


class Fields:
    """Checked access to the fields of one JSON object read from ``path``."""

    def __init__(self, payload: dict[str, Any], path: Path):
        self.payload, self.path = payload, path

    def fail(self, key: str, wanted: str) -> RunDirectoryError:
        """The error for field ``key`` not being ``wanted``."""
        value = self.payload.get(key, "(missing)")
        return RunDirectoryError(f"{self.path}: field {key!r} must be {wanted}, got {show_value(value)}")

    def has(self, key: str) -> bool:
        """Whether the field is present (and not null)."""
        return self.payload.get(key) is not None

    def text(self, key: str, optional: bool = False) -> str | None:
        """A string field."""
        value = self.payload.get(key)
        if value is None and optional:
            return None
        if not isinstance(value, str):
            raise self.fail(key, "a string")
        return value

    def texts(self, key: str, optional: bool = False) -> list[str]:
        """A list of strings."""
        value = self.payload.get(key)
        if value is None and optional:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, "a list of strings")
        return list(value)

    def integer(self, key: str, low: int = 0, high: int = 2**62, optional: bool = False) -> int | None:
        """An integer within ``[low, high]``."""
        value = self.payload.get(key)
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail(key, f"an integer in [{low}, {high}]")
        return value

    def numbers(self, key: str, length: int, positive: bool = False) -> np.ndarray:
        """A list of ``length`` finite numbers (positive ones with ``positive``), as float64."""
        value = self.payload.get(key)
        wanted = f"a list of {length} finite {'positive ' if positive else ''}numbers"
        if not isinstance(value, list) or len(value) != length:
            raise self.fail(key, wanted)
        if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value):
            raise self.fail(key, wanted)
        array = np.asarray(value, dtype=np.float64)
        if positive and (array <= 0).any():
            raise self.fail(key, wanted)
        return array

    def mapping(self, key: str, optional: bool = False) -> dict[str, Any]:
        """A JSON object (string keys)."""
        value = self.payload.get(key)
        if value is None and optional:
            return {}
        if not isinstance(value, dict):
            raise self.fail(key, "a JSON object")
        return dict(value)

    def choice(self, key: str, choices: Sequence[str], values: list[str]) -> list[str]:
        """``values`` (already read from ``key``), each one of ``choices``."""
        bad = [v for v in values if v not in choices]
        if bad:
            raise self.fail(key, f"a list of {', '.join(choices)} (found {bad[:3]})")
        return values


def npz_shapes(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shape and dtype of every array of a ``.npz`` archive, from its headers (no array is decompressed).

    Raises :class:`RunDirectoryError` for an archive that is not one, or whose arrays would take more
    than :func:`memory_limit` bytes.
    """
    shapes: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(member)
                    elif version == (2, 0):
                        shape, _, dtype = np.lib.format.read_array_header_2_0(member)
                    else:
                        raise ValueError(f"unsupported .npy format version {version} of {info.filename}")
                shapes[info.filename[: -len(".npy")]] = (tuple(int(n) for n in shape), np.dtype(dtype))
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        raise RunDirectoryError(f"{path} is not a readable .npz archive ({type(exc).__name__}: {exc})") from None
    total = sum(int(np.prod(shape, dtype=np.float64)) * dtype.itemsize for shape, dtype in shapes.values())
    if total > memory_limit():
        raise RunDirectoryError(f"{path} would take {total / 2**30:.1f} GiB once read, more than this machine can "
                                f"hold ({memory_limit() / 2**30:.1f} GiB for one file); refused unread")
    return shapes
