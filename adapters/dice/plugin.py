"""The DiCE adapter as a ct-plugin plugin.

Registers the generators ``dice-random``, ``dice-genetic``, ``dice-kdtree`` and ``dice-gradient``.

Loaded from the ``ct_plugin`` entry-point group (``dice = "ct_plugin.adapters.dice.plugin"``)
like every built-in. Importing this module never imports ``dice_ml``: availability is
checked with :func:`importlib.util.find_spec`, and the generator module imports dice-ml
only when a generator is fitted. Without dice-ml the four generators are still listed,
marked unavailable, with the install command as the reason.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

from ct_plugin.errors import MissingDependencyError
from ct_plugin.plugins.hookspecs import hookimpl
from ct_plugin.plugins.registry import PluginItem

INSTALL_COMMAND = "pip install 'ct-plugin[dice]'"

_DESCRIPTIONS = {
    "random": "DiCE random sampling (dice-ml); one query at a time, ~tens of ms per counterfactual",
    "genetic": "DiCE genetic algorithm (dice-ml); one query at a time, ~tens of ms per counterfactual",
    "kdtree": "DiCE KD-tree over training rows predicted as the target (dice-ml); rarely varies "
    "continuous features when others are immutable",
    "gradient": "DiCE gradient descent, PyTorch backend (dice-ml); one query at a time, ~0.1-1 s each",
}


def dice_status() -> tuple[bool, str]:
    """Whether dice-ml can be imported, and if not the reason (with the install command)."""
    if importlib.util.find_spec("dice_ml") is None:
        return False, str(MissingDependencyError("dice-ml", INSTALL_COMMAND))
    return True, ""


def _factory(method: str) -> Callable[..., Any]:
    def build(**options: Any) -> Any:
        from ct_plugin.adapters.dice.generator import DiceGenerator  # dice-ml: only when a generator is built

        return DiceGenerator(method, **options)

    build.__name__ = f"build_dice_{method}"
    build.__doc__ = f"Build a DiceGenerator for DiCE's {method!r} method (options: see DiceGenerator)."
    return build


def dice_items() -> list[PluginItem]:
    """The four DiCE generators, available or not."""
    available, reason = dice_status()
    return [
        PluginItem(
            name=f"dice-{method}",
            factory=_factory(method),
            description=description,
            available=available,
            reason=reason,
            extra={"host": "dice-ml", "provides_path": False, "install": INSTALL_COMMAND},
        )
        for method, description in _DESCRIPTIONS.items()
    ]


@hookimpl
def ct_plugin_generators() -> list[PluginItem]:
    """Register DiCE's methods as counterfactual generators."""
    return dice_items()
