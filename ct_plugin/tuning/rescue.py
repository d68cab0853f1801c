"""tune's rescue stages: what to train more while no configuration passes the selection rule.

Stage 2 weakens the divergence and adversarial weights at the least-violating configurations
(:func:`weaker_terms_points`), stage 3 the logit ridge (:func:`rescue_points`);
:func:`rescue_stages` lists them in the order :func:`ct_plugin.tuning.tune` tries them.

**Why the ridge comes last.** Both rescues restore validity and accuracy, but a weaker ridge makes
recourse costlier. On the validation splits of the reference-data reproduction (`tune.csv`'s
``cost_reduction_pct``, the protected search's cost against vanilla, mean per stage), the weak-ridge
configurations cost more than the grid's on five of six tables that needed a rescue (California
housing 38 -> 23%, Credit -9 -> -42%, GMSC 4 -> -37%, MNIST 31 -> 6%, UCI Adult -7 -> -23%;
overlapping the other way, 28 -> 43%), while the weaker-terms configurations stayed near the grid's
(35, -8, -4, 14, 1 and 20%). On GMSC's validation rows, at tau 0.5 with lambda_div 0.1 and lambda_adv
0.05, lambda_reg 0.1 passes the rule with a 4.8% IP reduction at +0.6% cost, lambda_reg 0.01 with 4.9%
at -15%: the earlier order (ridge first) took the latter.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from ct_plugin.config import TrainConfig
from ct_plugin.tuning.axes import grid_points

# ---------------------------------------------------------------- stage 3: a weaker logit ridge
#: when no configuration passes after the weaker terms either, the last stage tries lambda_reg at
#: these fractions of the grid's smallest value: within the grid, validation validity falls as
#: lambda_reg rises on the paper's tables (it let GMSC pass at 0.01). Below the grid the ridge alone
#: does not restore validity where the divergence costs it (Credit at lambda_div 0.5: 0.74-0.79 for
#: any lambda_reg in [0, 0.1]), which is what stage 2 weakens
RESCUE_FACTORS = (0.5, 0.1)


def rescue_points(grid: Mapping[str, Sequence[Any]], judged: Any) -> list[dict[str, Any]]:
    """Grid points of the weak-ridge rescue stage, stage 3 (empty when the grid has no positive ``lambda_reg`` axis).

    lambda_reg takes :data:`RESCUE_FACTORS` times the grid's smallest value (values the grid already
    has are skipped); tau keeps the grid's values at which some configuration met the maturity floor
    (``judged`` is the table of :func:`ct_plugin.tuning.selection.apply_rule`; all of them if none
    did), since lowering lambda_reg is no cure for searches that do not mature; every other axis keeps
    its values.
    """
    if "lambda_reg" not in grid or min(grid["lambda_reg"]) <= 0:
        return []
    smallest = min(grid["lambda_reg"])
    lambdas = sorted({round(smallest * f, 10) for f in RESCUE_FACTORS} - set(grid["lambda_reg"]), reverse=True)
    axes = {k: list(v) for k, v in grid.items()}
    axes["lambda_reg"] = lambdas
    if "tau" in grid and "maturity_ok" in getattr(judged, "columns", ()):
        matured = [t for t in grid["tau"] if judged[(judged.tau == t) & judged.maturity_ok.astype(bool)].shape[0]]
        axes["tau"] = matured or list(grid["tau"])
    return grid_points(axes) if lambdas else []


# ---------------------------------------------------------------- stage 2: weaker divergence and adversarial weights
#: when no configuration of the grid passes the selection rule, a second stage scales the divergence
#: and the adversarial weights down together to these fractions. Validation-split evidence (tune tables, seed 0): on
#: Credit the divergence costs the validity (0.79 at lambda_div 0.5, 0.96 at 0.02 with a small ridge;
#: lambda_adv 0 or 0.25 makes no difference), on California the divergence and the adversarial term
#: together cost the clean accuracy (2 points; 0.2 at lambda_div 0.02 and lambda_adv 0.05)
WEAKER_TERMS_FACTORS = (0.2, 0.04)
#: the weights the second stage scales
TERM_AXES = ("lambda_div", "lambda_adv")


def weaker_terms_points(judged: Any, axes: Sequence[str], base_values: Mapping[str, float],
                        n_best: int = 2) -> list[dict[str, Any]]:
    """Grid points of the second rescue stage: the ``n_best`` least-violating configurations so far with
    lambda_div and lambda_adv at :data:`WEAKER_TERMS_FACTORS` of their values.

    ``judged`` is the rule's table (:func:`ct_plugin.tuning.selection.apply_rule`) with ``axes`` as
    columns; ``base_values`` holds the training settings' lambda_div and lambda_adv (a row's own value
    counts when the grid tunes that weight). Empty when both weights are already 0.
    """
    if not len(judged) or "violation_pts" not in judged.columns:
        return []
    ranked = judged.assign(_ip=judged.ip_reduction_pct.fillna(-math.inf)).sort_values(
        ["violation_pts", "_ip"], ascending=[True, False], kind="stable")
    points: list[dict[str, Any]] = []
    for _, row in ranked.head(n_best).iterrows():
        point = {a: row[a].item() if hasattr(row[a], "item") else row[a] for a in axes if a not in TERM_AXES}
        weights = {a: float(row[a]) if a in axes and a in row and row[a] == row[a] else float(base_values[a])
                   for a in TERM_AXES}
        if not any(weights.values()):
            continue
        for factor in WEAKER_TERMS_FACTORS:
            candidate = {**point, **{a: round(w * factor, 10) for a, w in weights.items()}}
            if candidate not in points:
                points.append(candidate)
    return points


def rescue_stages(
    grid: Mapping[str, Sequence[Any]], base: TrainConfig
) -> list[tuple[str, Callable[[pd.DataFrame, list[str]], list[dict[str, Any]]]]]:
    """The rescue stages tried in turn while no configuration passes: (what changes, proposer)."""
    weights = {a: float(getattr(base, a)) for a in TERM_AXES}
    return [
        (f"weaker divergence and adversarial weights (x{' and x'.join(map(str, WEAKER_TERMS_FACTORS))}) at the "
         "two least-violating configurations", lambda judged, shown: weaker_terms_points(judged, shown, weights)),
        ("a weaker logit ridge (lambda_reg at 1/2 and 1/10 of the grid's smallest)",
         lambda judged, _: rescue_points(grid, judged)),
    ]


def fill_axes(table: pd.DataFrame, axes: Sequence[str], base: TrainConfig) -> pd.DataFrame:
    """Give rows of earlier stages the training setting of an axis a later stage added (not NaN)."""
    table = table.copy()
    for axis in axes:
        default = getattr(base, axis, None)
        if default is None and axis.startswith("lambda_"):  # a plugin term's weight
            default = base.term_weights.get(axis[len("lambda_"):], 0.0)
        if default is None and axis in base.generator_options:
            default = base.generator_options[axis]
        if axis in table.columns and default is not None:
            table[axis] = table[axis].fillna(default)
        elif default is not None:
            table[axis] = default
    return table
