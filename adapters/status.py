"""One line per host-library adapter: what works, what is left out and why.

``python -m ct_plugin.adapters.status`` (the last step of ``make setup``) prints, e.g.::

    CARLA adapter (carla-recourse 0.0.5): 8 of 13 methods work: cchvae, clue, ...; left out: cem (needs ...)
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version

from ct_plugin.plugins.registry import get_registry

#: adapter label, the registry's ``host`` value, the distribution to report, the name prefix
ADAPTERS = (
    ("CARLA adapter", "carla", "carla-recourse", "carla-"),
    ("DiCE adapter", "dice-ml", "dice-ml", "dice-"),
)


def _installed(distribution: str) -> str | None:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def status_lines() -> list[str]:
    """The summary lines, one per adapter."""
    registry = get_registry()
    lines = []
    for label, host, distribution, prefix in ADAPTERS:
        items = [i for i in registry.items("generator") if i.extra.get("host") == host]
        found = _installed(distribution)
        if found is None:
            install = next((i.extra.get("install") for i in items if i.extra.get("install")), "")
            lines.append(f"{label}: {distribution} not installed, its {len(items)} generators are unavailable"
                         + (f" ({install})" if install else ""))
            continue
        works = [i.name.removeprefix(prefix) for i in items if i.available]
        left = [f"{i.name.removeprefix(prefix)} ({_short(i.reason)})" for i in items if not i.available]
        line = f"{label} ({distribution} {found}): {len(works)} of {len(items)} methods work: {', '.join(works)}"
        if left:
            line += "; left out: " + "; ".join(left)
        lines.append(line)
    return lines


def _short(reason: str) -> str:
    """The first clause of an unavailability reason, without the method's own name."""
    text = reason.split(". ")[0].split("; ")[0].rstrip(".")
    for word in ("CARLA's ", "DiCE's "):
        if text.startswith(word):
            text = text[len(word):].split(" ", 1)[-1]
    return text


def main() -> int:
    for line in status_lines():
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
