"""Batched counterfactual search: bookkeeping, constraints (property-style), model untouched."""

from __future__ import annotations

import math

import hypothesis.strategies as st
import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings

import ct_plugin
from ct_plugin import CTPluginError, SearchConstraints
from ct_plugin.constraints import BOTH, DECREASE, INCREASE, NONE
from ct_plugin.generators.gradient import ECCCoGenerator, GenericGenerator
from ct_plugin.generators.revise import REVISEGenerator
from tests.conftest import linear_model


def test_mature_and_nascent_bookkeeping_with_known_steps():
    # logit_1 = x1, logit_0 = 0: the yloss gradient on x1 is -(1 - sigmoid(x1)); with lambda_cost 0
    # each step moves x1 by step_size * (1 - sigmoid(x1)), which we replay by hand.
    model = linear_model([[0.0, 0.0], [1.0, 0.0]], [0.0, 0.0])
    generator = GenericGenerator(step_size=1.0, lambda_cost=0.0)
    factual = torch.tensor([[-1.0, 0.5]])
    tau, epsilon = 0.8, 0.9
    path = [-1.0]
    while 1 / (1 + math.exp(-path[-1])) < tau:
        path.append(path[-1] + (1 - 1 / (1 + math.exp(-path[-1]))))
    result = generator.search(
        model, factual, torch.tensor([1]), SearchConstraints.unconstrained(2), tau=tau, max_steps=30, epsilon=epsilon
    )
    assert result.converged.item() and result.steps.item() == len(path) - 1
    assert result.counterfactuals[0, 0].item() == pytest.approx(path[-1], abs=1e-5)
    assert result.counterfactuals[0, 1].item() == 0.5  # no gradient, no move
    assert result.target_prob.item() == pytest.approx(1 / (1 + math.exp(-path[-1])), abs=1e-5)
    within = [p for p in path if abs(p - path[0]) <= epsilon]
    assert result.adversarial[0, 0].item() == pytest.approx(within[-1], abs=1e-5)
    assert len(within) < len(path)  # the nascent example really is an earlier iterate


def test_converged_rows_freeze_and_unconverged_use_all_steps():
    model = linear_model([[0.0, 0.0], [1.0, 0.0]], [0.0, 0.0])
    factuals = torch.tensor([[-0.1, 0.0], [-50.0, 0.0]])
    result = GenericGenerator(step_size=0.25, lambda_cost=0.0).search(
        model, factuals, torch.tensor([1, 1]), SearchConstraints.unconstrained(2), tau=0.55, max_steps=5, epsilon=0.3
    )
    assert result.converged.tolist() == [True, False]
    assert result.steps.tolist()[1] == 5 and result.steps.tolist()[0] < 5
    assert torch.equal(result.adversarial[1], factuals[1] + torch.tensor([0.25 * 1, 0]))  # 1 step within 0.3


@pytest.mark.parametrize("generator", [GenericGenerator(step_size=0.25, lambda_cost=0.01),
                                       ECCCoGenerator(lambda_energy=1.0, normalise_grad=True)])
def test_batched_search_equals_row_by_row_search(generator):
    # rows stop at different steps: the ones that stopped are carried along until an eighth of
    # the batch has stopped, then dropped together; each row must end exactly as if searched alone
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    with torch.no_grad():
        model[2].weight.mul_(4)  # steep enough that rows reach tau at different steps
    factuals = torch.randn(40, 3) * 2
    targets = 1 - model(factuals).argmax(dim=1)
    constraints = SearchConstraints.unconstrained(3)
    batched = generator.search(model, factuals, targets, constraints, tau=0.7, max_steps=25, epsilon=0.5)
    assert len(set(batched.steps.tolist())) > 1 and not batched.converged.all()  # rows stop at different steps
    for i in range(len(factuals)):
        alone = generator.search(model, factuals[i:i + 1], targets[i:i + 1], constraints, tau=0.7, max_steps=25,
                                 epsilon=0.5)
        assert batched.steps[i] == alone.steps[0] and batched.converged[i] == alone.converged[0]
        assert torch.allclose(batched.counterfactuals[i], alone.counterfactuals[0], atol=1e-5)
        assert torch.allclose(batched.adversarial[i], alone.adversarial[0], atol=1e-5)
        assert batched.target_prob[i].item() == pytest.approx(alone.target_prob[0].item(), abs=1e-5)


def test_already_valid_factual_needs_no_step():
    model = linear_model([[0.0, 0.0], [1.0, 0.0]], [0.0, 0.0])
    result = GenericGenerator().search(
        model,
        torch.tensor([[5.0, 0.0]]),
        torch.tensor([1]),
        SearchConstraints.unconstrained(2),
        tau=0.5,
        max_steps=10,
        epsilon=0.3,
    )
    assert result.converged.item() and result.steps.item() == 0
    assert torch.equal(result.adversarial, torch.tensor([[5.0, 0.0]]))


def test_search_leaves_model_untouched():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    model.train()
    before = [p.detach().clone() for p in model.parameters()]
    ECCCoGenerator().search(
        model,
        torch.randn(16, 4),
        torch.randint(0, 3, (16,)),
        SearchConstraints.unconstrained(4),
        tau=0.99,
        max_steps=10,
        epsilon=0.3,
    )
    assert all(p.grad is None for p in model.parameters())
    assert all(p.requires_grad for p in model.parameters())
    assert model.training
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_impossible_settings_are_refused():
    model = linear_model([[0.0, 0.0], [1.0, 0.0]], [0.0, 0.0])
    c = SearchConstraints.unconstrained(2)
    args = (model, torch.zeros(1, 2), torch.tensor([1]), c)
    with pytest.raises(CTPluginError, match="tau"):
        GenericGenerator().search(*args, tau=1.5, max_steps=10, epsilon=0.3)
    with pytest.raises(CTPluginError, match="max_steps"):
        GenericGenerator().search(*args, tau=0.5, max_steps=-1, epsilon=0.3)
    with pytest.raises(CTPluginError, match="step_size"):
        GenericGenerator(step_size=0)
    with pytest.raises(CTPluginError, match="lambda_energy"):
        ECCCoGenerator(lambda_energy=-1)


def _mixed_spec(seed: int, codes: list[int]) -> ct_plugin.DatasetSpec:
    rng = np.random.default_rng(seed)
    n = 60
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
            "c": rng.normal(size=n),
            "d": rng.normal(size=n),
            "colour": rng.choice(["red", "green", "blue"], n),
            "y": rng.integers(0, 2, n),
        }
    )
    kinds = {BOTH: (), NONE: "immutable", INCREASE: "increase_only", DECREASE: "decrease_only"}
    groups: dict[str, list[str]] = {"immutable": [], "increase_only": [], "decrease_only": []}
    for name, code in zip("abcd", codes):
        if code != BOTH:
            groups[kinds[code]].append(name)
    return ct_plugin.from_dataframe(frame, "y", seed=seed, **groups)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    codes=st.lists(st.sampled_from([BOTH, INCREASE, DECREASE, NONE]), min_size=4, max_size=4),
    colour_immutable=st.booleans(),
    generator_name=st.sampled_from(["generic", "eccco"]),
)
def test_constraints_hold_for_every_iterate(seed, codes, colour_immutable, generator_name):
    spec = _mixed_spec(seed, codes)
    if colour_immutable:
        spec = spec.with_mutability(immutable=["colour"])
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(spec.n_features, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))
    constraints = SearchConstraints.from_spec(spec)
    factuals = torch.as_tensor(spec.X_train)
    targets = torch.randint(0, 2, (len(factuals),))
    generator = ct_plugin.get_registry().build("generator", generator_name, step_size=1.0)
    result = generator.search(model, factuals, targets, constraints, tau=0.99, max_steps=20, epsilon=0.5)
    for x in (result.counterfactuals, result.adversarial):
        assert int(constraints.violations(x, factuals).sum()) == 0
        delta = x - factuals
        code = constraints.mutability
        assert torch.equal(x[:, code == NONE], factuals[:, code == NONE])  # bit for bit
        assert bool((delta[:, code == INCREASE] >= 0).all())
        assert bool((delta[:, code == DECREASE] <= 0).all())
        assert bool((x >= torch.minimum(constraints.lower, factuals)).all())
        assert bool((x <= torch.maximum(constraints.upper, factuals)).all())
        block = x[:, spec.columns_of("colour")]
        assert bool(((block == 0) | (block == 1)).all()) and bool((block.sum(dim=1) == 1).all())
    assert bool(((result.adversarial - factuals).abs().amax(dim=1) <= 0.5 + 1e-6).all())


def test_revise_respects_constraints_and_caches_its_vae(tmp_path):
    spec = _mixed_spec(1, [NONE, INCREASE, DECREASE, BOTH])
    generator = REVISEGenerator(vae_epochs=5, cache_dir=tmp_path)
    generator.fit(spec)
    cached = list((tmp_path / "vae").glob("*.pt"))
    assert len(cached) == 1
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(spec.n_features, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    constraints = SearchConstraints.from_spec(spec)
    factuals = torch.as_tensor(spec.X_train[:20])
    result = generator.search(
        model, factuals, torch.ones(20, dtype=torch.long), constraints, tau=0.7, max_steps=20, epsilon=0.3
    )
    assert int(constraints.violations(result.counterfactuals, factuals).sum()) == 0
    again = REVISEGenerator(vae_epochs=5, cache_dir=tmp_path)
    again.fit(spec)  # loaded from the cache, identical weights
    for a, b in zip(generator.vae.parameters(), again.vae.parameters()):
        assert torch.equal(a, b)


def test_gradient_clipping_caps_every_step():
    # a very steep linear model: one plain SGD step jumps far; a clipped one moves at most step_size
    model = linear_model([[0.0, 0.0], [40.0, 0.0]], [0.0, 0.0])
    factual, target = torch.tensor([[-1.0, 0.0]]), torch.tensor([1])
    free = SearchConstraints.unconstrained(2)
    plain = GenericGenerator(step_size=0.25, lambda_cost=0.0).search(
        model, factual, target, free, tau=0.99, max_steps=1, epsilon=0.3
    )
    clipped = GenericGenerator(step_size=0.25, lambda_cost=0.0, clip_grad=1.0).search(
        model, factual, target, free, tau=0.99, max_steps=1, epsilon=0.3
    )
    assert plain.counterfactuals[0, 0].item() == pytest.approx(-1.0 + 0.25 * 40, rel=1e-4)
    assert clipped.counterfactuals[0, 0].item() == pytest.approx(-0.75, abs=1e-6)
    assert torch.equal(clipped.adversarial, clipped.counterfactuals)  # within epsilon: a nascent example exists
    assert torch.equal(plain.adversarial, factual)  # the overshooting step left none
