"""The tuning grid: which settings can be tuned (read from the settings table and the registered loss terms)
and their allowed ranges."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ct_plugin.config import TRAIN_SETTINGS
from ct_plugin.errors import CTPluginError
from ct_plugin.plugins.registry import LossTerm, get_registry
from ct_plugin.settings.table import Setting

#: the paper's grid (METHOD.md section 4)
DEFAULT_GRID: dict[str, list[Any]] = {"tau": [0.5, 0.75, 0.9], "lambda_reg": [0.1, 0.25, 0.5]}

GENERATOR_AXES: dict[str, Setting] = {
    "step_size": Setting("step_size", "float", "the generator's search step size", low=0.0, low_open=True,
                         allowed="a positive number"),
    "lambda_energy": Setting("lambda_energy", "float", "ECCCo's energy weight", low=0.0,
                             allowed="a non-negative number"),
    "lambda_cost": Setting("lambda_cost", "float", "the generator's L1 cost weight", low=0.0,
                           allowed="a non-negative number"),
}
"""Axes that are options of the in-training generator (``generator_options``), not TrainConfig fields."""

COUNT_AXES = ("nce", "max_steps")
"""Tunable counts that must be positive as axes (zero counterfactuals or steps would switch CT off)."""


def tuning_axes(terms: Sequence[LossTerm] | None = None) -> dict[str, Setting]:
    """Every axis ``tune`` accepts, with its range: the tunable training settings (the settings table),
    the generator axes, and ``lambda_<term>`` of every registered loss term (``terms``; default: the registry's)."""
    axes: dict[str, Setting] = {}
    for row in TRAIN_SETTINGS.where(tunable=True):
        if row.name in COUNT_AXES:
            row = dataclasses.replace(row, low=1, allowed="a positive integer")
        elif row.kind == "float" and row.low == 0 and not row.low_open and row.high is None:
            row = dataclasses.replace(row, allowed="a non-negative number")
        axes[row.name] = row
    axes.update(GENERATOR_AXES)
    axes["strategy"] = Setting("strategy", "name", "training strategy (the vanilla baseline is always trained)",
                               allowed="a registered strategy other than vanilla")
    for term in get_registry().loss_terms() if terms is None else terms:
        if term.weight_setting not in TRAIN_SETTINGS:  # a plugin's term (the built-ins' rows say whether they tune)
            axes[term.weight_setting] = Setting(term.weight_setting, "float", f"weight of the {term.name} term",
                                                low=0.0, allowed="a non-negative number")
    return axes


def validate_grid(grid: Mapping[str, Any] | None, terms: Sequence[LossTerm] | None = None) -> dict[str, list[Any]]:
    """Check a tuning grid (axis -> values); return it as a dict of lists (default: :data:`DEFAULT_GRID`).

    Values are coerced as every setting is (numeric strings, numpy scalars and arrays accepted).

    Raises:
        CTPluginError: an unknown axis, an empty or repeated list, or a value out of range
            (e.g. tau outside (0, 1], a negative lambda_reg, a non-integer nce).
    """
    if grid is None:
        return {k: list(v) for k, v in DEFAULT_GRID.items()}
    if not isinstance(grid, Mapping) or not grid:
        raise CTPluginError(f"the tuning grid must be a non-empty mapping axis -> values, got {grid!r}")
    axes = tuning_axes(terms)
    checked: dict[str, list[Any]] = {}
    for axis, values in grid.items():
        if axis not in axes:
            raise CTPluginError(f"unknown tuning axis {axis!r}; valid axes: {', '.join(sorted(axes))}")
        if isinstance(values, str | bytes) or not isinstance(values, Iterable):
            values = [values]
        values = list(values)
        if not values:
            raise CTPluginError(f"tuning axis {axis} has no values")
        row, coerced, bad = axes[axis], [], []
        for value in values:
            try:
                coerced.append(row.coerce(value.item() if hasattr(value, "item") else value))
            except CTPluginError:
                bad.append(value)
        if axis == "strategy":  # names: registered ones, and not the baseline every tune trains anyway
            registered = get_registry().names("strategy")
            bad += [name for name in coerced if name not in registered or name == "vanilla"]
            if bad:
                raise CTPluginError(f"tuning axis strategy: {bad} not allowed; choose from "
                                    f"{', '.join(n for n in registered if n != 'vanilla')} (vanilla is the baseline)")
        if bad:
            raise CTPluginError(f"tuning axis {axis}: value(s) {bad} out of range; each must be {row.words()}")
        if len(set(coerced)) < len(coerced):
            raise CTPluginError(f"tuning axis {axis} repeats values: {coerced}")
        checked[axis] = coerced
    return checked


def grid_points(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the axes' values, in a fixed order (first axis slowest)."""
    axes = list(grid)
    return [dict(zip(axes, values, strict=True)) for values in itertools.product(*(grid[a] for a in axes))]


def overrides_of(point: Mapping[str, Any], generator_options: Mapping[str, Any]) -> dict[str, Any]:
    """TrainConfig overrides of one grid point (generator axes go into ``generator_options``)."""
    overrides = {k: v for k, v in point.items() if k not in GENERATOR_AXES}
    options = {k: v for k, v in point.items() if k in GENERATOR_AXES}
    if options:
        overrides["generator_options"] = {**generator_options, **options}
    return overrides
