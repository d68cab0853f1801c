"""Per-table tuning of counterfactual training (``ct-plugin tune``, :func:`ct_plugin.tune`).

The package is ``tuning`` rather than ``tune`` so that ``ct_plugin.tune`` can be the function.
Its names are imported on first use, so registering the ``tune`` command costs no torch import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

_LAZY = {"TuneResult": "ct_plugin.tuning.result", "tune": "ct_plugin.tuning.run",
         "SelectionRule": "ct_plugin.tuning.selection"}

if TYPE_CHECKING:  # pragma: no cover
    from ct_plugin.tuning.result import TuneResult
    from ct_plugin.tuning.run import tune
    from ct_plugin.tuning.selection import SelectionRule


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ct_plugin.tuning' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = ["SelectionRule", "TuneResult", "tune"]
