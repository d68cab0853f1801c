"""Event objects passed to the lifecycle hooks (plain records: building one imports nothing heavy)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the payloads' types, named for type checkers only (the kernel imports no layer above it)
    import pandas as pd
    import torch

    from ct_plugin.config import TrainConfig
    from ct_plugin.data.spec import DatasetSpec
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


@dataclass
class TrainStartEvent:
    """The start of a training run; ``config`` is the resolved :class:`ct_plugin.config.TrainConfig`."""

    config: TrainConfig
    spec: DatasetSpec
    model: torch.nn.Module
    run_dir: Path | None
    start_epoch: int


@dataclass
class TrainEndEvent:
    """The end of a training run; ``log`` holds every epoch record."""

    config: TrainConfig
    spec: DatasetSpec
    model: torch.nn.Module
    log: list[dict[str, Any]]
    run_dir: Path | None


@dataclass
class EvaluationEvent:
    """An evaluation written to ``out``: its tables by name (``summary``, ``comparison``, ...) and files."""

    dataset: str
    run_dirs: list[Path]
    labels: list[str]
    tables: dict[str, pd.DataFrame]
    out: Path
    files: list[Path] = field(default_factory=list)
