"""The tuning grid: which settings can be tuned, their allowed ranges, and the fast evaluation protocol."""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ct_plugin.errors import CTPluginError
from ct_plugin.evaluation.protocol import ProtocolConfig

#: the paper's grid (METHOD.md section 4)
DEFAULT_GRID: dict[str, list[Any]] = {"tau": [0.5, 0.75, 0.9], "lambda_reg": [0.1, 0.25, 0.5]}
#: axes that are options of the in-training generator (``generator_options``), not TrainConfig fields
GENERATOR_AXES = frozenset({"step_size", "lambda_energy", "lambda_cost"})


def _real(check: Callable[[float], bool], text: str) -> tuple[Callable[[Any], bool], str]:
    def ok(value: Any) -> bool:
        return (isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
                and check(float(value)))
    return ok, text


def _count() -> tuple[Callable[[Any], bool], str]:
    return (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1), "a positive integer"


#: axis -> (test, description of the allowed values)
AXES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "tau": _real(lambda v: 0.0 < v <= 1.0, "a number in (0, 1]"),
    "lambda_reg": _real(lambda v: v >= 0.0, "a non-negative number"),
    "lambda_div": _real(lambda v: v >= 0.0, "a non-negative number"),
    "lambda_adv": _real(lambda v: v >= 0.0, "a non-negative number"),
    "epsilon": _real(lambda v: v >= 0.0, "a non-negative number"),
    "burnin": _real(lambda v: 0.0 <= v < 1.0, "a fraction in [0, 1)"),
    "nce": _count(),
    "max_steps": _count(),
    "step_size": _real(lambda v: v > 0.0, "a positive number"),
    "lambda_energy": _real(lambda v: v >= 0.0, "a non-negative number"),
    "lambda_cost": _real(lambda v: v >= 0.0, "a non-negative number"),
}


def validate_grid(grid: Mapping[str, Sequence[Any]] | None) -> dict[str, list[Any]]:
    """Check a tuning grid (axis -> values); return it as a dict of lists (default: :data:`DEFAULT_GRID`).

    Raises:
        CTPluginError: an unknown axis, an empty or repeated list, or a value out of range
            (e.g. tau outside (0, 1], a negative lambda_reg, a non-integer nce).
    """
    if grid is None:
        return {k: list(v) for k, v in DEFAULT_GRID.items()}
    if not isinstance(grid, Mapping) or not grid:
        raise CTPluginError(f"the tuning grid must be a non-empty mapping axis -> values, got {grid!r}")
    checked: dict[str, list[Any]] = {}
    for axis, values in grid.items():
        if axis not in AXES:
            raise CTPluginError(f"unknown tuning axis {axis!r}; valid axes: {', '.join(sorted(AXES))}")
        values = list(values) if isinstance(values, list | tuple) else [values]
        if not values:
            raise CTPluginError(f"tuning axis {axis} has no values")
        test, allowed = AXES[axis]
        bad = [v for v in values if not test(v)]
        if bad:
            raise CTPluginError(f"tuning axis {axis}: value(s) {bad} out of range; each must be {allowed}")
        if len(set(values)) < len(values):
            raise CTPluginError(f"tuning axis {axis} repeats values: {values}")
        checked[axis] = values
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


# ---------------------------------------------------------------- evaluation protocol
#: the fast validation protocol of tuning: the paper's five test-time energies with 4 rounds of 100
#: factuals each (20 searches, a fifth of the final evaluation's 100 rounds x 5 energies). A single
#: energy misjudges validity: Credit's lambda_reg 0.01 kept 82% validity at lambda_energy 1 but 24% at
#: 10. Robustness and integrated gradients (computed by ``evaluate_runs`` but not used to choose)
#: reduced to a minimum, and no search paths drawn
TUNE_PROTOCOL: dict[str, Any] = {
    "protocol": "paper", "rounds": 4, "n_factuals": 100, "lambda_energies": (0.1, 0.5, 1.0, 5.0, 10.0),
    "epsilons": (0.0,),
    "attack_rows": 1, "ig_rows": 2, "ig_steps": 2, "ig_rounds": 1, "path_rows": 0,
}


def protocol_config(options: Mapping[str, Any] | None = None) -> ProtocolConfig:
    """The ``ProtocolConfig`` of tuning: :data:`TUNE_PROTOCOL` updated by ``options``.

    Keys of :data:`TUNE_PROTOCOL` that this version's ``ProtocolConfig`` lacks (e.g. ``protocol``
    before the paper protocol lands) are dropped; unknown keys given in ``options`` are an error.
    """
    fields = {f.name for f in dataclasses.fields(ProtocolConfig)}
    options = dict(options or {})
    unknown = sorted(set(options) - fields)
    if unknown:
        raise CTPluginError(f"unknown evaluation protocol option(s) {unknown}; valid: {', '.join(sorted(fields))}")
    merged = {k: v for k, v in {**TUNE_PROTOCOL, **options}.items() if k in fields}
    for key in ("lambda_energies", "epsilons"):
        if key in merged and isinstance(merged[key], list | tuple):
            merged[key] = tuple(merged[key])
    return ProtocolConfig(**merged).validate()
