"""Where the real tables live: one resolver used by every command, script, Makefile target and test.

Search order:

1. the folder passed explicitly (``data_dir=`` / ``--data-dir``): when given, it is the only
   place searched (an explicit choice is never silently replaced by another folder);
2. else ``$CT_PLUGIN_DATA`` (one folder, or several separated by ``os.pathsep``),
3. then the user cache, ``$XDG_CACHE_HOME/ct-plugin/data`` (default ``~/.cache/ct-plugin/data``),
   where ``ct-plugin datasets --download`` puts what it fetches;
   the first of these folders that holds the requested file wins.

A missing table raises :class:`~ct_plugin.errors.DataNotFoundError` listing every folder
searched and how to fill one.
"""

from __future__ import annotations

import os
from pathlib import Path

from ct_plugin.errors import CTPluginError


class DataNotFoundError(CTPluginError):
    """A real table's file is in none of the searched folders."""


def cache_data_dir() -> Path:
    """The user cache folder for downloaded tables."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ct-plugin" / "data"


def search_path(data_dir: str | Path | None = None) -> list[tuple[str, Path]]:
    """The folders searched, in order, each with where it came from."""
    if data_dir is not None and str(data_dir) != "":
        return [("--data-dir / data_dir argument", Path(data_dir).expanduser())]
    places: list[tuple[str, Path]] = []
    for part in os.environ.get("CT_PLUGIN_DATA", "").split(os.pathsep):
        if part.strip():
            places.append(("$CT_PLUGIN_DATA", Path(part.strip()).expanduser()))
    places.append(("user cache", cache_data_dir()))
    return places


def find_file(file: str, data_dir: str | Path | None = None, how_to_get: str = "") -> Path:
    """The first ``folder/file`` along :func:`search_path`; a :class:`DataNotFoundError` listing them if none."""
    places = search_path(data_dir)
    for _, folder in places:
        if (folder / file).is_file():
            return folder / file
    searched = "\n".join(f"  {i}. {folder}  ({origin})" for i, (origin, folder) in enumerate(places, 1))
    raise DataNotFoundError(
        f"dataset file {file!r} not found; searched, in order:\n{searched}\n"
        f"Put the file into one of them, pass --data-dir FOLDER (data_dir=...) or set "
        f"CT_PLUGIN_DATA=FOLDER (without either, {cache_data_dir()} is used)"
        + (f"; {how_to_get}" if how_to_get else "")
    )


def download_dir(data_dir: str | Path | None = None) -> Path:
    """Where a download goes: the explicit folder, else the first ``$CT_PLUGIN_DATA`` folder, else the cache."""
    return search_path(data_dir)[0][1]
