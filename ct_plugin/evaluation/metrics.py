"""Evaluation metrics (filled in by the evaluation work)."""

from __future__ import annotations

from ct_plugin.registry import PluginItem


def metric_items() -> list[PluginItem]:
    """Metric registry items of the built-in plugin."""
    return []
