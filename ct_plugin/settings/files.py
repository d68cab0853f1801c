"""Settings files (TOML, YAML, JSON) read with one clear error for any parse problem."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ct_plugin.errors import CTPluginError


def read_settings_file(path: str | Path, what: str = "config file") -> dict[str, Any]:
    """Read a TOML, YAML or JSON file of settings; any parse problem is one clear error.

    YAML is read with ``safe_load`` (a ``!!python`` tag is refused, never executed).
    """
    path = Path(path)
    if not path.is_file():
        raise CTPluginError(f"{what} {path} does not exist")
    if path.suffix not in (".toml", ".yaml", ".yml", ".json"):
        raise CTPluginError(f"{what} {path} must end in .toml, .yaml, .yml or .json")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CTPluginError(
            f"{what} {path} is not UTF-8 text (a binary file?): {exc.reason} at byte {exc.start}"
        ) from exc
    try:
        values = _parse(path.suffix, text)
    except RecursionError:
        raise CTPluginError(f"cannot parse {what} {path}: it is nested too deeply") from None
    except CTPluginError as exc:
        raise CTPluginError(f"{what} {path}: {exc}") from exc
    except Exception as exc:  # every parser error (TOML, YAML, JSON) becomes one message
        detail = " ".join(str(exc).split())
        hint = " (YAML does not allow tabs for indentation)" if "\t" in text and path.suffix != ".toml" else ""
        raise CTPluginError(f"cannot parse {what} {path}: {detail}{hint}") from exc
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise CTPluginError(f"{what} {path} must hold a table of settings, not a {type(values).__name__}")
    return values


def _parse(suffix: str, text: str) -> Any:
    if suffix == ".toml":
        try:
            import tomllib
        except ImportError:  # pragma: no cover - Python 3.10
            import tomli as tomllib

        return tomllib.loads(text)
    if suffix == ".json":
        return json.loads(text)
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.constructor.ConstructorError as exc:
        raise CTPluginError(
            f"refused YAML tag in the settings file ({' '.join(str(exc.problem).split())}): only plain "
            "values, lists and tables are allowed (python tags would run code)"
        ) from exc
