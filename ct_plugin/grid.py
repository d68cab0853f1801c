"""Experiment grids (filled in by the scale work)."""

from __future__ import annotations


def register_commands(subparsers) -> None:
    """Add the ``grid`` sub-command to the ``ct-plugin`` parser."""
