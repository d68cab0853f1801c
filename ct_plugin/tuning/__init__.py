"""Per-table tuning of counterfactual training (``ct-plugin tune``, :func:`ct_plugin.tune`).

The package is ``tuning`` rather than ``tune`` so that ``ct_plugin.tune`` can be the function.
"""

from ct_plugin.tuning.run import TuneResult, tune
from ct_plugin.tuning.selection import SelectionRule

__all__ = ["SelectionRule", "TuneResult", "tune"]
