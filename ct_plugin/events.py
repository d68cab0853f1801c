"""Event objects passed to the lifecycle hooks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ct_plugin.generators.base import SearchResult


@dataclass
class SearchEvent:
    """One counterfactual search during training."""

    epoch: int
    factuals: torch.Tensor
    targets: torch.Tensor
    result: SearchResult
    seconds: float


@dataclass
class BatchEvent:
    """One optimiser step; ``losses`` maps each active term to its value, ``skipped`` if non-finite."""

    epoch: int
    batch: int
    losses: dict[str, float]
    skipped: bool
    model: torch.nn.Module


@dataclass
class EpochEvent:
    """The end of an epoch; ``record`` is the row written to the run's log."""

    epoch: int
    record: dict[str, Any]
    model: torch.nn.Module
