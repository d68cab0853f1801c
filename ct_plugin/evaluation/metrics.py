"""Evaluation metrics of docs/method.md ("How the evaluation works"), as batched torch functions and registry items.

Every metric exists twice:

* as a plain function over tensors (``validity``, ``cost``, ``implausibility``, ``mmd2_unbiased``,
  ``redundancy``, ``robust_accuracy``, ``integrated_gradients``, ...), usable on any model and
  any counterfactual set;
* as a registry item (kind ``metric``): ``factory(**options)`` returns a callable
  ``metric(context) -> float`` over a :class:`MetricContext`.

Definitions (stated once, used everywhere):

* **validity**: share of counterfactuals whose predicted class (argmax) is the target.
* **cost**: L1 distance ``||x' - x||_1`` in encoded (standardised) units, averaged over the
  valid counterfactuals only (the paper's cost of "just valid" counterfactuals).
* **IP**: mean **Euclidean (L2)** distance from each counterfactual to the observed training
  samples of its target class, averaged over counterfactuals.
* **IP***: unbiased estimate of the squared MMD (Gretton et al. 2012) between the
  counterfactuals of a target class and the observed samples of that class, with the Gaussian
  kernel ``k(a, b) = exp(-||a - b||^2 / (2 sigma^2))``; ``sigma`` is the median heuristic: the
  median pairwise Euclidean distance among the target-class samples (so it depends on the data
  only and is the same for every model compared). With several target classes, the per-class
  estimates are averaged weighted by the number of counterfactuals of each class.
* **redundancy**: share of the changed features (one-hot groups count as one feature) that can
  be reset to the factual's value, one at a time, without losing validity; averaged over the
  counterfactuals that changed at least one feature.
* **robust accuracy**: accuracy on adversarial inputs from FGSM (one signed-gradient step of
  size epsilon) or PGD (10 steps of size epsilon/4 projected onto the L-inf ball, no random
  start); inputs are not clamped to the domain bounds.
* **protected attribution share**: integrated gradients (captum, midpoint Riemann sum, 32 steps,
  baseline = the training mean) of the target-class logit; the share of the absolute
  attribution mass that falls on the protected features, averaged over inputs. The other captum
  methods (saliency, input x gradient, DeepLift, GradientSHAP) are metrics ``protected_<method>``;
  ``ig_convergence_delta`` reports captum's completeness check of the IG sum.

The functions live by idea (all importable from here): the counterfactual-set metrics (validity,
cost, IP, IP*, redundancy) in :mod:`ct_plugin.evaluation.counterfactual_metrics`, the attacks
and robust accuracy in :mod:`ct_plugin.evaluation.robustness`; this module adds the attribution
shares, the :class:`MetricContext` and the registry items.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from ct_plugin.errors import CTPluginError
from ct_plugin.evaluation.counterfactual_metrics import (  # noqa: F401 - re-exported from their new modules
    _SELF_TERMS,
    _check_rows,
    _predict,
    _self_term,
    cost,
    feature_units,
    gaussian_kernel,
    implausibility,
    ip_star,
    kernel_self_term,
    l1_cost,
    median_bandwidth,
    mmd2_unbiased,
    redundancy,
    validity,
)
from ct_plugin.evaluation.robustness import (  # noqa: F401 - re-exported from their new modules
    ATTACKS,
    fgsm,
    pgd,
    robust_accuracy,
)
from ct_plugin.registry import PluginItem

# ----------------------------------------------------------------- attribution


def integrated_gradients(
    model: torch.nn.Module,
    x: torch.Tensor,
    targets: torch.Tensor,
    baseline: torch.Tensor | None = None,
    steps: int = 32,
    chunk_rows: int = 8192,
    *,
    return_delta: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Integrated gradients (Sundararajan et al. 2017) of the ``targets`` logit, shape (n, d), via captum.

    Midpoint Riemann sum over ``steps`` points on the straight line from ``baseline`` (zeros if
    None) to ``x``; the points of up to ``chunk_rows`` model inputs go through the model in one
    batch. With ``return_delta`` also captum's per-row convergence delta
    ``sum_j IG_j - (F(x) - F(baseline))``, shape (n,). See :mod:`ct_plugin.evaluation.attribution`.
    """
    from ct_plugin.evaluation.attribution import integrated_gradients_with_delta

    attributions, delta = integrated_gradients_with_delta(model, x, targets, baseline, steps, chunk_rows)
    return (attributions, delta) if return_delta else attributions


def attribution_share(attributions: torch.Tensor, columns: Sequence[int]) -> float:
    """Mean over rows of the share of absolute attribution mass on ``columns`` (rows with no mass skipped)."""
    mass = attributions.abs()
    total = mass.sum(dim=1)
    keep = total > 0
    if not bool(keep.any()):
        return float("nan")
    on = mass[:, list(columns)].sum(dim=1) if len(columns) else torch.zeros_like(total)
    return float((on[keep] / total[keep]).mean())


def row_shares(attributions: torch.Tensor, image_shape: tuple[int, int]) -> torch.Tensor:
    """Share of absolute attribution mass per image row, averaged over inputs (for digits)."""
    h, w = image_shape
    mass = attributions.abs().reshape(len(attributions), h, w).sum(dim=2)
    total = mass.sum(dim=1, keepdim=True)
    keep = total.squeeze(1) > 0
    return (mass[keep] / total[keep]).mean(dim=0)


# ----------------------------------------------------------------- the context


@dataclass
class MetricContext:
    """Everything a registered metric may need; metrics use the fields they need.

    Attributes:
        model: classifier mapping encoded features (n, d) to logits (n, K).
        factuals, targets, counterfactuals: the counterfactual set (n rows each).
        samples_of: observed (training) samples per class, ``{class: (m, d) tensor}``.
        steps: search steps per counterfactual (from ``SearchResult.steps``), if known.
        seconds: wall time of the search that produced the set, if known.
        X_eval, y_eval: labelled inputs for robust accuracy (e.g. the test split).
        protected_columns: encoded columns of the protected features.
        onehot_groups: encoded column groups of categorical features (one unit for redundancy).
        baseline: integrated-gradients baseline (default zeros).
        bandwidth_of: fixed MMD bandwidth per class (median heuristic on ``samples_of`` if absent).
    """

    model: torch.nn.Module
    factuals: torch.Tensor
    targets: torch.Tensor
    counterfactuals: torch.Tensor
    samples_of: dict[int, torch.Tensor] = field(default_factory=dict)
    steps: torch.Tensor | None = None
    seconds: float | None = None
    X_eval: torch.Tensor | None = None
    y_eval: torch.Tensor | None = None
    protected_columns: list[int] = field(default_factory=list)
    onehot_groups: list[list[int]] = field(default_factory=list)
    baseline: torch.Tensor | None = None
    bandwidth_of: dict[int, float] | None = None

    def valid_mask(self) -> torch.Tensor:
        """Rows whose counterfactual is predicted as the target."""
        return _predict(self.model, self.counterfactuals) == self.targets

    def need(self, *names: str) -> None:
        """Raise a clear error if a field a metric needs is missing."""
        for name in names:
            value = getattr(self, name)
            if value is None or (isinstance(value, dict) and not value):
                raise CTPluginError(f"this metric needs MetricContext.{name}, which is not set")


def _ip_metric(ctx: MetricContext) -> float:
    ctx.need("samples_of")
    per_row = torch.cat(
        [implausibility(ctx.counterfactuals[ctx.targets == c], ctx.samples_of[int(c)]) for c in ctx.targets.unique()]
    ) if len(ctx.targets) else torch.zeros(0)
    return float(per_row.mean()) if len(per_row) else float("nan")


def _steps_metric(ctx: MetricContext) -> float:
    ctx.need("steps")
    assert ctx.steps is not None
    return float(ctx.steps.float().mean())


def _seconds_metric(ctx: MetricContext) -> float:
    ctx.need("seconds")
    assert ctx.seconds is not None
    return float(ctx.seconds) / max(len(ctx.targets), 1)


def _robust_metric(attack: str, epsilon: float) -> Callable[[MetricContext], float]:
    def metric(ctx: MetricContext) -> float:
        ctx.need("X_eval", "y_eval")
        assert ctx.X_eval is not None and ctx.y_eval is not None
        return robust_accuracy(ctx.model, ctx.X_eval, ctx.y_eval, [epsilon], attack)[0]

    return metric


def _ig_metric(steps: int) -> Callable[[MetricContext], float]:
    def metric(ctx: MetricContext) -> float:
        attributions = integrated_gradients(ctx.model, ctx.factuals, ctx.targets, ctx.baseline, steps)
        return attribution_share(attributions, ctx.protected_columns)

    return metric


def _factory(fn: Callable[[MetricContext], float]) -> Callable[[], Callable[[MetricContext], float]]:
    def factory() -> Callable[[MetricContext], float]:
        return fn

    return factory


METRIC_FUNCTIONS: dict[str, Callable[[MetricContext], float]] = {
    "validity": lambda ctx: validity(ctx.model, ctx.counterfactuals, ctx.targets),
    "cost": lambda ctx: cost(ctx.factuals, ctx.counterfactuals, ctx.valid_mask()),
    "ip": _ip_metric,
    "ip_star": lambda ctx: ip_star(ctx.counterfactuals, ctx.targets, ctx.samples_of, ctx.bandwidth_of),
    "redundancy": lambda ctx: redundancy(
        ctx.model, ctx.factuals, ctx.counterfactuals, ctx.targets,
        feature_units(ctx.factuals.shape[1], ctx.onehot_groups),
    ),
    "mean_steps": _steps_metric,
    "seconds_per_cf": _seconds_metric,
}


def metric_items() -> list[PluginItem]:
    """Metric registry items of the built-in plugin (``factory(**options)`` -> ``metric(context) -> float``)."""
    descriptions = {
        "validity": "share of counterfactuals predicted as their target class",
        "cost": "mean L1 distance to the factual over valid counterfactuals",
        "ip": "IP: mean Euclidean distance to the observed target-class samples",
        "ip_star": "IP*: unbiased squared MMD to target-class samples (Gaussian kernel, median heuristic)",
        "redundancy": "share of changed features revertible without losing validity",
        "mean_steps": "mean counterfactual search steps",
        "seconds_per_cf": "search wall time per counterfactual",
    }
    items = [PluginItem(name, _factory(fn), descriptions[name]) for name, fn in METRIC_FUNCTIONS.items()]
    items += [
        PluginItem(
            f"{attack}_accuracy",
            lambda epsilon=0.1, _attack=attack: _robust_metric(_attack, float(epsilon)),
            f"accuracy on X_eval under {attack.upper()} at epsilon (option, default 0.1)",
        )
        for attack in ATTACKS
    ]
    items.append(
        PluginItem(
            "protected_attribution",
            lambda steps=32: _ig_metric(int(steps)),
            "share of integrated-gradient mass (target logit) on the protected features",
        )
    )
    return items + attribution_items()


def attribution_items() -> list[PluginItem]:
    """One metric per captum method (``protected_<method>``) plus the IG convergence delta."""
    from ct_plugin.evaluation.attribution import METHODS, attribution_metric, convergence_delta_metric

    items = [
        PluginItem(
            f"protected_{name}",
            lambda steps=32, _name=name: attribution_metric(_name, lambda ctx: ctx.protected_columns, int(steps)),
            f"share of captum {method.captum_class} mass (target logit) on the protected features",
        )
        for name, method in METHODS.items()
        if name != "integrated_gradients"  # registered above as protected_attribution
    ]
    items.append(
        PluginItem(
            "ig_convergence_delta",
            lambda steps=32: convergence_delta_metric(int(steps)),
            "mean |captum convergence delta| of integrated gradients at the factuals",
        )
    )
    return items
