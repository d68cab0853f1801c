"""Tuning over several training seeds: every configuration (and vanilla) trains once per seed.

A single training seed makes the rule's accuracy and validity checks a coin toss near their
thresholds: on a table of a few thousand rows two seeds of the same configuration differ by
about a point of validation accuracy, the size of the margin the rule allows. Each criterion is
therefore the mean over the seeds, each seed's CT run compared with the same seed's vanilla run.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ct_plugin.errors import CTPluginError

#: training seeds per configuration by default (the first is the ``seed`` training option)
DEFAULT_TUNE_SEEDS = 2


def check_seeds(seeds: object) -> int:
    """``seeds`` as a positive int, or one clear error."""
    if isinstance(seeds, bool) or not isinstance(seeds, int | np.integer) or seeds < 1:
        raise CTPluginError(f"seeds (training seeds per tuned configuration) must be an integer >= 1, got {seeds!r}")
    return int(seeds)


def seed_list(first: int, seeds: int) -> list[int]:
    """The training seeds of a tuning run: ``first``, ``first + 1``, ..."""
    return [first + i for i in range(check_seeds(seeds))]


def mean_figures(per_seed: Sequence[dict[str, float]]) -> dict[str, float]:
    """One configuration's evaluation figures over its seeds: means, and ``*_significant`` in every seed.

    ``<metric>_significant`` holds when the difference is significant in every seed *and* in the same
    direction in every seed (the signs of ``<metric>_reduction_pct`` agree), so that a significant
    mean reduction > 0 means each seed's CT run is significantly below its own vanilla run.
    """
    if not per_seed:
        raise CTPluginError("no evaluation figures to average")
    out: dict[str, float] = {}
    for key in per_seed[0]:
        values = [figures[key] for figures in per_seed]
        if key.endswith("_significant"):
            reductions = [figures.get(key[: -len("_significant")] + "_reduction_pct") for figures in per_seed]
            signs = {float(np.sign(r)) for r in reductions if r is not None and np.isfinite(r)}
            out[key] = bool(all(values)) and len(signs) <= 1
        else:
            out[key] = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
    return out


def mean_of(values: Sequence[float]) -> float:
    """The mean of the finite ``values`` (nan when none is)."""
    finite = [float(v) for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")
