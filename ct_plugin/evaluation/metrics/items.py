"""The metrics registry: :class:`MetricContext` and the built-in metric items over it.

Every metric is a plain function over tensors (:mod:`ct_plugin.evaluation.metrics.counterfactual`,
:mod:`~ct_plugin.evaluation.metrics.robustness`, :mod:`ct_plugin.evaluation.attribution`) and, here,
a registry item (kind ``metric``): ``factory(**options)`` returns a callable
``metric(context) -> float`` over a :class:`MetricContext`. The definitions are stated in
:mod:`ct_plugin.evaluation.metrics`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ct_plugin.errors import CTPluginError
from ct_plugin.evaluation.attribution import (
    METHODS,
    attribute,
    attribution_share,
    integrated_gradients,
    integrated_gradients_with_delta,
)
from ct_plugin.evaluation.metrics.counterfactual import (
    cost,
    feature_units,
    implausibility,
    ip_star,
    redundancy,
    validity,
)
from ct_plugin.evaluation.metrics.robustness import ATTACKS, robust_accuracy
from ct_plugin.plugins.registry import PluginItem
from ct_plugin.torch_utils import predict_classes

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
        return predict_classes(self.model, self.counterfactuals) == self.targets

    def need(self, *names: str) -> None:
        """Raise a clear error if a field a metric needs is missing."""
        for name in names:
            value = getattr(self, name)
            if value is None or (isinstance(value, dict) and not value):
                raise CTPluginError(f"this metric needs MetricContext.{name}, which is not set")


def ip_metric(ctx: MetricContext) -> float:
    """IP of the context's counterfactual set: the mean over rows of the distance to their target class's samples."""
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
    "ip": ip_metric,
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


def attribution_metric(
    method: str, columns_of: Callable[[MetricContext], list[int]], steps: int = 32
) -> Callable[[MetricContext], float]:
    """A ``metric(context) -> float``: share of ``method``'s attribution mass on the protected columns."""
    def metric(ctx: MetricContext) -> float:
        attributions = attribute(method, ctx.model, ctx.factuals, ctx.targets, ctx.baseline, steps)
        return attribution_share(attributions, columns_of(ctx))

    return metric


def convergence_delta_metric(steps: int = 32) -> Callable[[MetricContext], float]:
    """A ``metric(context) -> float``: mean absolute IG convergence delta at the factuals."""

    def metric(ctx: MetricContext) -> float:
        _, delta = integrated_gradients_with_delta(ctx.model, ctx.factuals, ctx.targets, ctx.baseline, steps)
        return float(delta.abs().mean()) if len(delta) else float("nan")

    return metric
