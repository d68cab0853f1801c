"""CLI sub-commands of the evaluation (filled in by the evaluation work)."""

from __future__ import annotations


def register_commands(subparsers) -> None:
    """Add the evaluation sub-commands to the ``ct-plugin`` parser."""
