"""``ct-plugin plugins``: every registered item and the plugin it came from."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ct_plugin.plugins.registry import KINDS, LossTerm, PluginItem, get_registry, plugin_sources

COMMANDS = ("plugins",)


def describe(item: PluginItem) -> dict[str, Any]:
    """An item as ``ct-plugin plugins --json`` shows it (a loss term with its weight setting and default)."""
    row: dict[str, Any] = {"name": item.name, "plugin": item.plugin, "available": item.available,
                           "reason": item.reason, "description": item.description}
    if isinstance(item, LossTerm):
        row.update(weight_setting=item.weight_setting, default_weight=item.default_weight,
                   uses_counterfactuals=item.uses_counterfactuals)
    return row


def cmd_plugins(args: argparse.Namespace) -> int:
    """``ct-plugin plugins``: every plugin, then every registered item by kind (loss terms with their weights)."""
    registry = get_registry()
    if args.json:
        payload: dict[str, Any] = {kind: [describe(i) for i in registry.items(kind)] for kind in KINDS}
        payload["plugins"] = [{"name": n, "source": s} for n, s in plugin_sources()]
        print(json.dumps(payload, indent=2))
        return 0
    print("plugins:")
    for name, source in plugin_sources():
        print(f"  {name:<12} {source}")
    for kind in KINDS:
        words = kind.replace("_", " ")
        print(f"\n{'strategies' if kind == 'strategy' else words + 's'}:")
        for item in registry.items(kind):
            status = "" if item.available else f"  [unavailable: {item.reason}]"
            weight = f" [{item.weight_setting} = {item.default_weight:g}]" if isinstance(item, LossTerm) else ""
            print(f"  {item.name:<28} ({item.plugin}) {item.description}{weight}{status}")
    return 0


def register(subparsers: Any, with_plugins: bool = True) -> None:
    """Add the ``plugins`` sub-command."""
    p = subparsers.add_parser("plugins", help="list registered generators, strategies, metrics, datasets, models")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_plugins)
