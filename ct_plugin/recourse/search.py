"""The batched search behind ``explain``: every person at once, per generator, with alternatives.

Rows are searched in batches of ``batch_size`` (one tensor each, never a loop over people). With
``alternatives`` K > 1 the search runs K rounds: round k may not change, for each person, the
feature that moved most (in standard deviations) in each of that person's earlier
counterfactuals, so every alternative is a different plan ("raise income" or "reduce debt").
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ct_plugin.constraints import SearchConstraints
from ct_plugin.data.spec import DatasetSpec
from ct_plugin.generators.base import CounterfactualGenerator
from ct_plugin.plugins.options import build_with_options
from ct_plugin.plugins.registry import get_registry
from ct_plugin.recourse.defaults import SearchSettings


@dataclass
class Found:
    """One generator's counterfactuals for every person: arrays of shape (alternatives, people, ...)."""

    settings: SearchSettings
    counterfactuals: np.ndarray
    steps: np.ndarray
    repaired: np.ndarray
    seconds: float


def build_generator(settings: SearchSettings, spec: DatasetSpec,
                    device: torch.device | str = "cpu") -> CounterfactualGenerator:
    """The registered generator of ``settings`` with its options checked, fitted to ``spec`` on ``device``."""
    item = get_registry().get("generator", settings.generator)
    generator = build_with_options("generator", settings.generator, item.factory, **settings.options)
    generator.fit(spec, device)
    return generator


def feature_membership(spec: DatasetSpec) -> torch.Tensor:
    """(d, F) 0/1 matrix: encoded column j belongs to raw feature f."""
    names = spec.raw_feature_names
    membership = torch.zeros(spec.n_features, len(names))
    for f, name in enumerate(names):
        membership[spec.columns_of(name), f] = 1.0
    return membership


def find_counterfactuals(
    model: torch.nn.Module,
    spec: DatasetSpec,
    factuals: torch.Tensor,
    targets: torch.Tensor,
    constraints: SearchConstraints,
    settings: SearchSettings,
    *,
    alternatives: int = 1,
    seed: int = 0,
    batch_size: int = 4096,
    bar: Any = None,
) -> Found:
    """Search ``alternatives`` counterfactuals of every factual towards its target (see the module doc)."""
    start = time.perf_counter()
    generator = build_generator(settings, spec, factuals.device)
    n, d = factuals.shape
    membership = feature_membership(spec).to(factuals)
    frozen = torch.zeros(n, d, dtype=torch.bool, device=factuals.device)
    counterfactuals = np.zeros((alternatives, n, d), dtype=np.float32)
    steps = np.zeros((alternatives, n), dtype=np.int64)
    repaired = np.zeros((alternatives, n), dtype=bool)
    rng = torch.Generator().manual_seed(int(seed))
    for k in range(alternatives):
        for lo in range(0, n, batch_size):
            rows = slice(lo, min(lo + batch_size, n))
            narrowed = constraints.narrowed(row_frozen=frozen[rows]) if k else constraints
            result = generator.search(
                model, factuals[rows], targets[rows], narrowed,
                tau=settings.tau, max_steps=settings.max_steps, epsilon=0.0, rng=rng,
            ).detach()
            counterfactuals[k, rows] = result.counterfactuals.cpu().numpy()
            steps[k, rows] = result.steps.cpu().numpy()
            if result.repaired is not None:
                repaired[k, rows] = result.repaired.cpu().numpy()
            if bar is not None:
                bar.update(rows.stop - rows.start)
        if k + 1 < alternatives:  # the next plan may not lean on this one's main feature
            moved = (torch.as_tensor(counterfactuals[k]).to(factuals) - factuals).abs() @ membership
            main = moved.argmax(dim=1)
            changed = moved.gather(1, main[:, None]).squeeze(1) > 1e-6
            frozen |= (membership.T[main] > 0) & changed[:, None]
    return Found(settings, counterfactuals, steps, repaired, time.perf_counter() - start)
