"""One validation layer for every public entry point (scalars, the train config, KEY=VALUE flags).

The Python API (:func:`ct_plugin.train`), the command line (flags and ``KEY=VALUE`` options),
config files, grid files and plugin options all pass their settings through the functions
here, so a bad value is coerced when the intent is clear (``"0.5"`` -> 0.5, ``1e3`` -> 1000)
and otherwise refused with one :class:`~ct_plugin.errors.InvalidSettingError` that names the
setting, the value and what is allowed. Nothing unexplained reaches torch or pandas. Which
setting takes which kind of value is declared once, in the settings tables
(:mod:`ct_plugin.settings.table`); plugin options are typed against the plugin's signature in
:mod:`ct_plugin.plugins.options`; settings files are read by :mod:`ct_plugin.settings.files`.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ct_plugin.errors import CTPluginError, InvalidSettingError

DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
MAX_THREADS = 4096


# ------------------------------------------------------------------ scalars
def as_int(
    name: str, value: Any, low: int | None = None, high: int | None = None, where: str = "", allowed: str | None = None
) -> int:
    """``value`` as an int (integral floats and numeric strings accepted; bools refused)."""
    allowed = allowed or range_words("an integer", low, high)
    number: Any = value
    if isinstance(number, str):
        number = _parse_number(number)
    if isinstance(number, bool) or not isinstance(number, int | float):
        raise InvalidSettingError(name, value, allowed, where)
    if isinstance(number, float):
        if not math.isfinite(number) or number != int(number):
            raise InvalidSettingError(name, value, allowed, where)
        number = int(number)
    if (low is not None and number < low) or (high is not None and number > high):
        raise InvalidSettingError(name, value, allowed, where)
    return number


def as_float(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    allowed: str | None = None,
    where: str = "",
) -> float:
    """``value`` as a finite float (numeric strings accepted; bools, NaN and inf refused)."""
    allowed = allowed or range_words("a finite number", low, high, low_open, high_open)
    number: Any = value
    if isinstance(number, str):
        number = _parse_number(number)
    if isinstance(number, bool) or not isinstance(number, int | float):
        raise InvalidSettingError(name, value, allowed, where)
    try:
        number = float(number)
    except OverflowError:  # a huge int
        raise InvalidSettingError(name, value, allowed, where) from None
    if not math.isfinite(number):
        raise InvalidSettingError(name, value, allowed, where)
    if low is not None and (number < low or (low_open and number == low)):
        raise InvalidSettingError(name, value, allowed, where)
    if high is not None and (number > high or (high_open and number == high)):
        raise InvalidSettingError(name, value, allowed, where)
    return number


def as_bool(name: str, value: Any, where: str = "") -> bool:
    """``value`` as a bool (``true``/``false``/``yes``/``no``/``1``/``0`` strings and 0/1 accepted)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no", "1", "0", "on", "off"):
        return value.strip().lower() in ("true", "yes", "1", "on")
    raise InvalidSettingError(name, value, "true or false", where)


def as_name(name: str, value: Any, where: str = "") -> str:
    """A non-empty registry name."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidSettingError(name, value, "a non-empty name (string)", where)
    return value.strip()


def as_path(name: str, value: Any, where: str = "") -> str | None:
    """``None`` or a path given as a string or ``os.PathLike``."""
    if value is None:
        return None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, str) and value.strip() and "\x00" not in value:
        return value
    raise InvalidSettingError(name, value, "a path (string) or None", where)


def as_names(name: str, value: Any, where: str = "") -> list[str]:
    """A list of feature names; a single string may hold comma-separated names."""
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return list(value)
    raise InvalidSettingError(name, value, "a list of feature names (strings)", where)


def as_device(name: str, value: Any, where: str = "") -> str:
    """``auto``, ``cpu``, ``mps``, ``cuda`` or ``cuda:INDEX`` (torch.device objects accepted)."""
    text = str(value).strip() if value is not None and not isinstance(value, bool | int | float) else None
    if text is None or not DEVICE_PATTERN.match(text):
        raise InvalidSettingError(name, value, "one of auto, cpu, cuda, cuda:INDEX, mps", where)
    return text


def check_threads(value: Any, flag: str = "threads") -> int | None:
    """``None`` (the default) or a thread count in 1..4096."""
    if value is None:
        return None
    return as_int(flag, value, 1, MAX_THREADS)


def _parse_number(text: str) -> Any:
    try:
        return int(text.strip())
    except ValueError:
        pass
    try:
        return float(text.strip())
    except ValueError:
        return text


def range_words(kind: str, low: Any, high: Any, low_open: bool = False, high_open: bool = False) -> str:
    """``kind`` with its range in words: ``"an integer in [1, 100]"``, ``"a finite number > 0"``."""
    if low is None and high is None:
        return kind
    if high is None:
        return f"{kind} {'>' if low_open else '>='} {_bound(low)}"
    if low is None:
        return f"{kind} {'<' if high_open else '<='} {_bound(high)}"
    return f"{kind} in {'(' if low_open else '['}{_bound(low)}, {_bound(high)}{')' if high_open else ']'}"


def _bound(value: Any) -> str:
    """A range bound as people write it: 0 rather than 0.0, 0.5 as is."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def parse_option_value(text: str) -> Any:
    """A command-line option value: JSON if it parses (numbers, lists, true/false/null), else the string."""
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return text
    return value if not isinstance(value, float) or math.isfinite(value) else text


def parse_key_values(pairs: Sequence[str] | None, flag: str) -> dict[str, Any]:
    """``KEY=VALUE`` strings of a repeatable command-line flag as a dict (types checked later)."""
    options: dict[str, Any] = {}
    for pair in pairs or ():
        if "=" not in pair:
            raise CTPluginError(f"{flag} expects KEY=VALUE, got {pair!r}")
        key, value = pair.split("=", 1)
        key = key.strip().replace("-", "_")
        if not key.isidentifier():
            raise CTPluginError(f"{flag}: {key!r} is not a valid option name (in {pair!r})")
        options[key] = parse_option_value(value)
    return options


def check_options_table(name: str, table: Any, where: str = "") -> dict[str, Any]:
    """A mapping of option name (string) to value, as a plain dict."""
    if not isinstance(table, Mapping) or not all(isinstance(k, str) for k in table):
        raise InvalidSettingError(name, table, "a mapping of option name to value", where)
    return dict(table)
