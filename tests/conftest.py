"""Shared fixtures: the real data folder, small linear models with known weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.realdata import real_data_dir, use_ci_data_by_default

REPO = Path(__file__).resolve().parents[1]

# the models in the tests are tiny: intra-op threads only add contention on a 2-core machine
torch.set_num_threads(1)
use_ci_data_by_default()


@pytest.fixture
def data_dir() -> Path:
    """The folder holding the real tables (ct_plugin.data.locate's order); skips if none does."""
    return real_data_dir()


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Keep VAE caches etc. out of the user's home."""
    monkeypatch.setenv("CT_PLUGIN_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def linear_model(weight: list[list[float]], bias: list[float]) -> torch.nn.Linear:
    """A linear classifier with fixed weights (K x d)."""
    w = torch.tensor(weight, dtype=torch.float32)
    layer = torch.nn.Linear(w.shape[1], w.shape[0])
    with torch.no_grad():
        layer.weight.copy_(w)
        layer.bias.copy_(torch.tensor(bias, dtype=torch.float32))
    return layer
