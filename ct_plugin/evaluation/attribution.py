"""Feature attributions through captum (integrated gradients, saliency, DeepLift, ...).

Every attribution is of the ``targets`` logit for each row of a batched (n, d) input; captum
does the work (``captum.attr``), this module only fixes the conventions the evaluation uses:

* **integrated gradients**: midpoint Riemann sum (captum's ``riemann_middle``) over ``steps``
  points on the straight line from ``baseline`` (zeros if None) to ``x``; all points of a chunk
  of rows go through the model in one batch (captum's ``internal_batch_size``). Captum's
  convergence delta, ``sum_j IG_j(x) - (F(x) - F(baseline))`` per row, measures how far the
  Riemann sum is from the completeness axiom.
* the other methods (:data:`METHODS`) use the same baseline where they take one.

captum is a core dependency (it needs nothing the core does not already install); it is
imported when an attribution is first computed, so ``import ct_plugin`` stays light.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ct_plugin.errors import CTPluginError, MissingDependencyError
from ct_plugin.torch_utils import frozen


@dataclass(frozen=True)
class AttributionMethod:
    """One captum attribution method as the evaluation uses it."""

    name: str
    captum_class: str
    description: str
    uses_baseline: bool = True
    uses_steps: bool = False


METHODS: dict[str, AttributionMethod] = {
    m.name: m
    for m in (
        AttributionMethod(
            "integrated_gradients", "IntegratedGradients",
            "integrated gradients (midpoint Riemann sum along the baseline-to-input line)", uses_steps=True,
        ),
        AttributionMethod("saliency", "Saliency", "absolute input gradient of the target logit", uses_baseline=False),
        AttributionMethod("input_x_gradient", "InputXGradient", "input times gradient", uses_baseline=False),
        AttributionMethod("deeplift", "DeepLift", "DeepLift (Rescale rule) against the baseline"),
        AttributionMethod(
            "gradient_shap", "GradientShap",
            "GradientSHAP: expected gradients around the baseline (seeded noise)", uses_steps=True,
        ),
    )
}


def _captum_attr() -> Any:
    try:
        import captum.attr
    except ImportError as exc:  # captum is a core dependency; a broken install still gets a clear message
        raise MissingDependencyError("captum (feature attributions)", "pip install 'captum>=0.8'") from exc
    return captum.attr


def summed_gradients(
    forward_fn: Callable[..., torch.Tensor],
    inputs: torch.Tensor | tuple[torch.Tensor, ...],
    target_ind: Any = None,
    additional_forward_args: Any = None,
) -> tuple[torch.Tensor, ...]:
    """Drop-in for captum's ``compute_gradients``: one backward pass of the summed target outputs.

    captum differentiates ``torch.unbind(outputs)``, one scalar per (row, step): on batched
    tabular inputs autograd's per-output overhead then dominates (15-80x slower than one summed
    backward pass at 100-1000 rows x 32 steps; ``python benchmarks/ig_speed.py``). The gradient
    of the sum is the same whenever each output depends on its own input row only, which holds
    for any classifier in eval mode (every attribution here runs under :func:`frozen`).
    """
    from captum._utils.common import _run_forward

    with torch.autograd.set_grad_enabled(True):
        outputs = _run_forward(forward_fn, inputs, target_ind, additional_forward_args)
        return torch.autograd.grad(outputs.sum(), inputs)


def _explainer(attr: Any, class_name: str, model: torch.nn.Module, fast: bool = True) -> Any:
    explainer = getattr(attr, class_name)(model)
    if fast and hasattr(explainer, "gradient_func"):
        explainer.gradient_func = summed_gradients
    return explainer


def _check_inputs(name: str, x: torch.Tensor, targets: torch.Tensor, steps: int) -> None:
    if x.ndim != 2 or len(targets) != len(x):
        raise CTPluginError(f"{name}: x must be (n, d) with n targets; got {tuple(x.shape)}, {len(targets)}")
    if steps < 1:
        raise CTPluginError(f"steps must be >= 1, got {steps}")


def _baseline_row(x: torch.Tensor, baseline: torch.Tensor | None) -> torch.Tensor:
    if baseline is None:
        return torch.zeros(1, x.shape[1], dtype=x.dtype, device=x.device)
    base = baseline.to(x).reshape(1, -1)
    if base.shape[1] != x.shape[1]:
        raise CTPluginError(f"baseline has {base.shape[1]} values but x has {x.shape[1]} columns")
    return base


def integrated_gradients_with_delta(
    model: torch.nn.Module,
    x: torch.Tensor,
    targets: torch.Tensor,
    baseline: torch.Tensor | None = None,
    steps: int = 32,
    chunk_rows: int = 8192,
    fast_gradients: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Integrated gradients (captum) of the ``targets`` logit, (n, d), and the per-row convergence delta, (n,).

    ``fast_gradients`` swaps captum's per-output gradient for :func:`summed_gradients` (same
    result, one backward pass); False runs captum exactly as shipped.
    """
    _check_inputs("integrated_gradients", x, targets, steps)
    if len(x) == 0:
        return x.new_zeros(x.shape), x.new_zeros(0)
    attr = _captum_attr()
    base = _baseline_row(x, baseline)
    with frozen(model):
        ig = _explainer(attr, "IntegratedGradients", model, fast_gradients)
        attributions, delta = ig.attribute(
            x.detach(), baselines=base, target=targets.long(), n_steps=steps, method="riemann_middle",
            # captum always keeps every row in a batch and splits the steps: chunks of >= n rows
            internal_batch_size=None if steps * len(x) <= chunk_rows else max(chunk_rows, len(x)),
            return_convergence_delta=True,
        )
    return attributions.detach(), delta.detach()


def attribute(
    method: str,
    model: torch.nn.Module,
    x: torch.Tensor,
    targets: torch.Tensor,
    baseline: torch.Tensor | None = None,
    steps: int = 32,
    seed: int = 0,
) -> torch.Tensor:
    """Attributions (n, d) of the ``targets`` logit by a captum method named in :data:`METHODS`."""
    if method not in METHODS:
        raise CTPluginError(f"unknown attribution method {method!r}; choose from {', '.join(METHODS)}")
    _check_inputs(method, x, targets, steps)
    if len(x) == 0:
        return x.new_zeros(x.shape)
    if method == "integrated_gradients":
        return integrated_gradients_with_delta(model, x, targets, baseline, steps)[0]
    spec = METHODS[method]
    attr = _captum_attr()
    base = _baseline_row(x, baseline)
    kwargs: dict[str, Any] = {"target": targets.long()}
    if method == "gradient_shap":
        kwargs.update(baselines=base, n_samples=steps)
    elif spec.uses_baseline:
        kwargs["baselines"] = base
    if method == "saliency":
        kwargs["abs"] = True
    with frozen(model), _seeded(seed), warnings.catch_warnings():
        # DeepLift announces that it hooks the activations for the call (and removes the hooks after)
        warnings.filterwarnings("ignore", message="Setting forward, backward hooks", category=UserWarning)
        explainer = _explainer(attr, spec.captum_class, model)
        try:
            out = explainer.attribute(x.detach().clone().requires_grad_(True), **kwargs)
        except (AssertionError, RuntimeError) as exc:  # e.g. DeepLift on a model whose modules it cannot hook
            raise CTPluginError(f"captum {spec.captum_class} failed on this model: {exc}") from exc
    return out.detach()


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed torch's and numpy's global generators (captum's noise comes from both), restore them after."""
    state = np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        np.random.seed(seed)
        try:
            yield
        finally:
            np.random.set_state(state)


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
    ``sum_j IG_j - (F(x) - F(baseline))``, shape (n,).
    """
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


def row_shares(attributions: torch.Tensor, image_shape: tuple[int, ...]) -> torch.Tensor:
    """Share of absolute attribution mass per image row (every channel), averaged over inputs (image data)."""
    channels = image_shape[0] if len(image_shape) == 3 else 1
    h, w = image_shape[-2:]
    mass = attributions.abs().reshape(len(attributions), channels, h, w).sum(dim=(1, 3))
    total = mass.sum(dim=1, keepdim=True)
    keep = total.squeeze(1) > 0
    return (mass[keep] / total[keep]).mean(dim=0)
