"""What the commands share: the ``--threads`` flag, ``KEY=VALUE`` options and comma-separated lists."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from ct_plugin.errors import CTPluginError
from ct_plugin.settings.coerce import parse_key_values

DATA_DIR_HELP = (
    "folder with the real tables' CSV files; searched first, then $CT_PLUGIN_DATA, then "
    "~/.cache/ct-plugin/data (`ct-plugin datasets --where` shows the order)"
)
THREADS_HELP = (
    "torch CPU threads (default: $OMP_NUM_THREADS if set, else chosen from the model and batch sizes; 1 for "
    "small models)"
)


def key_values(pairs: Sequence[str] | None, flag: str) -> dict[str, Any]:
    """``KEY=VALUE`` flags through the validation layer (values typed against the plugin's signature later)."""
    return parse_key_values(pairs, flag)


def names(values: Sequence[str] | None) -> list[str]:
    """Accept repeated flags and comma-separated lists."""
    return [name.strip() for value in values or () for name in value.split(",") if name.strip()]


def floats(text: str | None) -> tuple[float, ...] | None:
    """Comma-separated numbers (None stays None)."""
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError as exc:
        raise CTPluginError(f"expected comma-separated numbers, got {text!r}") from exc
    if not values:
        raise CTPluginError(f"expected comma-separated numbers, got {text!r}")
    return values


def add_threads_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--threads N`` as every computing command offers it."""
    parser.add_argument("--threads", type=int, metavar="N", help=THREADS_HELP)
