"""Exceptions raised by ct-plugin.

Every error a user can cause (bad input, unknown names, impossible settings) is a
:class:`CTPluginError`, so the CLI can print its message without a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class CTPluginError(ValueError):
    """A problem with the user's input or environment, with a message that names the culprit."""


class UnknownNameError(CTPluginError, KeyError):
    """A dataset, model, strategy, generator or metric name that nobody registered."""

    def __init__(self, kind: str, name: str, available: Iterable[str]):
        self.kind = kind
        self.name = name
        self.available = sorted(available)
        listing = ", ".join(self.available) if self.available else "(none registered)"
        words = kind.replace("_", " ")
        plural = "strategies" if kind == "strategy" else words + "s"
        super().__init__(f"unknown {words} {name!r}; available {plural}: {listing}")

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.args[0]


class MissingDependencyError(CTPluginError, ImportError):
    """An optional host library (CARLA, dice-ml, Ray, ...) is needed but not installed."""

    def __init__(self, what: str, install: str):
        self.install = install
        super().__init__(f"{what} is not installed; install it with: {install}")


class RunDirectoryError(CTPluginError):
    """A run directory is incomplete, inconsistent or unsafe to load."""


class TrainingDivergedError(CTPluginError):
    """Training stopped because the weights or the loss went non-finite (or too many updates were skipped).

    Attributes:
        epoch: 1-based epoch in which the divergence was detected.
        term: the loss term (or ``weights``) that went non-finite first.
        suspect: the setting most likely at fault (e.g. ``lr``).
        checkpoint: the last good checkpoint left on disk, if the run has a directory.
    """

    def __init__(self, message: str, epoch: int, term: str, suspect: str, checkpoint: str | None = None):
        self.epoch, self.term, self.suspect, self.checkpoint = epoch, term, suspect, checkpoint
        super().__init__(message)


class CheckpointError(RunDirectoryError):
    """A checkpoint is truncated or corrupted; ``previous`` names an older intact one, if any."""

    def __init__(self, message: str, previous: str | None = None):
        self.previous = previous
        super().__init__(message)


class RunLockedError(RunDirectoryError):
    """Another process is training into the same run directory."""


class InvalidSettingError(CTPluginError):
    """A setting with a value of the wrong type or outside its range.

    Attributes:
        setting: the setting's name as the user wrote it (``tau``, ``generator option clip_grad``).
        value: the rejected value.
        allowed: what would have been accepted, in words.
    """

    def __init__(self, setting: str, value: Any, allowed: str, where: str = ""):
        self.setting, self.value, self.allowed = setting, value, allowed
        prefix = f"{where}: " if where else ""
        super().__init__(f"{prefix}{setting} must be {allowed}, got {show_value(value)}")


def show_value(value: Any) -> str:
    """``repr(value)``, shortened to 80 characters for an error message."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
