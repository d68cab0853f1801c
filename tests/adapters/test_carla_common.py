"""Shared helpers of the CARLA adapter tests (no tests here): real data, small real models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from ct_plugin.adapters.carla.compat import carla_installed
from ct_plugin.data.builder import from_dataframe
from ct_plugin.data.spec import DatasetSpec
from tests.realdata import real_data_dir

INSTALL_HINT = "carla-recourse is not installed; install it with: python -m ct_plugin.adapters.carla.install"


def skip_without_carla() -> None:
    """Skip the calling module when carla-recourse 0.0.5 is not installed (plain import fails)."""
    if not carla_installed():
        pytest.skip(INSTALL_HINT, allow_module_level=True)


def moons_with_age(n: int = 400, seed: int = 0) -> DatasetSpec:
    """Two moons plus an immutable ``age`` column (the CARLA note's test case)."""
    from sklearn.datasets import make_moons

    X, y = make_moons(n, noise=0.15, random_state=seed)
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"x1": X[:, 0], "x2": X[:, 1], "age": rng.integers(18, 80, n).astype(float), "label": y})
    return from_dataframe(frame, "label", immutable=["age"], name="moons_age", seed=seed)


def adult(max_rows: int = 2000) -> DatasetSpec:
    """CARLA's adult table from ../shared/data, age immutable; skips when the table is absent."""
    import ct_plugin

    path = real_data_dir()
    return ct_plugin.load_dataset("adult", data_dir=path, max_rows=max_rows, immutable=["age"])


def train_mlp(spec: DatasetSpec, epochs: int = 15, seed: int = 0, n_classes: int = 2) -> torch.nn.Module:
    """A small MLP trained with plain torch on the spec's training rows."""
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(spec.n_features, 32), torch.nn.ReLU(), torch.nn.Linear(32, n_classes))
    X, y = torch.as_tensor(spec.X_train), torch.as_tensor(spec.y_train)
    optimiser = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(epochs):
        for i in range(0, len(X), 64):
            optimiser.zero_grad()
            torch.nn.functional.cross_entropy(model(X[i : i + 64]), y[i : i + 64]).backward()
            optimiser.step()
    return model.eval()
