"""Feasibility constraints of a counterfactual search, as batched tensor operations.

Mutability codes: 0 = both, 1 = increase only, 2 = decrease only, 3 = none (immutable).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ct_plugin.data.spec import MUTABILITY_KINDS, DatasetSpec

BOTH, INCREASE, DECREASE, NONE = range(4)


@dataclass
class SearchConstraints:
    """Per-column domain bounds, mutability codes and one-hot groups on one device."""

    lower: torch.Tensor
    upper: torch.Tensor
    mutability: torch.Tensor
    onehot_groups: list[torch.Tensor]

    @classmethod
    def from_spec(cls, spec: DatasetSpec, device: torch.device | str = "cpu") -> SearchConstraints:
        """Constraints of ``spec`` as tensors on ``device``."""
        codes = [MUTABILITY_KINDS.index(kind) for kind in spec.mutability]
        return cls(
            lower=torch.as_tensor(spec.lower, dtype=torch.float32, device=device),
            upper=torch.as_tensor(spec.upper, dtype=torch.float32, device=device),
            mutability=torch.as_tensor(codes, dtype=torch.long, device=device),
            onehot_groups=[torch.as_tensor(g, dtype=torch.long, device=device) for g in spec.onehot_groups],
        )

    @classmethod
    def unconstrained(cls, n_features: int, device: torch.device | str = "cpu") -> SearchConstraints:
        """No bounds, everything mutable, no categoricals."""
        inf = torch.full((n_features,), float("inf"), device=device)
        return cls(-inf, inf, torch.zeros(n_features, dtype=torch.long, device=device), [])

    def to(self, device: torch.device | str) -> SearchConstraints:
        """The same constraints on another device."""
        return SearchConstraints(
            self.lower.to(device),
            self.upper.to(device),
            self.mutability.to(device),
            [g.to(device) for g in self.onehot_groups],
        )

    @property
    def frozen_columns(self) -> torch.Tensor:
        """Boolean mask of immutable columns."""
        return self.mutability == NONE

    def mask_step(self, step: torch.Tensor) -> torch.Tensor:
        """Zero the forbidden part of a step: any move of immutable columns, the wrong sign of monotone ones."""
        code = self.mutability
        allowed = torch.ones_like(step, dtype=torch.bool)
        allowed &= code != NONE
        allowed &= ~((code == INCREASE) & (step < 0))
        allowed &= ~((code == DECREASE) & (step > 0))
        return torch.where(allowed, step, torch.zeros_like(step))

    def clamp(self, x: torch.Tensor, factual: torch.Tensor) -> torch.Tensor:
        """Project into the domain bounds, widened per row so the factual itself is always feasible.

        Monotone and immutable columns are clamped against the factual too, so they cannot
        end up on the forbidden side even through the bounds.
        """
        low = torch.minimum(self.lower, factual)
        high = torch.maximum(self.upper, factual)
        code = self.mutability
        low = torch.where((code == INCREASE) | (code == NONE), factual, low)
        high = torch.where((code == DECREASE) | (code == NONE), factual, high)
        return torch.maximum(torch.minimum(x, high), low)

    def project_onehot(self, x: torch.Tensor) -> torch.Tensor:
        """Replace each one-hot group's relaxed values by a valid one-hot (argmax)."""
        if not self.onehot_groups:
            return x
        x = x.clone()
        for group in self.onehot_groups:  # loop over features, not samples
            block = x[:, group]
            x[:, group] = torch.nn.functional.one_hot(block.argmax(dim=1), len(group)).to(x.dtype)
        return x

    def violations(self, x: torch.Tensor, factual: torch.Tensor, atol: float = 1e-6) -> torch.Tensor:
        """Per-row count of violated constraints (mutability, bounds, one-hot validity)."""
        code = self.mutability
        delta = x - factual
        bad = (code == NONE) & (delta != 0)
        bad |= (code == INCREASE) & (delta < -atol)
        bad |= (code == DECREASE) & (delta > atol)
        low = torch.minimum(self.lower, factual) - atol
        high = torch.maximum(self.upper, factual) + atol
        bad |= (x < low) | (x > high)
        count = bad.sum(dim=1)
        for group in self.onehot_groups:
            block = x[:, group]
            valid = ((block == 0) | (block == 1)).all(dim=1) & (block.sum(dim=1) == 1)
            count += (~valid).long()
        return count
