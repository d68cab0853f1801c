"""Metrics of a counterfactual set: validity, cost, IP, IP* (Gaussian-kernel MMD) and redundancy.

Plain batched torch functions over a model and tensors of factuals, targets and
counterfactuals; the definitions are stated in :mod:`ct_plugin.evaluation.metrics`, whose
registry items (:mod:`ct_plugin.evaluation.metrics.items`) wrap them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ct_plugin.errors import CTPluginError
from ct_plugin.torch_utils import frozen, predict_classes

# ------------------------------------------------------------------ helpers


def check_rows(name: str, a: torch.Tensor, b: torch.Tensor) -> None:
    if a.ndim != 2 or b.ndim != 2 or a.shape != b.shape:
        raise CTPluginError(
            f"{name}: counterfactuals and factuals must be 2-D tensors of the same shape, "
            f"got {tuple(a.shape)} and {tuple(b.shape)}"
        )


# ------------------------------------------------------------ counterfactuals


def validity(model: torch.nn.Module, counterfactuals: torch.Tensor, targets: torch.Tensor) -> float:
    """Share of counterfactuals whose predicted class is the target (nan for an empty set)."""
    if len(counterfactuals) != len(targets):
        raise CTPluginError(f"validity: {len(counterfactuals)} counterfactuals but {len(targets)} targets")
    if len(targets) == 0:
        return float("nan")
    return float((predict_classes(model, counterfactuals) == targets).float().mean())


def l1_cost(factuals: torch.Tensor, counterfactuals: torch.Tensor) -> torch.Tensor:
    """Per-row L1 distance ``||x' - x||_1``."""
    check_rows("cost", counterfactuals, factuals)
    return (counterfactuals - factuals).abs().sum(dim=1)


def mad_weights(X: torch.Tensor) -> torch.Tensor:
    """Per-feature weights ``1 / MAD`` of the rows ``X`` (median absolute deviation from the median).

    The recourse literature (Wachter et al. 2017; DiCE, CARLA) weighs a feature's change by the
    inverse of its MAD, so a change of one typical deviation costs 1 on every feature. A feature whose
    MAD is 0 (a one-hot column with a majority level, a constant) gets weight 1, as DiCE does.
    """
    if X.ndim != 2 or len(X) == 0:
        raise CTPluginError(f"mad_weights: X must be a non-empty (n, d) matrix, got shape {tuple(X.shape)}")
    median = X.median(dim=0).values
    mad = (X - median).abs().median(dim=0).values
    return torch.where(mad > 0, 1.0 / mad.clamp_min(1e-12), torch.ones_like(mad))


def cost(factuals: torch.Tensor, counterfactuals: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """Mean L1 cost over the rows selected by ``mask`` (all rows if None; nan if none selected)."""
    per_row = l1_cost(factuals, counterfactuals)
    if mask is not None:
        per_row = per_row[mask]
    return float(per_row.mean()) if len(per_row) else float("nan")


def implausibility(
    counterfactuals: torch.Tensor, samples: torch.Tensor, p: float = 2.0, name: str = "implausibility"
) -> torch.Tensor:
    """Per-row IP: mean L-``p`` distance (Euclidean by default) from each counterfactual to every row of
    ``samples``, in chunks of 1024 rows; ``name`` is the function named in the error messages."""
    if counterfactuals.ndim != 2 or samples.ndim != 2 or counterfactuals.shape[1] != samples.shape[1]:
        raise CTPluginError(
            f"{name}: shapes {tuple(counterfactuals.shape)} and {tuple(samples.shape)} do not match"
        )
    if len(samples) == 0:
        raise CTPluginError(f"{name}: the set of target-class samples is empty")
    out = [torch.cdist(part, samples, p=p).mean(dim=1) for part in torch.split(counterfactuals, 1024)]
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


SELF_TERMS_CACHE: dict[tuple[int, int, float], tuple[torch.Tensor, float]] = {}


def cached_self_term(samples: torch.Tensor, sigma: float) -> float:
    """:func:`kernel_self_term`, remembered for the sample sets an evaluation compares against again and again."""
    key = (id(samples), samples._version, sigma)
    hit = SELF_TERMS_CACHE.get(key)
    if hit is not None and hit[0] is samples:
        return hit[1]
    if len(SELF_TERMS_CACHE) > 64:
        SELF_TERMS_CACHE.clear()
    value = kernel_self_term(samples, sigma)
    SELF_TERMS_CACHE[key] = (samples, value)
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
        total += len(rows) * mmd2_unbiased(rows, samples, sigma, cached_self_term(samples, sigma))
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


REVERT_CHUNK_ELEMENTS = 1 << 24
"""Reverted rows are predicted in chunks of at most this many elements (rows x features, or rows x the first
layer's width; 64 MB of float32)."""


def _linear_first_layer(model: torch.nn.Module) -> tuple[torch.nn.Linear, torch.nn.Module] | None:
    """(the first layer, the rest) of a Sequential that opens with a Linear layer (the MLP), else None."""
    if isinstance(model, torch.nn.Sequential) and len(model) > 1 and isinstance(model[0], torch.nn.Linear):
        return model[0], model[1:]
    return None


def _still_valid(model: torch.nn.Module, f: torch.Tensor, c: torch.Tensor, t: torch.Tensor, units: torch.Tensor,
                 row_of: torch.Tensor, unit_of: torch.Tensor) -> torch.Tensor:
    """Whether counterfactual ``c[row]`` with unit ``unit`` reset to the factual keeps its target, per pair.

    Any model: the reverted row is built (one gathered copy, only the unit's columns written) and
    predicted. A model that opens with a Linear layer: reverting unit u of row r moves that layer's
    output by ``W[:, u] (f - c)[r, u]``, so the reverted rows' first-layer outputs are the
    counterfactual's plus that change and only the rest of the model runs per pair (on 784 pixels
    the first layer was most of the work); the same figure up to float rounding.
    """
    d = f.shape[1]
    width = units.sum(dim=1)
    column_of = units.argmax(dim=1)  # a one-column unit's column
    groups = [(u, units[u].nonzero().squeeze(1)) for u in (width > 1).nonzero().squeeze(1).tolist()]
    split = _linear_first_layer(model)
    still = torch.empty(len(row_of), dtype=torch.bool, device=f.device)
    with frozen(model), torch.no_grad():
        if split is not None:
            first, rest = split
            weight_of_column = first.weight.T  # (d, hidden)
            hidden, back = first(c), f - c  # the counterfactuals' first-layer outputs; the revert of each column
        chunk = max(1, REVERT_CHUNK_ELEMENTS // (d if split is None else first.out_features))
        for start in range(0, len(row_of), chunk):
            rows, unit = row_of[start:start + chunk], unit_of[start:start + chunk]
            single = (width[unit] == 1).nonzero().squeeze(1)
            columns = column_of[unit[single]]
            if split is not None:
                moved = hidden[rows]
                moved[single] += weight_of_column[columns] * back[rows[single], columns][:, None]
                for u, group_columns in groups:
                    at = (unit == u).nonzero().squeeze(1)
                    moved[at] += back[rows[at]][:, group_columns] @ weight_of_column[group_columns]
                predicted = rest(moved).argmax(dim=1)
            else:  # the counterfactual with unit u reset to the factual: one copy, then only u's columns written
                reverted = c[rows]
                reverted[single, columns] = f[rows[single], columns]
                for u, group_columns in groups:
                    at = (unit == u).nonzero()  # (k, 1): broadcasts against the group's columns
                    reverted[at, group_columns] = f[rows[at], group_columns]
                predicted = predict_classes(model, reverted)
            still[start:start + chunk] = predicted == t[rows]
    return still


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
    nan when no valid counterfactual changed any feature. Only the changed (row, unit) pairs are
    reverted and predicted, in chunks of :data:`REVERT_CHUNK_ELEMENTS` (see :func:`_still_valid`):
    on 784 pixels every (row, unit) pair at once was a rows x 784 x 784 tensor written four times
    (1 GB for 100 rows), most of an MNIST evaluation's time.
    """
    check_rows("redundancy", counterfactuals, factuals)
    d = factuals.shape[1]
    if units is None:
        units = feature_units(d)
    units = units.to(factuals)
    valid = predict_classes(model, counterfactuals) == targets
    changed_col = (counterfactuals - factuals).abs() > atol  # (n, d)
    changed = (changed_col.float() @ units.T) > 0  # (n, U)
    keep = valid & changed.any(dim=1)
    if not bool(keep.any()):
        return float("nan")
    f, c, t, ch = factuals[keep], counterfactuals[keep], targets[keep], changed[keep]
    row_of, unit_of = ch.nonzero(as_tuple=True)  # every changed (row, unit) pair
    still = _still_valid(model, f, c, t, units, row_of, unit_of)
    kept_per_row = torch.zeros(len(ch), device=ch.device).index_add_(0, row_of, still.float())
    share = kept_per_row / ch.sum(dim=1).float()
    return float(share.mean())
