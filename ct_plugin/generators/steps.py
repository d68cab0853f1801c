"""How a gradient search shapes one step: each row's gradient clipped, or normalised over the columns that can move.

Options of :class:`ct_plugin.generators.gradient.GradientSearch` (``clip_grad``, ``normalise_grad``,
``sparse_steps``); the plain search uses neither.
"""

from __future__ import annotations

import torch


def clip_rows(grad: torch.Tensor, max_norm: float) -> torch.Tensor:
    """Scale each row of ``grad`` so that its L-inf norm is at most ``max_norm``."""
    norm = grad.abs().amax(dim=1, keepdim=True)
    return grad * (max_norm / norm.clamp_min(max_norm))


def normalise_rows(
    grad: torch.Tensor, x: torch.Tensor, low: torch.Tensor, high: torch.Tensor, up: torch.Tensor, down: torch.Tensor,
    still: torch.Tensor | None = None,
) -> torch.Tensor:
    """Scale each row of ``grad`` to L-inf norm 1 over the columns that can still move its way.

    A column whose descent direction is forbidden (immutable, monotone) or blocked by the bound it
    sits on is zeroed first, so it neither moves nor shrinks the others' steps; so are the columns of
    ``still`` (one-hot groups the search projects after every step: a small step cannot change their
    level). Rows with no movable column stay zero. Each step then moves the steepest feature by
    exactly ``step_size`` sd whatever the gradient's size: a flat (saturated) model still makes
    progress, a steep one cannot jump.
    """
    descent = -grad
    allowed = torch.where(descent > 0, up, down)
    if still is not None:
        allowed = allowed & ~still
    blocked = ((descent > 0) & (x >= high - 1e-6)) | ((descent < 0) & (x <= low + 1e-6))
    grad = torch.where(allowed & ~blocked, grad, 0.0)
    norm = grad.abs().amax(dim=1, keepdim=True)
    return torch.where(norm > 0, grad / norm.clamp_min(1e-30), 0.0)
