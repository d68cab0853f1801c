"""Test-time defaults of ``explain``: the search that gives people believable recourse.

Chosen on validation rows by ``benchmarks/recourse_defaults.py`` (docs/recourse_defaults.md gives
the evidence and the rule). A CT model's gradients are large and point at the corners of the
domain, so an unclipped step of ECCCo's training settings jumps there in one move. The default
search instead takes normalised, sparse steps: each moves the feature that buys the most by 0.05
standard deviations (and any feature pulled at least three quarters as hard, proportionally), never
a one-hot level by a fraction, keeps every feature inside the range the training rows show
(``explain(within_observed=...)``) and stops as soon as p(target) reaches 0.6. Recourse so found
stays inside the data, changes few features and costs less than the reference's ECCCo search, for
CT and vanilla models alike. The paper protocol keeps the paper's settings; these serve ``explain``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

RECOURSE_GENERATOR = "generic"
"""The generator ``explain`` uses unless told otherwise."""

RECOURSE_TAU = 0.6
"""Stop a person's search once p(target) reaches this (validity counts p >= 0.5 / the argmax)."""

RECOURSE_MAX_STEPS = 300
"""Search steps at most (each moves a feature by at most ``step_size`` sd: 15 sd in all)."""

RECOURSE_OPTIONS: dict[str, dict[str, Any]] = {
    "generic": {"step_size": 0.05, "normalise_grad": True, "sparse_steps": 0.75, "onehot_steps": "projected",
                "lambda_cost": 0.0},
    "eccco": {"preset": "reference", "step_size": 0.05, "normalise_grad": True},
}
"""Generator options ``explain`` uses for the built-in gradient searches (explicit options win)."""


@dataclass(frozen=True)
class SearchSettings:
    """How one generator searches in ``explain``: its name, options, stopping probability and steps."""

    generator: str
    options: dict[str, Any] = field(default_factory=dict)
    tau: float = RECOURSE_TAU
    max_steps: int = RECOURSE_MAX_STEPS


def search_settings(
    generator: str,
    options: dict[str, Any] | None = None,
    tau: float | None = None,
    max_steps: int | None = None,
    recourse_defaults: bool = True,
) -> SearchSettings:
    """The settings of ``generator``: the recourse defaults, overridden by what the user gave.

    ``recourse_defaults=False`` leaves the generator's own defaults (those of training and the
    paper protocol) under the user's options; ``tau`` and ``max_steps`` still default to the
    recourse values.
    """
    base = RECOURSE_OPTIONS.get(generator, {}) if recourse_defaults else {}
    given = dict(options or {})
    if "preset" in given:  # a preset the user names brings its own step and one-hot handling
        base = {key: value for key, value in base.items()
                if key not in ("preset", "step_size", "onehot_steps", "energy_reg", "energy_decay")}
    return SearchSettings(
        generator, {**base, **given}, RECOURSE_TAU if tau is None else float(tau),
        RECOURSE_MAX_STEPS if max_steps is None else int(max_steps),
    )
