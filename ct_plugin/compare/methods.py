"""The methods ``ct-plugin compare`` trains side by side: each a registered strategy (and term weights),
with the grid that ``tune`` searches for it on a validation split.

Every method's grid has at most 9 configurations, the size of CT's default grid (tau x lambda_reg,
3 x 3), and ``tune`` trains each with its default 2 seeds: no method gets more tuning than CT. The
CT family (``ct``, ``ct_blockwise``, ``ct_flipped``, ``ct_no_adv``, ``ct_gradsup``, ``ct_blockwise_gradsup``,
``ct_recourse``) keeps CT's rescue stages (they vary CT's own weights); the peers (``cat``, ``counternet``,
``recourse``) have none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ct_plugin.errors import CTPluginError
from ct_plugin.tuning.axes import DEFAULT_GRID

TAUS = [0.5, 0.75, 0.9]
WEIGHTS = [0.1, 0.5, 1.0]


@dataclass(frozen=True)
class Method:
    """One row of the comparison.

    Attributes:
        name: the row's name (``--methods``).
        strategy: the registered training strategy.
        grid: ``tune``'s grid (axis -> values; at most 9 configurations).
        fixed: settings every configuration trains with; ``lambda_reg="table"`` takes Table C.1's value.
        rescue: whether ``tune`` may add its rescue stages (CT's own weights; the CT family only).
        searches: whether the method runs an in-training counterfactual search (maturity is judged).
        needs_desired: the method aims at the dataset's desired class (skipped on data without one).
        source: where the method comes from, for the report.
    """

    name: str
    strategy: str
    grid: Mapping[str, list[Any]]
    fixed: Mapping[str, Any] = field(default_factory=dict)
    rescue: bool = True
    searches: bool = True
    needs_desired: bool = False
    source: str = ""

    @property
    def configurations(self) -> int:
        """The number of grid points."""
        count = 1
        for values in self.grid.values():
            count *= len(values)
        return count

    def settings(self, table_c1: Mapping[str, Any]) -> dict[str, Any]:
        """The fixed settings with ``lambda_reg="table"`` resolved against the dataset's Table C.1 row."""
        return {k: (table_c1["lambda_reg"] if v == "table" else v) for k, v in self.fixed.items()}


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("ct", "ct", DEFAULT_GRID, source="counterfactual training (the paper; tau x lambda_reg as `tune`)"),
    Method("ct_blockwise", "ct_blockwise", DEFAULT_GRID, source="CT updated block-wise (CounterNet's order)"),
    Method("ct_flipped", "ct_flipped", DEFAULT_GRID,
           source="CT, adversarial term only on misclassified nascent examples (Freiesleben)"),
    Method("ct_no_adv", "energy", DEFAULT_GRID,
           source="CT without its adversarial term (strategy `energy`): how much of CT's cost comes from the margin "
                  "its adversarial training adds"),
    Method("ct_gradsup", "ct", {"tau": TAUS, "lambda_gradsup": WEIGHTS}, {"lambda_reg": "table"},
           source="CT + gradient supervision (Teney et al.); lambda_reg of Table C.1"),
    Method("ct_blockwise_gradsup", "ct_blockwise", {"tau": TAUS, "lambda_gradsup": WEIGHTS}, {"lambda_reg": "table"},
           source="block-wise CT + gradient supervision: the cheaper recourse of block-wise updates with the "
                  "point-wise plausibility of gradient supervision; lambda_reg of Table C.1"),
    Method("ct_recourse", "ct", {"tau": TAUS, "lambda_recourse": WEIGHTS}, {"lambda_reg": "table"},
           needs_desired=True, source="CT + the recourse loss (Ross et al.): actionable CT; lambda_reg of Table C.1"),
    Method("cat", "cat", {"tau": TAUS, "lambda_augment": [0.25, 0.5, 1.0]}, rescue=False,
           source="CAT (Luu & Inoue): pretrain, then fine-tune on counterfactuals of high-entropy rows"),
    Method("counternet", "counternet", {"lambda_cn_validity": [0.1, 0.2, 0.5], "lambda_cn_proximity": [0.05, 0.1, 0.2]},
           rescue=False, searches=False,
           source="CounterNet (Guo et al.): classifier and generator network trained together, block-wise"),
    Method("recourse", "recourse", {"epsilon": [0.1, 0.3, 0.5], "lambda_recourse": WEIGHTS}, rescue=False,
           searches=False, needs_desired=True,
           source="recourse-adversarial training (Ross et al.), first-order step, no search"),
)}
"""Every method the comparison knows, in the report's order (``ct`` first: the row the others face)."""
DEFAULT_METHODS = tuple(METHODS)


def resolve_methods(names: list[str] | None, command: str = "compare") -> list[Method]:
    """The methods named (default: all), ``ct`` always included; unknown names refused with the known ones.

    ``command``: the command named in the refusal (``compare``, ``tune --methods``).
    """
    if not names:
        return list(METHODS.values())
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise CTPluginError(f"unknown method(s) {unknown} for {command}; choose from {', '.join(METHODS)}")
    chosen = ["ct", *[n for n in dict.fromkeys(names) if n != "ct"]]
    return [METHODS[n] for n in chosen]
