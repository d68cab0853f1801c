"""CARLA's recourse methods as ct-plugin generators, the benchmark command and a CT run (real CARLA)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from test_carla_common import adult, moons_with_age, skip_without_carla, train_mlp

skip_without_carla()

import ct_plugin  # noqa: E402
from ct_plugin.adapters.carla.benchmark import BenchmarkModel, benchmark_pair  # noqa: E402
from ct_plugin.adapters.carla.generators import CarlaGenerator  # noqa: E402
from ct_plugin.constraints import SearchConstraints  # noqa: E402
from ct_plugin.errors import CTPluginError  # noqa: E402

pytestmark = pytest.mark.carla

FAST = ["carla-wachter", "carla-growing-spheres", "carla-dice", "carla-face", "carla-cchvae"]
SLOW = ["carla-revise", "carla-clue", "carla-crud"]
N = 6


def _available(name: str) -> None:
    item = {i.name: i for i in ct_plugin.get_registry().items("generator")}[name]
    if not item.available:
        pytest.skip(f"{name}: {item.reason}")


def _check_method(name: str, spec, n: int = N) -> None:
    _available(name)
    torch.set_num_threads(1)
    model = train_mlp(spec, epochs=8)
    generator = ct_plugin.get_registry().build("generator", name)
    generator.fit(spec)
    X = torch.as_tensor(spec.X_test[:n])
    with torch.no_grad():
        targets = 1 - model(X).argmax(dim=1)  # both directions occur on these rows
    constraints = SearchConstraints.from_spec(spec)
    result = generator.search(
        model,
        X,
        targets,
        constraints,
        tau=0.5,
        max_steps=30,
        epsilon=0.1,
        rng=torch.Generator().manual_seed(0),
    )
    assert result.counterfactuals.shape == X.shape
    assert result.converged.any(), f"{name} found no valid counterfactual on {spec.name}"
    # constraint repair: nothing returned in training violates mutability / domain / one-hot constraints
    assert int(constraints.violations(result.counterfactuals, X).sum()) == 0
    age = spec.columns_of("age")[0]
    assert torch.equal(result.counterfactuals[:, age], X[:, age])
    assert result.repaired is not None and generator.repairs == int(result.repaired.sum())
    assert result.adversarial.shape == X.shape and ((result.adversarial - X).abs() <= 0.1 + 1e-6).all()


@pytest.mark.parametrize("name", FAST)
def test_method_on_moons_with_immutable(name):
    _check_method(name, moons_with_age())


@pytest.mark.parametrize("name", FAST)
def test_method_on_adult(name):
    _check_method(name, adult(2000))


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW)
@pytest.mark.parametrize("make", [moons_with_age, adult], ids=["moons_age", "adult"])
def test_autoencoder_method(name, make):
    _check_method(name, make())


@pytest.mark.slow
def test_actionable_recourse_on_adult():
    # needs cplex; on a nonlinear model its LIME linearisation finds few valid counterfactuals
    # (on moons often none), so only adult is required to give some
    _check_method("carla-actionable-recourse", adult(2000), n=8)


def test_class_swapped_view_reaches_class_zero():
    spec = moons_with_age()
    model = train_mlp(spec, epochs=8)
    X = torch.as_tensor(spec.X_test[:N])
    with torch.no_grad():
        X = X[model(X).argmax(dim=1) == 1]
    generator = CarlaGenerator("growing-spheres")
    generator.fit(spec)
    targets = torch.zeros(len(X), dtype=torch.long)
    result = generator.search(model, X, targets, SearchConstraints.from_spec(spec), tau=0.5, max_steps=1, epsilon=0.1)
    with torch.no_grad():
        predicted = model(result.counterfactuals).argmax(dim=1)
    assert (predicted[result.converged] == 0).all() and result.converged.all()


def test_autoencoders_fitted_once_model_never_stale():
    spec = moons_with_age()
    generator = CarlaGenerator("cchvae")
    generator.fit(spec)
    fitted = generator._methods[1]._generative_model
    first, second = train_mlp(spec, epochs=1, seed=1), train_mlp(spec, epochs=8, seed=2)
    constraints = SearchConstraints.from_spec(spec)
    X = torch.as_tensor(spec.X_test[:3])
    for model in (first, second):
        generator.search(model, X, torch.ones(3, dtype=torch.long), constraints, tau=0.5, max_steps=1, epsilon=0.1)
        assert generator._methods[1]._generative_model is fitted  # data-only part reused
        assert generator._methods[1]._mlmodel.module is model  # the model searched is the current one


def test_bad_input_messages():
    spec = moons_with_age()
    with pytest.raises(CTPluginError, match="unknown CARLA method"):
        CarlaGenerator("nope")
    generator = CarlaGenerator("wachter")
    with pytest.raises(CTPluginError, match="call fit"):
        generator.search(
            train_mlp(spec, 1),
            torch.zeros(2, 3),
            torch.ones(2, dtype=torch.long),
            SearchConstraints.from_spec(spec),
            tau=0.5,
            max_steps=1,
            epsilon=0.1,
        )
    generator.fit(spec)
    with pytest.raises(CTPluginError, match="binary-only"):
        generator.search(
            train_mlp(spec, 1),
            torch.zeros(2, 3),
            torch.tensor([0, 2]),
            SearchConstraints.from_spec(spec),
            tau=0.5,
            max_steps=1,
            epsilon=0.1,
        )
    with pytest.raises(CTPluginError, match="unavailable"):
        ct_plugin.get_registry().build("generator", "carla-cem")


def test_benchmark_pair_has_every_carla_metric():
    spec = adult(2000)
    model = train_mlp(spec, epochs=5)
    entry = BenchmarkModel("mlp", model, spec)
    from ct_plugin.adapters.carla.benchmark import CARLA_COLUMNS, select_factuals

    rows = select_factuals([entry], 5, seed=0)
    row, table = benchmark_pair(entry, "carla-growing-spheres", rows)
    for column in CARLA_COLUMNS:
        assert column in table.columns and table[column].notna().any(), column
        assert not math.isnan(row[column]), column
    for column in ("validity", "cost_l1", "ip", "ip_star", "violations"):
        assert not math.isnan(row[column]), column


def test_benchmark_command_end_to_end(tmp_path, capsys):
    spec = moons_with_age()
    runs = []
    for strategy in ("vanilla", "ct"):
        out = tmp_path / strategy
        ct_plugin.train(spec, strategy=strategy, generator="generic", epochs=3, nce=16, quiet=True, out=str(out))
        runs.append(str(out))
    from ct_plugin.cli import main

    status = main(
        [
            "benchmark",
            "--dataset",
            "moons_age",
            *runs,
            "--methods",
            "carla-growing-spheres,carla-wachter",
            "--n-factuals",
            "4",
            "--seed",
            "1",
            "--out",
            str(tmp_path / "bench"),
            "--quiet",
        ]
    )
    assert status == 0
    table = pd.read_csv(tmp_path / "bench" / "benchmark.csv")
    assert len(table) == 4 and set(table["strategy"]) == {"vanilla", "ct"}
    assert table[["Success_Rate", "validity", "violations"]].notna().all().all()
    assert (tmp_path / "bench" / "benchmark.md").read_text().count("\n") >= 6
    assert (tmp_path / "bench" / "benchmark.png").stat().st_size > 1000
    assert main(["benchmark", "--dataset", "adult", *runs, "--out", str(tmp_path / "x"), "--quiet"]) != 0
    assert "trained on dataset 'moons_age', not 'adult'" in capsys.readouterr().err


def test_ct_training_with_a_carla_source():
    spec = moons_with_age()
    # CARLA's methods stop just past the decision boundary, so mature counterfactuals need tau = 0.5
    result = ct_plugin.train(
        spec,
        strategy="ct",
        generator="carla-growing-spheres",
        epochs=4,
        nce=32,
        burnin=0.0,
        tau=0.5,
        quiet=True,
    )
    assert len(result.log) == 4
    assert all(record["mature"] > 0 for record in result.log)
    divergence = [record["div"] for record in result.log]
    assert all(np.isfinite(divergence)) and divergence[-1] < divergence[0]  # the divergence term improves


def test_a_method_failing_on_one_factual_loses_only_that_factual():
    from ct_plugin.adapters.carla.compat import import_carla
    from ct_plugin.adapters.carla.generators import RowwiseFallback
    from ct_plugin.adapters.carla.wrappers import as_carla_model

    carla = import_carla()
    spec = moons_with_age()
    mlmodel = as_carla_model(train_mlp(spec, epochs=2), spec)

    class FailsOnNegativeX1(carla.recourse_methods.RecourseMethod):  # a user-written CARLA method
        def get_counterfactuals(self, factuals):
            if (factuals["x1"] < 0.5).any():
                raise RuntimeError("solver failed")
            return factuals[mlmodel.feature_input_order] + 0.01

    factuals = mlmodel.data.frame(spec.X_test[:8], spec.y_test[:8])
    safe = RowwiseFallback(FailsOnNegativeX1(mlmodel), mlmodel.data.columns)
    answer = safe.get_counterfactuals(factuals)
    bad = (factuals["x1"] < 0.5).to_numpy()
    assert len(answer) == 8 and 0 < bad.sum() < 8
    assert answer[bad].isna().all().all() and answer[~bad].notna().all().all()
    assert safe.failures == bad.sum()
