"""captum attributions: agreement with the former hand-written IG, convergence delta, registered methods."""

from __future__ import annotations

import pytest
import torch

import ct_plugin
from benchmarks.ig_speed import handwritten_integrated_gradients
from ct_plugin.errors import CTPluginError
from ct_plugin.evaluation import attribution as A
from ct_plugin.evaluation import metrics as M
from ct_plugin.models import mlp


def _mlp_and_inputs(n: int = 40, d: int = 5):
    torch.manual_seed(0)
    model = mlp(d, 3, hidden=(16,))
    x = torch.randn(n, d)
    return model, x, torch.randint(0, 3, (n,)), x.mean(dim=0)


def test_captum_ig_equals_the_former_hand_written_sum_both_gradient_paths():
    model, x, targets, base = _mlp_and_inputs()
    reference = handwritten_integrated_gradients(model, x, targets, base, steps=16)
    fast, delta_fast = A.integrated_gradients_with_delta(model, x, targets, base, steps=16)
    stock, delta_stock = A.integrated_gradients_with_delta(model, x, targets, base, steps=16, fast_gradients=False)
    torch.testing.assert_close(fast, reference, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(stock, reference, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(delta_fast, delta_stock, rtol=1e-5, atol=1e-6)
    # chunking over steps (captum's internal_batch_size) gives the same sum
    chunked = A.integrated_gradients_with_delta(model, x, targets, base, steps=16, chunk_rows=len(x) * 3)[0]
    torch.testing.assert_close(chunked, reference, rtol=1e-5, atol=1e-6)


def test_convergence_delta_is_the_completeness_gap_and_shrinks_with_steps():
    model, x, targets, base = _mlp_and_inputs()
    ig, delta = M.integrated_gradients(model, x, targets, base, steps=4, return_delta=True)
    with torch.no_grad():
        gap = model(x).gather(1, targets[:, None]).squeeze(1) - model(base[None]).squeeze(0)[targets]
    torch.testing.assert_close(delta, ig.sum(dim=1) - gap, rtol=1e-4, atol=1e-5)
    fine = M.integrated_gradients(model, x, targets, base, steps=256, return_delta=True)[1]
    assert float(fine.abs().mean()) < float(delta.abs().mean())
    # a linear logit is integrated exactly: delta 0
    linear = torch.nn.Linear(5, 3)
    assert float(M.integrated_gradients(linear, x, targets, base, 2, return_delta=True)[1].abs().max()) < 1e-5


def test_every_captum_method_is_a_registered_metric():
    registry = ct_plugin.get_registry()
    names = set(registry.names("metric"))
    expected = {f"protected_{m}" for m in A.METHODS if m != "integrated_gradients"} | {"ig_convergence_delta"}
    assert expected <= names
    model, x, targets, base = _mlp_and_inputs()
    ctx = M.MetricContext(model=model, factuals=x, targets=targets, counterfactuals=x, protected_columns=[0, 1],
                          baseline=base)
    for name in sorted(expected - {"ig_convergence_delta"}):
        share = registry.build("metric", name)(ctx)
        assert 0.0 < share < 1.0, name
    assert registry.build("metric", "ig_convergence_delta", steps=8)(ctx) > 0


def test_saliency_and_deeplift_against_their_definitions():
    model, x, targets, base = _mlp_and_inputs()
    saliency = A.attribute("saliency", model, x, targets)
    x_req = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(x_req).gather(1, targets[:, None]).sum(), x_req)
    torch.testing.assert_close(saliency, grad.abs())
    # DeepLift's attributions sum to F(x) - F(baseline) (summation to delta)
    deeplift = A.attribute("deeplift", model, x, targets, base)
    with torch.no_grad():
        gap = model(x).gather(1, targets[:, None]).squeeze(1) - model(base[None]).squeeze(0)[targets]
    torch.testing.assert_close(deeplift.sum(dim=1), gap, rtol=1e-4, atol=1e-4)
    # GradientSHAP is seeded: the same call gives the same attributions
    torch.testing.assert_close(A.attribute("gradient_shap", model, x, targets, base, steps=8),
                               A.attribute("gradient_shap", model, x, targets, base, steps=8))


def test_bad_attribution_requests_are_refused():
    model, x, targets, base = _mlp_and_inputs()
    with pytest.raises(CTPluginError, match="unknown attribution method 'lime'"):
        A.attribute("lime", model, x, targets)
    with pytest.raises(CTPluginError, match="baseline has 3 values"):
        A.attribute("deeplift", model, x, targets, torch.zeros(3))
    with pytest.raises(CTPluginError, match="steps must be >= 1"):
        M.integrated_gradients(model, x, targets, base, steps=0)
    assert M.integrated_gradients(model, x[:0], targets[:0]).shape == (0, 5)
