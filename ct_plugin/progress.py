"""Progress bars (with ETA) for long work: post-hoc DiCE/CARLA searches, benchmarks.

Long work shows a bar on the terminal; short work stays silent. ``CT_PLUGIN_PROGRESS=0``
silences every bar, ``CT_PLUGIN_PROGRESS=1`` shows them even for short work.
"""

from __future__ import annotations

import os
import sys
from typing import IO, Any

SHOW_AFTER_SECONDS = 5.0
"""Work expected to take longer than this gets a bar."""


def progress_enabled(expected_seconds: float | None = None, quiet: bool = False) -> bool:
    """Whether a bar is shown for work expected to take ``expected_seconds``."""
    setting = os.environ.get("CT_PLUGIN_PROGRESS", "").strip().lower()
    if quiet or setting in ("0", "false", "no", "off"):
        return False
    if setting in ("1", "true", "yes", "on"):
        return True
    return expected_seconds is None or expected_seconds >= SHOW_AFTER_SECONDS


def progress_bar(
    total: int, desc: str, *, expected_seconds: float | None = None, quiet: bool = False,
    unit: str = "it", file: IO[str] | None = None,
) -> Any:
    """A tqdm bar (elapsed, rate and ETA) on ``file`` (default: the real stderr), or a silent one.

    Pass ``file`` when the caller redirects ``sys.stderr`` (as the DiCE adapter does to silence DiCE).
    """
    from tqdm.auto import tqdm

    return tqdm(
        total=total, desc=desc, unit=unit, file=file or sys.__stderr__ or sys.stderr, leave=False,
        dynamic_ncols=True, disable=not progress_enabled(expected_seconds, quiet),
    )
