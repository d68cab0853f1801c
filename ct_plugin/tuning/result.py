"""What :func:`ct_plugin.tune` returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ct_plugin.config import TrainConfig


@dataclass
class TuneResult:
    """What :func:`tune` returns.

    Attributes:
        dataset: the dataset's name.
        overrides: the best CT configuration's TrainConfig overrides (the grid axes' values; generator
            axes such as ``step_size`` inside ``generator_options``), whatever the recommendation.
        config: the TrainConfig ``chosen.json`` holds: the best CT configuration (strategy ``ct``, the
            training options, the overrides) when CT is recommended (or ``always_ct``), the vanilla
            baseline's when vanilla is; None when nothing is recommended (no ``chosen.json`` written).
        ct_config: the best CT configuration's complete TrainConfig (also when vanilla is recommended).
        recommendation: ``"ct"`` when a configuration passes the rule and lowers validation IP
            significantly (the protocol's interval), ``"vanilla"`` otherwise, ``"none"`` when the
            vanilla baseline could not be measured (e.g. too few epochs; ``message`` names the cause)
            (see :mod:`ct_plugin.tuning.selection`).
        passed: whether the chosen configuration passes the selection rule.
        fallback: True when none passed and the least-violating one was taken (see ``message``).
        message: the outcome in one line.
        table: one row per configuration: axes, every criterion, ``pass``, ``chosen``, ``reasons``.
        reference: the vanilla baseline's validation figures (accuracy, validity, ip).
        paths: ``config`` (chosen.json; absent when nothing is recommended), ``csv``, ``markdown``,
            ``figure``, ``validation_spec``, ``cells``.
        seconds: wall time of this call (training, evaluation and writing).
        warnings: caveats of the judgement, e.g. a validation split too small for the rule's accuracy
            tolerance (also in ``tune.md`` and ``chosen.json``'s ``tune.warnings``).
    """

    dataset: str
    overrides: dict[str, Any]
    config: TrainConfig | None
    ct_config: TrainConfig
    recommendation: str
    passed: bool
    fallback: bool
    message: str
    table: pd.DataFrame
    reference: dict[str, float]
    paths: dict[str, Path]
    seconds: float
    warnings: list[str] = field(default_factory=list)

    #: the validation figures :meth:`chosen_figures` reads off the chosen configuration's row
    FIGURES = ("ip_reduction_pct", "ip_star_reduction_pct", "cost_reduction_pct", "validity", "vanilla_validity",
               "accuracy", "vanilla_accuracy")

    def chosen_figures(self) -> dict[str, float]:
        """The chosen configuration's validation figures (IP, IP* and cost reductions in %, validity, accuracy,
        and vanilla's), those the table has."""
        row = self.table[self.table.chosen].iloc[0]
        return {k: float(row[k]) for k in self.FIGURES if k in row.index}
