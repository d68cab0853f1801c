"""ECCCo as the reference runs it: the decaying energy multiplier, the presets, the per-step one-hot projection."""

from __future__ import annotations

import pytest
import torch

from ct_plugin.constraints import SearchConstraints
from ct_plugin.errors import CTPluginError
from ct_plugin.generators.gradient import ECCCoGenerator, GenericGenerator, energy_decay_factor


@pytest.mark.parametrize(
    ("step", "max_steps", "expected"),
    [
        (0, 30, 0.1 * 2**-0.9),  # METHOD.md: T = 30 -> b = 1, a = 0.1, phi_1 = 0.054
        (29, 30, 0.1 * 31**-0.9),  # phi_30 = 0.0045
        (0, 50, 0.2 * 3**-0.9),  # T = 50 -> b = 2, a = 0.2, phi_1 = 0.075
        (5, 12, 0.0),  # T < 13 -> b = 0: no energy term
    ],
)
def test_decay_factor_matches_hand_computed_values(step, max_steps, expected):
    assert energy_decay_factor(step, max_steps) == pytest.approx(expected)


def test_decay_factor_quoted_magnitudes():
    assert round(energy_decay_factor(0, 30), 4) == 0.0536
    assert round(energy_decay_factor(29, 30), 4) == 0.0045
    assert energy_decay_factor(0, 50) == pytest.approx(0.075, abs=1e-3)


def test_reference_preset_values_and_explicit_override():
    ref = ECCCoGenerator(preset="reference")
    assert (ref.step_size, ref.energy_reg, ref.energy_decay, ref.onehot_steps) == (0.1, 1e-3, True, "projected")
    assert ref.energy_weight(0, 30) == pytest.approx(5.0 * 0.1 * 2**-0.9)
    tweaked = ECCCoGenerator(preset="reference", step_size=0.05, energy_decay=False)
    assert (tweaked.step_size, tweaked.energy_decay, tweaked.energy_reg) == (0.05, False, 1e-3)
    default = ECCCoGenerator()
    assert (default.step_size, default.energy_reg, default.energy_decay) == (0.25, 0.1, False)
    assert default.energy_weight(10, 30) == 5.0
    assert GenericGenerator(preset="reference").step_size == 0.1


def test_bad_preset_and_options_are_named():
    with pytest.raises(CTPluginError, match="unknown preset 'paper'"):
        ECCCoGenerator(preset="paper")
    with pytest.raises(CTPluginError, match="onehot_steps"):
        ECCCoGenerator(onehot_steps="sometimes")
    with pytest.raises(CTPluginError, match="energy_decay"):
        ECCCoGenerator(energy_decay="yes")


def _linear(weight: list[list[float]]) -> torch.nn.Module:
    model = torch.nn.Linear(len(weight[0]), len(weight), bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor(weight))
    return model


def test_decayed_search_replays_by_hand():
    """One feature, logits (0, w x): each step's gradient is yloss' + phi_t * lambda * (-w) (ridge 0, cost 0)."""
    w = 1.0
    model = _linear([[0.0], [w]])
    constraints = SearchConstraints(torch.tensor([-100.0]), torch.tensor([100.0]), torch.zeros(1, dtype=torch.long), [])
    generator = ECCCoGenerator(step_size=0.5, lambda_cost=0.0, lambda_energy=2.0, energy_reg=0.0, energy_decay=True)
    x0 = torch.tensor([[-3.0]])
    result = generator.search(model, x0, torch.tensor([1]), constraints, tau=0.99, max_steps=50, epsilon=0.0)
    # replay the whole search by hand: stop once sigmoid(w x) >= tau, else step with the decayed weight
    x, taken = -3.0, 0
    for t in range(50):
        p = torch.sigmoid(torch.tensor(w * x)).item()
        if p >= 0.99:
            break
        x -= 0.5 * (-(1 - p) * w + 2.0 * energy_decay_factor(t, 50) * (-w))
        taken += 1
    assert result.counterfactuals.item() == pytest.approx(x, abs=1e-4)
    assert result.steps.item() == taken
    constant = ECCCoGenerator(step_size=0.5, lambda_cost=0.0, lambda_energy=2.0, energy_reg=0.0)
    fast = constant.search(model, x0, torch.tensor([1]), constraints, tau=0.99, max_steps=50, epsilon=0.0)
    assert fast.steps.item() < taken  # a constant weight of 2 pushes much harder than the decayed one


def test_projected_onehot_steps_continue_from_the_argmax_state():
    """A two-level group: relaxed search accumulates small moves; projected search snaps back each step."""
    # logit of class 1 grows with the second level's column; the gradient moves level 2 up and level 1 down
    model = _linear([[0.0, 0.0], [-1.0, 1.0]])
    groups = [torch.tensor([0, 1])]
    constraints = SearchConstraints(torch.zeros(2), torch.ones(2), torch.zeros(2, dtype=torch.long), groups)
    x0 = torch.tensor([[1.0, 0.0]])
    target = torch.tensor([1])
    relaxed = GenericGenerator(step_size=0.05, lambda_cost=0.0)
    projected = GenericGenerator(step_size=0.05, lambda_cost=0.0, onehot_steps="projected")
    r = relaxed.search(model, x0, target, constraints, tau=0.6, max_steps=40, epsilon=0.0)
    p = projected.search(model, x0, target, constraints, tau=0.6, max_steps=40, epsilon=0.0)
    # relaxed: small steps add up until level 2 overtakes level 1, then the argmax version is valid
    assert bool(r.converged.item())
    assert torch.equal(r.counterfactuals, torch.tensor([[0.0, 1.0]]))
    # projected: one step of 0.05 never lifts level 2 above level 1, so the state snaps back to the factual
    assert not bool(p.converged.item())
    assert torch.equal(p.counterfactuals, x0)



def test_continuous_onehot_steps_ignore_the_groups():
    """The reference's in-training search: the one-hot columns move, converge and return as continuous ones."""
    model = _linear([[0.0, 0.0], [-1.0, 1.0]])
    groups = [torch.tensor([0, 1])]
    constraints = SearchConstraints(torch.zeros(2), torch.ones(2), torch.zeros(2, dtype=torch.long), groups)
    x0 = torch.tensor([[1.0, 0.0]])
    target = torch.tensor([1])
    continuous = GenericGenerator(step_size=0.05, lambda_cost=0.0, onehot_steps="continuous")
    c = continuous.search(model, x0, target, constraints, tau=0.6, max_steps=40, epsilon=0.3)
    # p(1) = sigmoid(x1 - x0) >= 0.6 once x1 - x0 >= log(1.5) = 0.405: each step of 0.05 on the gradient
    # sigmoid'(z) moves both columns, so the search stops at fractional levels, not at a valid one-hot
    assert bool(c.converged.item())
    cf = c.counterfactuals[0]
    assert 0.0 < float(cf[1]) < 1.0 and 0.0 < float(cf[0]) < 1.0
    assert float(cf[1] - cf[0]) >= 0.405 - 1e-6
    # the nascent example is the last iterate within epsilon 0.3, fractional too
    assert float((c.adversarial - x0).abs().max()) <= 0.3 + 1e-6
    assert 0.0 < float(c.adversarial[0, 1]) < 1.0
    # the same search as on constraints without the groups
    plain = SearchConstraints(torch.zeros(2), torch.ones(2), torch.zeros(2, dtype=torch.long), [])
    g = GenericGenerator(step_size=0.05, lambda_cost=0.0).search(model, x0, target, plain, tau=0.6, max_steps=40,
                                                                 epsilon=0.3)
    assert torch.equal(c.counterfactuals, g.counterfactuals) and torch.equal(c.steps, g.steps)
    # the preset's argument wins over the preset
    assert ECCCoGenerator(preset="reference", onehot_steps="continuous").onehot_steps == "continuous"

def test_projected_search_judges_on_its_own_forward_pass():
    """Projected steps keep the iterate one-hot, so each step needs one forward pass, not two; same result."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    groups = [torch.tensor([2, 3, 4])]
    constraints = SearchConstraints(torch.full((5,), -3.0), torch.full((5,), 3.0), torch.zeros(5, dtype=torch.long),
                                    groups)
    x0 = torch.cat([torch.randn(64, 2), torch.eye(3)[torch.randint(0, 3, (64,))]], dim=1)
    targets = 1 - model(x0).argmax(dim=1)
    calls = []
    hook = model.register_forward_hook(lambda module, inputs, output: calls.append(len(inputs[0])))
    try:
        result = ECCCoGenerator(preset="reference").search(model, x0, targets, constraints, tau=0.99, max_steps=6,
                                                           epsilon=0.3)
    finally:
        hook.remove()
    assert len(calls) == int(result.steps.max()) + 1  # one pass per step taken, plus the final judgement
    # the same judgement as a second forward pass on the projected state would give
    with torch.no_grad():
        p = torch.softmax(model(result.counterfactuals), dim=1).gather(1, targets[:, None]).squeeze(1)
    assert torch.allclose(p, result.target_prob)
    assert torch.equal(constraints.project_onehot(result.counterfactuals), result.counterfactuals)
    # a factual that is not one-hot is judged on its projection (two passes at that step)
    relaxed_start = x0.clone()
    relaxed_start[:, 2:] = 0.4
    calls.clear()
    hook = model.register_forward_hook(lambda module, inputs, output: calls.append(len(inputs[0])))
    try:
        ECCCoGenerator(preset="reference").search(model, relaxed_start, targets, constraints, tau=0.99, max_steps=0,
                                                  epsilon=0.0)
    finally:
        hook.remove()
    assert len(calls) == 2
