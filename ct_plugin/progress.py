"""The one progress-bar factory: training epochs, tuning, reproduction, post-hoc DiCE/CARLA searches.

A bar (elapsed, rate and time left) is shown on a terminal for work expected to take a while, and
never written into a log file or a pipe (where thousands of carriage returns would only clutter
it). ``CT_PLUGIN_PROGRESS=0`` silences every bar, ``CT_PLUGIN_PROGRESS=1`` shows them always,
even for short work and when the output is not a terminal.
"""

from __future__ import annotations

import os
import sys
from typing import IO, Any

from tqdm.auto import tqdm

SHOW_AFTER_SECONDS = 5.0
"""Work expected to take longer than this gets a bar (work of unknown length always does)."""

OFF = ("0", "false", "no", "off")
ON = ("1", "true", "yes", "on")


def progress_enabled(expected_seconds: float | None = None, quiet: bool = False, stream: IO[str] | None = None) -> bool:
    """Whether a bar is shown on ``stream`` (default: stderr) for work expected to take ``expected_seconds``."""
    setting = os.environ.get("CT_PLUGIN_PROGRESS", "").strip().lower()
    if quiet or setting in OFF:
        return False
    if setting in ON:
        return True
    stream = stream or sys.__stderr__ or sys.stderr
    if not _is_terminal(stream):
        return False
    return expected_seconds is None or expected_seconds >= SHOW_AFTER_SECONDS


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # closed or replaced streams
        return False


def progress_bar(
    total: int, desc: str, *, expected_seconds: float | None = None, quiet: bool = False,
    unit: str = "it", file: IO[str] | None = None, initial: int = 0,
) -> Any:
    """A tqdm bar (elapsed, rate and ETA) on ``file`` (default: the real stderr), or a silent one.

    Pass ``file`` when the caller redirects ``sys.stderr`` (as the DiCE adapter does to silence DiCE).
    """
    stream = file or sys.__stderr__ or sys.stderr
    return tqdm(
        total=total, desc=desc, unit=unit, file=stream, leave=False, initial=initial,
        dynamic_ncols=True, disable=not progress_enabled(expected_seconds, quiet, stream),
    )
