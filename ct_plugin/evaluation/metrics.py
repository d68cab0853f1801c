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
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ct_plugin.errors import CTPluginError
from ct_plugin.registry import PluginItem
from ct_plugin.torch_utils import frozen

# ------------------------------------------------------------------ helpers


def _check_rows(name: str, a: torch.Tensor, b: torch.Tensor) -> None:
    if a.ndim != 2 or b.ndim != 2 or a.shape != b.shape:
        raise CTPluginError(
            f"{name}: counterfactuals and factuals must be 2-D tensors of the same shape, "
            f"got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def _predict(model: torch.nn.Module, x: torch.Tensor, chunk: int = 65536) -> torch.Tensor:
    with frozen(model), torch.no_grad():
        return torch.cat([model(part).argmax(dim=1) for part in torch.split(x, chunk)]) if len(x) else (
            torch.zeros(0, dtype=torch.long, device=x.device)
        )


# ------------------------------------------------------------ counterfactuals


def validity(model: torch.nn.Module, counterfactuals: torch.Tensor, targets: torch.Tensor) -> float:
    """Share of counterfactuals whose predicted class is the target (nan for an empty set)."""
    if len(counterfactuals) != len(targets):
        raise CTPluginError(f"validity: {len(counterfactuals)} counterfactuals but {len(targets)} targets")
    if len(targets) == 0:
        return float("nan")
    return float((_predict(model, counterfactuals) == targets).float().mean())


def l1_cost(factuals: torch.Tensor, counterfactuals: torch.Tensor) -> torch.Tensor:
    """Per-row L1 distance ``||x' - x||_1``."""
    _check_rows("cost", counterfactuals, factuals)
    return (counterfactuals - factuals).abs().sum(dim=1)


def cost(factuals: torch.Tensor, counterfactuals: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """Mean L1 cost over the rows selected by ``mask`` (all rows if None; nan if none selected)."""
    per_row = l1_cost(factuals, counterfactuals)
    if mask is not None:
        per_row = per_row[mask]
    return float(per_row.mean()) if len(per_row) else float("nan")


def implausibility(counterfactuals: torch.Tensor, samples: torch.Tensor) -> torch.Tensor:
    """Per-row IP: mean Euclidean distance from each counterfactual to every row of ``samples``."""
    if counterfactuals.ndim != 2 or samples.ndim != 2 or counterfactuals.shape[1] != samples.shape[1]:
        raise CTPluginError(
            f"implausibility: shapes {tuple(counterfactuals.shape)} and {tuple(samples.shape)} do not match"
        )
    if len(samples) == 0:
        raise CTPluginError("implausibility: the set of target-class samples is empty")
    out = [torch.cdist(part, samples).mean(dim=1) for part in torch.split(counterfactuals, 1024)]
    return torch.cat(out) if out else counterfactuals.new_zeros(0)


def median_bandwidth(samples: torch.Tensor, max_rows: int = 2000) -> float:
    """Median heuristic: the median pairwise Euclidean distance among (at most ``max_rows`` of) ``samples``."""
    x = samples[:max_rows]
    if len(x) < 2:
        raise CTPluginError("median_bandwidth needs at least two samples")
    d = torch.cdist(x, x)
    i, j = torch.triu_indices(len(x), len(x), offset=1)
    sigma = float(d[i, j].median())
    return sigma if sigma > 0 else 1.0


def gaussian_kernel(a: torch.Tensor, b: torch.Tensor, sigma: float) -> torch.Tensor:
    """``exp(-||a_i - b_j||^2 / (2 sigma^2))`` for all pairs."""
    return torch.exp(-torch.cdist(a, b).pow(2) / (2.0 * sigma**2))


def kernel_self_term(y: torch.Tensor, sigma: float) -> float:
    """``sum_{i != j} k(y_i, y_j) / (n (n-1))``: the part of the unbiased MMD^2 that depends on ``y`` only."""
    n = len(y)
    if n < 2:
        raise CTPluginError(f"kernel_self_term needs at least two rows, got {n}")
    kyy = gaussian_kernel(y, y, sigma)
    return float((kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1)))


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor, sigma: float, term_y: float | None = None) -> float:
    """Unbiased estimate of the squared MMD between samples ``x`` (m rows) and ``y`` (n rows).

    ``MMD^2_u = sum_{i != j} k(x_i, x_j) / (m (m-1)) + sum_{i != j} k(y_i, y_j) / (n (n-1))
    - 2 sum_{i, j} k(x_i, y_j) / (m n)``, Gaussian kernel of bandwidth ``sigma``. ``term_y`` is the
    second sum (:func:`kernel_self_term`) when the caller compares many sets with the same ``y``.
    """
    m, n = len(x), len(y)
    if m < 2 or n < 2:
        raise CTPluginError(f"mmd2_unbiased needs at least two rows in each set, got {m} and {n}")
    kxx = gaussian_kernel(x, x, sigma)
    kxy = gaussian_kernel(x, y, sigma)
    term_x = (kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
    if term_y is None:
        term_y = kernel_self_term(y, sigma)
    return float(term_x + term_y - 2.0 * kxy.mean())


_SELF_TERMS: dict[tuple[int, int, float], tuple[torch.Tensor, float]] = {}


def _self_term(samples: torch.Tensor, sigma: float) -> float:
    """:func:`kernel_self_term`, remembered for the sample sets an evaluation compares against again and again."""
    key = (id(samples), samples._version, sigma)
    hit = _SELF_TERMS.get(key)
    if hit is not None and hit[0] is samples:
        return hit[1]
    if len(_SELF_TERMS) > 64:
        _SELF_TERMS.clear()
    value = kernel_self_term(samples, sigma)
    _SELF_TERMS[key] = (samples, value)
    return value


def ip_star(
    counterfactuals: torch.Tensor,
    targets: torch.Tensor,
    samples_of: dict[int, torch.Tensor],
    bandwidth_of: dict[int, float] | None = None,
) -> float:
    """IP*: per-target-class unbiased MMD^2, averaged weighted by the counterfactuals per class.

    Classes with fewer than two counterfactuals are skipped (the unbiased estimate needs two);
    nan when no class qualifies.
    """
    total, weight = 0.0, 0
    for cls in torch.unique(targets).tolist():
        rows = counterfactuals[targets == cls]
        if len(rows) < 2:
            continue
        samples = samples_of[int(cls)]
        sigma = (bandwidth_of or {}).get(int(cls)) or median_bandwidth(samples)
        total += len(rows) * mmd2_unbiased(rows, samples, sigma, _self_term(samples, sigma))
        weight += len(rows)
    return total / weight if weight else float("nan")


def feature_units(n_features: int, onehot_groups: Sequence[Sequence[int]] = ()) -> torch.Tensor:
    """(n_units, n_features) 0/1 matrix: one unit per continuous column, one per one-hot group."""
    grouped = {int(c) for g in onehot_groups for c in g}
    units = [[c] for c in range(n_features) if c not in grouped] + [[int(c) for c in g] for g in onehot_groups]
    matrix = torch.zeros(len(units), n_features)
    for u, columns in enumerate(units):
        matrix[u, columns] = 1.0
    return matrix


def redundancy(
    model: torch.nn.Module,
    factuals: torch.Tensor,
    counterfactuals: torch.Tensor,
    targets: torch.Tensor,
    units: torch.Tensor | None = None,
    atol: float = 1e-6,
) -> float:
    """Share of changed features that could be reverted, one at a time, without losing validity.

    Only counterfactuals that are valid are considered (an invalid one has nothing to lose);
    nan when no valid counterfactual changed any feature.
    """
    _check_rows("redundancy", counterfactuals, factuals)
    d = factuals.shape[1]
    if units is None:
        units = feature_units(d)
    units = units.to(factuals)
    valid = _predict(model, counterfactuals) == targets
    changed_col = (counterfactuals - factuals).abs() > atol  # (n, d)
    changed = (changed_col.float() @ units.T) > 0  # (n, U)
    keep = valid & changed.any(dim=1)
    if not bool(keep.any()):
        return float("nan")
    f, c, t, ch = factuals[keep], counterfactuals[keep], targets[keep], changed[keep]
    m, n_units = ch.shape
    # (m, U, d): counterfactual with unit u reset to the factual
    u = units[None]
    reverted = c[:, None, :] * (1 - u) + f[:, None, :] * u
    still = _predict(model, reverted.reshape(m * n_units, d)).reshape(m, n_units) == t[:, None]
    share = (still & ch).sum(dim=1).float() / ch.sum(dim=1).float()
    return float(share.mean())


# ------------------------------------------------------------------ robustness


def fgsm(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, epsilon: float) -> torch.Tensor:
    """FGSM (Goodfellow et al. 2015): ``x + epsilon * sign(grad_x CE(M(x), y))``."""
    if epsilon < 0:
        raise CTPluginError(f"epsilon must be >= 0, got {epsilon}")
    if epsilon == 0:
        return x.detach().clone()
    with frozen(model):
        x_req = x.detach().clone().requires_grad_(True)
        loss = F.cross_entropy(model(x_req), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x_req)
    return (x.detach() + epsilon * grad.sign()).detach()


def pgd(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, epsilon: float, steps: int = 10,
    step_size: float | None = None, random_start: bool = False, seed: int = 0,
) -> torch.Tensor:
    """PGD (Madry et al. 2018) in the L-inf ball; step size ``epsilon / 4`` by default.

    ``random_start`` starts from a uniform draw in the ball (seeded by ``seed``), as the paper's
    evaluation does (40 steps of 0.01).
    """
    if epsilon < 0:
        raise CTPluginError(f"epsilon must be >= 0, got {epsilon}")
    if epsilon == 0 or steps <= 0:
        return x.detach().clone()
    alpha = epsilon / 4 if step_size is None else step_size
    x0 = x.detach()
    adv = x0.clone()
    if random_start:
        gen = torch.Generator().manual_seed(seed)
        adv = x0 + (torch.rand(x0.shape, generator=gen) * 2 - 1).to(x0) * epsilon
    with frozen(model):
        for _ in range(steps):
            adv.requires_grad_(True)
            loss = F.cross_entropy(model(adv), y, reduction="sum")
            (grad,) = torch.autograd.grad(loss, adv)
            adv = adv.detach() + alpha * grad.sign()
            adv = x0 + (adv - x0).clamp(-epsilon, epsilon)
    return adv.detach()


ATTACKS: dict[str, Callable[..., torch.Tensor]] = {"fgsm": fgsm, "pgd": pgd}


def robust_accuracy(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, epsilons: Sequence[float], attack: str = "fgsm",
    **options: object,
) -> list[float]:
    """Accuracy under ``attack`` ("fgsm" or "pgd") for every epsilon of the grid (``options`` go to the attack)."""
    if attack not in ATTACKS:
        raise CTPluginError(f"unknown attack {attack!r}; choose from {', '.join(ATTACKS)}")
    if len(x) != len(y) or len(x) == 0:
        raise CTPluginError(f"robust_accuracy needs matching, non-empty x and y; got {len(x)} and {len(y)} rows")
    out = []
    for eps in epsilons:
        adv = ATTACKS[attack](model, x, y, float(eps), **options)
        out.append(float((_predict(model, adv) == y).float().mean()))
    return out


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
