"""``ct-plugin plugins``: every registered item and the plugin it came from."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ct_plugin.plugins.registry import KINDS, get_registry, plugin_sources

COMMANDS = ("plugins",)


def cmd_plugins(args: argparse.Namespace) -> int:
    registry = get_registry()
    if args.json:
        payload = {
            kind: [
                {
                    "name": i.name,
                    "plugin": i.plugin,
                    "available": i.available,
                    "reason": i.reason,
                    "description": i.description,
                }
                for i in registry.items(kind)
            ]
            for kind in KINDS
        }
        payload["plugins"] = [{"name": n, "source": s} for n, s in plugin_sources()]
        print(json.dumps(payload, indent=2))
        return 0
    print("plugins:")
    for name, source in plugin_sources():
        print(f"  {name:<12} {source}")
    plural = {"strategy": "strategies"}
    for kind in KINDS:
        print(f"\n{plural.get(kind, kind + 's')}:")
        for item in registry.items(kind):
            status = "" if item.available else f"  [unavailable: {item.reason}]"
            print(f"  {item.name:<28} ({item.plugin}) {item.description}{status}")
    return 0


def register(subparsers: Any, with_plugins: bool = True) -> None:
    """Add the ``plugins`` sub-command."""
    p = subparsers.add_parser("plugins", help="list registered generators, strategies, metrics, datasets, models")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_plugins)
