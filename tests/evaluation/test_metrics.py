"""Metrics against hand-computed values on tiny inputs."""

from __future__ import annotations

import math

import pytest
import torch

import ct_plugin
from ct_plugin.errors import CTPluginError
from ct_plugin.evaluation import metrics as M


def linear(weight: list[list[float]], bias: list[float]) -> torch.nn.Linear:
    w = torch.tensor(weight)
    layer = torch.nn.Linear(w.shape[1], w.shape[0])
    with torch.no_grad():
        layer.weight.copy_(w)
        layer.bias.copy_(torch.tensor(bias))
    return layer


# a 2-feature, 2-class model: class 1 iff x0 > 0
STEP = linear([[-1.0, 0.0], [1.0, 0.0]], [0.0, 0.0])


def test_validity_counts_argmax_hits():
    cfs = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [2.0, 5.0], [-3.0, 1.0]])
    targets = torch.tensor([1, 1, 1, 0])
    assert M.validity(STEP, cfs, targets) == pytest.approx(0.75)


def test_cost_is_mean_l1_over_selected_rows():
    factuals = torch.zeros(3, 2)
    cfs = torch.tensor([[1.0, -2.0], [0.5, 0.5], [3.0, 0.0]])
    assert M.l1_cost(factuals, cfs).tolist() == [3.0, 1.0, 3.0]
    assert M.cost(factuals, cfs) == pytest.approx(7.0 / 3.0)
    assert M.cost(factuals, cfs, torch.tensor([True, True, False])) == pytest.approx(2.0)
    assert math.isnan(M.cost(factuals, cfs, torch.zeros(3, dtype=torch.bool)))


def test_implausibility_is_mean_euclidean_distance():
    samples = torch.tensor([[0.0, 0.0], [6.0, 8.0]])
    cf = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    # (5 + 5) / 2 and (0 + 10) / 2
    assert M.implausibility(cf, samples).tolist() == pytest.approx([5.0, 5.0])
    shifted = samples + torch.tensor([3.0, 4.0])
    # a known shift of every sample by a vector of length 5 gives distance 5 to the originals
    assert M.implausibility(samples, samples[:1] * 0 + samples[:1]).tolist() == pytest.approx([0.0, 10.0])
    assert float(M.implausibility(shifted[:1], samples[:1])) == pytest.approx(5.0)


def test_mmd_of_a_set_with_itself_is_about_zero_and_a_shift_is_positive():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(400, 2, generator=gen)
    y = torch.randn(400, 2, generator=gen)
    sigma = M.median_bandwidth(x)
    assert abs(M.mmd2_unbiased(x, y, sigma)) < 0.01
    assert M.mmd2_unbiased(x + 3.0, y, sigma) > 0.5


def test_mmd_hand_computed_two_points():
    # x = {0, 1}, y = {0, 1} in 1-D, sigma 1: k(0,1) = exp(-1/2)
    x = torch.tensor([[0.0], [1.0]])
    k = math.exp(-0.5)
    # unbiased: Kxx off-diagonal mean k, Kyy the same, Kxy mean (1 + 1 + 2k) / 4
    expected = k + k - 2 * (2 + 2 * k) / 4
    assert M.mmd2_unbiased(x, x.clone(), 1.0) == pytest.approx(expected)
    assert M.mmd2_unbiased(x, x.clone(), 1.0) < 0  # the unbiased estimate can be negative


def test_median_bandwidth():
    x = torch.tensor([[0.0], [1.0], [3.0]])  # pairwise 1, 3, 2
    assert M.median_bandwidth(x) == pytest.approx(2.0)


def test_ip_star_weights_classes_by_counterfactuals():
    samples = {0: torch.tensor([[0.0], [1.0]]), 1: torch.tensor([[10.0], [11.0]])}
    cfs = torch.tensor([[0.0], [1.0], [10.0], [11.0], [10.0], [11.0]])
    targets = torch.tensor([0, 0, 1, 1, 1, 1])
    bw = {0: 1.0, 1: 1.0}
    expected_same = M.mmd2_unbiased(samples[0], samples[0], 1.0)
    cls1 = M.mmd2_unbiased(cfs[2:], samples[1], 1.0)
    assert M.ip_star(cfs, targets, samples, bw) == pytest.approx((2 * expected_same + 4 * cls1) / 6)


def test_redundancy_counts_revertible_features():
    factuals = torch.tensor([[-1.0, 0.0], [-1.0, 0.0]])
    # row 0: x0 flips the class, x1 change is useless -> 1 of 2 revertible
    # row 1: only x0 changed and needed -> 0 of 1
    cfs = torch.tensor([[1.0, 3.0], [1.0, 0.0]])
    targets = torch.tensor([1, 1])
    assert M.redundancy(STEP, factuals, cfs, targets) == pytest.approx((0.5 + 0.0) / 2)


def test_redundancy_treats_onehot_group_as_one_feature():
    units = M.feature_units(4, [[2, 3]])
    assert units.tolist() == [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 1]]
    model = linear([[-1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]], [0.0, 0.0])
    f = torch.tensor([[-1.0, 0.0, 1.0, 0.0]])
    c = torch.tensor([[1.0, 0.0, 0.0, 1.0]])  # x0 needed, category change revertible
    assert M.redundancy(model, f, c, torch.tensor([1]), units) == pytest.approx(0.5)


class _Wrapped(torch.nn.Module):
    """A model that does not open with a Linear layer of a Sequential: redundancy's generic path."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)


@pytest.mark.parametrize("path", ["first linear layer", "any model"])
def test_redundancy_matches_reverting_every_unit_one_at_a_time(monkeypatch, path):
    """The chunked, changed-pairs-only computation gives the definition's figure (groups, several chunks),
    both through an MLP's first layer and by predicting the reverted rows of any model."""
    torch.manual_seed(0)
    d, groups = 12, [[4, 5, 6], [9, 10]]
    model = torch.nn.Sequential(torch.nn.Linear(d, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    if path == "any model":
        model = _Wrapped(model)
    f = torch.randn(40, d)
    c = f + torch.randn(40, d)
    c[:, :3] = f[:, :3]  # unchanged features
    c[5] = f[5]  # an unchanged row
    targets = model(c).argmax(dim=1)
    targets[::4] = (targets[::4] + 1) % 3  # invalid rows
    units = M.feature_units(d, groups)
    shares = []
    for i in range(len(f)):
        if model(c[i:i + 1]).argmax().item() != targets[i].item():
            continue
        changed = [u for u in units if bool(((c[i] - f[i]).abs() > 1e-6)[u.bool()].any())]
        if not changed:
            continue
        kept = sum(int(model(torch.where(u.bool(), f[i], c[i])[None]).argmax().item() == targets[i].item())
                   for u in changed)
        shares.append(kept / len(changed))
    expected = sum(shares) / len(shares)
    from ct_plugin.evaluation.metrics import counterfactual

    assert (counterfactual._linear_first_layer(model) is None) == (path == "any model")
    monkeypatch.setattr(counterfactual, "REVERT_CHUNK_ELEMENTS", 5 * d)  # a few reverted rows per chunk
    assert M.redundancy(model, f, c, targets, units) == pytest.approx(expected)
    assert 0 < expected < 1  # some changes are needed and some are not: the test can tell


def test_fgsm_and_pgd_on_a_linear_model():
    x = torch.tensor([[0.05, 0.0], [0.5, 0.0]])
    y = torch.tensor([1, 1])
    adv = M.fgsm(STEP, x, y, 0.1)
    assert adv[:, 0].tolist() == pytest.approx([-0.05, 0.4])
    assert M.robust_accuracy(STEP, x, y, [0.0, 0.1, 0.6], "fgsm") == [1.0, 0.5, 0.0]
    adv = M.pgd(STEP, x, y, 0.1)
    assert (adv - x).abs().max() <= 0.1 + 1e-6
    assert M.robust_accuracy(STEP, x, y, [0.0, 0.1], "pgd") == [1.0, 0.5]
    with pytest.raises(CTPluginError, match="unknown attack"):
        M.robust_accuracy(STEP, x, y, [0.1], "cw")


def test_integrated_gradients_of_linear_model_are_exact():
    # for a linear logit w.x, IG = w * (x - baseline) exactly
    model = linear([[2.0, -1.0, 0.5], [0.0, 0.0, 0.0]], [0.3, 0.0])
    x = torch.tensor([[1.0, 2.0, -4.0]])
    base = torch.tensor([0.0, 1.0, 0.0])
    ig = M.integrated_gradients(model, x, torch.tensor([0]), base, steps=4)
    assert ig.tolist()[0] == pytest.approx([2.0, -1.0, -2.0])
    # shares: |2| / 5 on feature 0
    assert M.attribution_share(ig, [0]) == pytest.approx(0.4)


def test_row_shares_for_images():
    attributions = torch.zeros(1, 4)
    attributions[0, :2] = 1.0  # the top row of a 2x2 image carries everything
    assert M.row_shares(attributions, (2, 2)).tolist() == pytest.approx([1.0, 0.0])


def test_metrics_are_registered_and_work_on_a_context():
    registry = ct_plugin.get_registry()
    names = set(registry.names("metric"))
    assert {"validity", "cost", "ip", "ip_star", "redundancy", "mean_steps", "seconds_per_cf",
            "fgsm_accuracy", "pgd_accuracy", "protected_attribution"} <= names
    ctx = M.MetricContext(
        model=STEP,
        factuals=torch.tensor([[-1.0, 0.0], [-2.0, 0.0]]),
        targets=torch.tensor([1, 1]),
        counterfactuals=torch.tensor([[1.0, 0.0], [-1.0, 0.0]]),
        samples_of={0: torch.tensor([[-1.0, 0.0], [-2.0, 0.0]]), 1: torch.tensor([[1.0, 0.0], [2.0, 0.0]])},
        steps=torch.tensor([3, 5]),
        seconds=1.0,
        X_eval=torch.tensor([[0.05, 0.0], [0.5, 0.0]]),
        y_eval=torch.tensor([1, 1]),
        protected_columns=[0],
    )
    assert registry.build("metric", "validity")(ctx) == pytest.approx(0.5)
    assert registry.build("metric", "cost")(ctx) == pytest.approx(2.0)  # only the valid row
    assert registry.build("metric", "ip")(ctx) == pytest.approx((0.5 + 2.5) / 2)  # (0+1)/2 and (2+3)/2
    assert registry.build("metric", "mean_steps")(ctx) == pytest.approx(4.0)
    assert registry.build("metric", "seconds_per_cf")(ctx) == pytest.approx(0.5)
    assert registry.build("metric", "fgsm_accuracy", epsilon=0.1)(ctx) == pytest.approx(0.5)
    assert registry.build("metric", "protected_attribution")(ctx) == pytest.approx(1.0)
    missing = M.MetricContext(STEP, ctx.factuals, ctx.targets, ctx.counterfactuals)
    with pytest.raises(CTPluginError, match="MetricContext.steps"):
        registry.build("metric", "mean_steps")(missing)


def test_bad_shapes_are_refused():
    with pytest.raises(CTPluginError, match="same shape"):
        M.cost(torch.zeros(2, 2), torch.zeros(3, 2))
    with pytest.raises(CTPluginError, match="at least two"):
        M.mmd2_unbiased(torch.zeros(1, 2), torch.zeros(5, 2), 1.0)
    with pytest.raises(CTPluginError, match="empty"):
        M.implausibility(torch.zeros(2, 2), torch.zeros(0, 2))
