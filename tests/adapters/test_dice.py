"""The DiCE adapter against the real dice-ml package (no mocks): every method, constraints, training."""

from __future__ import annotations

import random
import subprocess
import sys

import numpy as np
import pytest
import torch

INSTALL_HINT = "dice-ml is not installed; install it with: pip install 'ct-plugin[dice]'"
pytest.importorskip("dice_ml", reason=INSTALL_HINT)

from ct_plugin.adapters.dice.generator import METHODS, DiceGenerator  # noqa: E402
from ct_plugin.constraints import SearchConstraints  # noqa: E402
from ct_plugin.data.builder import from_arrays  # noqa: E402
from ct_plugin.data.spec import DatasetSpec  # noqa: E402
from ct_plugin.data.synthetic import make_synthetic  # noqa: E402
from ct_plugin.data.tabular import load_table  # noqa: E402
from ct_plugin.errors import CTPluginError  # noqa: E402
from tests.realdata import real_data_dir  # noqa: E402

pytestmark = pytest.mark.dice

TAU = 0.75
N_FACTUALS = 5


def _train_mlp(spec: DatasetSpec, epochs: int = 30, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(spec.n_features, 32), torch.nn.ReLU(), torch.nn.Linear(32, spec.n_classes)
    )
    X, y = torch.as_tensor(spec.X_train), torch.as_tensor(spec.y_train)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(epochs):
        for index in torch.randperm(len(X)).split(256):
            optimiser.zero_grad()
            torch.nn.functional.cross_entropy(model(X[index]), y[index]).backward()
            optimiser.step()
    return model.eval()


def _factuals(spec: DatasetSpec, model: torch.nn.Module, n: int = N_FACTUALS):
    X = torch.as_tensor(spec.X_test[:n])
    with torch.no_grad():
        predicted = model(X).argmax(dim=1)
    targets = (predicted + 1) % spec.n_classes
    return X, targets


def _search(generator: DiceGenerator, model, spec, X, targets, constraints=None, seed: int = 0, tau=TAU):
    constraints = constraints or SearchConstraints.from_spec(spec)
    return generator.search(
        model, X, targets, constraints, tau=tau, max_steps=30, epsilon=0.3,
        rng=torch.Generator().manual_seed(seed),
    )


def _assert_constraints_hold(result, X, constraints: SearchConstraints) -> None:
    cf = result.counterfactuals
    assert torch.equal(constraints.violations(cf, X), torch.zeros(len(X), dtype=torch.long))
    code = constraints.mutability
    delta = cf - X
    assert torch.all(delta[:, code == 3] == 0), "immutable feature changed"
    assert torch.all(delta[:, code == 1] >= -1e-6), "increase-only feature decreased"
    assert torch.all(delta[:, code == 2] <= 1e-6), "decrease-only feature increased"
    low = torch.minimum(constraints.lower, X) - 1e-6
    high = torch.maximum(constraints.upper, X) + 1e-6
    assert torch.all((cf >= low) & (cf <= high)), "counterfactual outside the domain bounds"
    # nascent adversarial examples (FGSM fallback) stay inside the epsilon ball and the constraints
    assert torch.all((result.adversarial - X).abs() <= 0.3 + 1e-5)
    assert torch.all(result.adversarial[:, code == 3] == X[:, code == 3])


@pytest.fixture(scope="module")
def moons():
    spec = make_synthetic("moons", n_samples=600, seed=0)
    return spec, _train_mlp(spec)


@pytest.fixture(scope="module")
def adult():
    directory = real_data_dir()
    spec = load_table("adult", directory, max_rows=3000, seed=0)
    return spec, _train_mlp(spec, epochs=20)


# ------------------------------------------------------------------- every method returns counterfactuals
@pytest.mark.parametrize("method", METHODS)
def test_each_method_finds_counterfactuals_on_moons(moons, method):
    spec, model = moons
    X, targets = _factuals(spec, model)
    generator = DiceGenerator(method)
    generator.fit(spec)
    result = _search(generator, model, spec, X, targets)
    assert result.counterfactuals.shape == X.shape
    assert int(result.converged.sum()) >= N_FACTUALS - 1, result.target_prob
    assert torch.all(result.target_prob[result.converged] >= TAU)
    assert torch.all((result.counterfactuals[result.converged] != X[result.converged]).any(dim=1))
    # rows DiCE could not finish keep the factual
    assert torch.equal(result.counterfactuals[~result.converged], X[~result.converged])
    _assert_constraints_hold(result, X, SearchConstraints.from_spec(spec))


@pytest.mark.parametrize("method", METHODS)
def test_each_method_finds_counterfactuals_on_adult_with_categoricals(adult, method):
    spec, model = adult
    assert spec.categorical, "adult must have categorical features"
    X, targets = _factuals(spec, model)
    generator = DiceGenerator(method)
    generator.fit(spec)
    result = _search(generator, model, spec, X, targets)
    assert int(result.converged.sum()) >= 3, result.target_prob
    assert torch.all(result.target_prob[result.converged] >= TAU)
    _assert_constraints_hold(result, X, SearchConstraints.from_spec(spec))
    # categorical levels may change, and come back as valid one-hot groups
    decoded = spec.decode(result.counterfactuals.numpy())
    for feature, levels in spec.categorical.items():
        assert set(decoded[feature]) <= set(levels)


# ------------------------------------------------------------------------------------------- constraints
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kind", ["immutable", "increase_only", "decrease_only"])
def test_mutability_constraints_hold_on_moons(moons, method, kind):
    spec, model = moons
    constrained = spec.with_mutability(**{kind: ["x1"]})
    constraints = SearchConstraints.from_spec(constrained)
    X, targets = _factuals(spec, model, n=8)
    generator = DiceGenerator(method)
    generator.fit(constrained)
    result = _search(generator, model, constrained, X, targets, constraints)
    _assert_constraints_hold(result, X, constraints)
    if method != "kdtree":  # kdtree only returns training rows, which rarely share x1 exactly
        assert result.converged.any()


@pytest.mark.parametrize("method", METHODS)
def test_adult_with_immutable_age_and_sex_and_increase_only_education(adult, method):
    spec, model = adult
    constrained = spec.with_mutability(immutable=["age", "sex"], increase_only=["education-num"])
    constraints = SearchConstraints.from_spec(constrained)
    X, targets = _factuals(spec, model)
    generator = DiceGenerator(method)
    generator.fit(constrained)
    result = _search(generator, model, constrained, X, targets, constraints)
    _assert_constraints_hold(result, X, constraints)
    if method != "kdtree":
        assert result.converged.any()


def test_constraints_passed_to_search_win_over_the_fitted_spec(moons):
    spec, model = moons
    generator = DiceGenerator("random")
    generator.fit(spec)  # fitted with everything mutable
    constraints = SearchConstraints.from_spec(spec.with_mutability(immutable=["x2"]))
    X, targets = _factuals(spec, model, n=8)
    result = _search(generator, model, spec, X, targets, constraints)
    assert torch.equal(result.counterfactuals[:, 1], X[:, 1])


def test_all_features_immutable_is_a_clear_error(moons):
    spec, model = moons
    frozen_spec = spec.with_mutability(immutable=["x1", "x2"])
    generator = DiceGenerator("random")
    generator.fit(frozen_spec)
    X, targets = _factuals(spec, model)
    with pytest.raises(CTPluginError, match="every feature is immutable"):
        _search(generator, model, frozen_spec, X, targets)


# ------------------------------------------------------------------------------ behaviour around DiCE
def test_no_counterfactual_found_counts_as_not_converged_quietly(moons, capfd, recwarn):
    spec, model = moons
    X, targets = _factuals(spec, model)
    generator = DiceGenerator("random", sample_size=50)
    generator.fit(spec)
    result = _search(generator, model, spec, X, targets, tau=0.999999)
    assert not result.converged.any()
    assert torch.equal(result.counterfactuals, X)
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""
    assert not [w for w in recwarn if "DiCE failed" in str(w.message)]


@pytest.mark.parametrize("method", METHODS)
def test_search_is_silent_and_leaves_model_and_global_rngs_alone(moons, method, capfd):
    spec, model = moons
    model.train()
    for parameter in model.parameters():
        parameter.grad = torch.ones_like(parameter)  # as if inside the trainer's backward window
    grads = [p.grad.clone() for p in model.parameters()]
    np_state, py_state = np.random.get_state(), random.getstate()
    generator = DiceGenerator(method)
    generator.fit(spec)
    X, targets = _factuals(spec, model)
    try:
        _search(generator, model, spec, X, targets)
        assert model.training, "training mode was not restored"
        assert all(p.requires_grad for p in model.parameters())
        for parameter, before in zip(model.parameters(), grads, strict=True):
            assert torch.equal(parameter.grad, before), "DiCE touched the parameters' gradients"
    finally:
        model.eval()
        for parameter in model.parameters():
            parameter.grad = None
    assert random.getstate() == py_state
    after = np.random.get_state()
    assert after[0] == np_state[0] and np.array_equal(after[1], np_state[1]) and after[2:] == np_state[2:]
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""


def test_same_rng_seed_gives_the_same_counterfactuals(moons):
    spec, model = moons
    X, targets = _factuals(spec, model)
    generator = DiceGenerator("random")
    generator.fit(spec)
    first = _search(generator, model, spec, X, targets, seed=3)
    second = _search(generator, model, spec, X, targets, seed=3)
    assert torch.equal(first.counterfactuals, second.counterfactuals)


@pytest.mark.parametrize("method", ["random", "genetic", "gradient"])
def test_multiclass_targets_reach_tau(method):
    rng = np.random.default_rng(0)
    centres = np.array([[-3.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    labels = rng.integers(0, 3, 900)
    X = centres[labels] + rng.normal(size=(900, 2))
    spec = from_arrays(X, labels, name="blobs3", class_names=["a", "b", "c"])
    model = _train_mlp(spec, epochs=20)
    X, targets = _factuals(spec, model, n=6)
    generator = DiceGenerator(method)
    generator.fit(spec)
    result = _search(generator, model, spec, X, targets)
    assert int(result.converged.sum()) >= 4
    with torch.no_grad():
        probability = torch.softmax(model(result.counterfactuals), dim=1)
    reached = probability.gather(1, targets[:, None]).squeeze(1) >= TAU
    assert torch.equal(reached, result.converged)


def test_unknown_dice_option_is_named_at_fit(moons):
    spec, _ = moons
    generator = DiceGenerator("genetic", sample_size=10)  # sample_size belongs to random
    with pytest.raises(CTPluginError, match=r"unknown option.*sample_size.*'genetic'"):
        generator.fit(spec)


def test_search_before_fit_is_a_clear_error(moons):
    spec, model = moons
    X, targets = _factuals(spec, model)
    with pytest.raises(CTPluginError, match="call fit"):
        DiceGenerator("random").search(
            model, X, targets, SearchConstraints.from_spec(spec), tau=TAU, max_steps=30, epsilon=0.3
        )


def test_estimated_seconds_uses_measured_time_and_a_long_search_warns(moons):
    spec, model = moons
    generator = DiceGenerator("random", warn_after_seconds=0.0)
    generator.fit(spec)
    X, targets = _factuals(spec, model)
    with pytest.warns(RuntimeWarning, match="one query at a time"):
        _search(generator, model, spec, X, targets)
    measured = generator.seconds_per_counterfactual()
    assert measured > 0
    assert generator.estimated_seconds(100) == pytest.approx(100 * measured)


def test_registry_builds_dice_generators_with_options():
    import ct_plugin

    generator = ct_plugin.get_registry().build("generator", "dice-random", sample_size=200, total_cfs=2)
    assert isinstance(generator, DiceGenerator)
    assert generator.method == "random" and generator.total_cfs == 2
    assert generator.dice_options == {"sample_size": 200}


# ----------------------------------------------------------------------------------------- training
def test_short_counterfactual_training_run_with_a_dice_source():
    import ct_plugin

    spec = make_synthetic("moons", n_samples=400, seed=0)
    result = ct_plugin.train(spec, strategy="ct", generator="dice-random", epochs=2, nce=20, quiet=True)
    assert len(result.log) == 2
    assert all(record.get("mature") is not None for record in result.log)
    assert not result.model.training


@pytest.mark.slow
def test_cli_trains_with_dice_genetic(tmp_path):
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "ct_plugin.cli", "train", "--dataset", "moons",
        "--dataset-option", "n_samples=300", "--generator", "dice-genetic",
        "--nce", "10", "--epochs", "2", "--quiet", "--out", str(out),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (out / "model.pt").is_file()
