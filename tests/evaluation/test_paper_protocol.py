"""The paper's evaluation protocol: its pieces against hand-computed values, and one small end-to-end run."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

import ct_plugin
from ct_plugin.errors import CTPluginError
from ct_plugin.evaluation.protocol import ProtocolConfig, evaluate_runs, load_runs
from ct_plugin.evaluation.protocol.paper import (
    draw_factual_rows,
    draw_round_classes,
    fixed_kernel_mmd2,
    l1_implausibility,
    round_metrics,
)
from ct_plugin.evaluation.protocol.ratios import ratio_comparison


def test_l1_implausibility_is_the_mean_l1_distance():
    cfs = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    samples = torch.tensor([[1.0, 2.0], [-1.0, 0.0]])
    # row 0: |1|+|2| = 3 and 1 -> 2; row 1: 0+1 = 1 and 2+1 = 3 -> 2
    assert l1_implausibility(cfs, samples).tolist() == pytest.approx([2.0, 2.0])


def test_fixed_kernel_mmd_matches_hand_computation_and_is_clamped():
    x = torch.tensor([[0.0], [1.0]])
    y = torch.tensor([[0.0], [3.0]])
    scale = 2.0

    def k(a: float, b: float) -> float:
        return math.exp(-((a - b) ** 2) / (2 * scale**2))

    expected = (2 * k(0, 1)) / 2 + (2 * k(0, 3)) / 2 - 2 * (k(0, 0) + k(0, 3) + k(1, 0) + k(1, 3)) / 4
    assert fixed_kernel_mmd2(x, y, scale) == pytest.approx(max(expected, 0.0))
    # identical sets give a negative unbiased estimate, which the reference clamps to 0
    z = torch.tensor([[0.0], [0.1], [5.0]])
    assert fixed_kernel_mmd2(z, z.clone(), 0.5) == 0.0
    assert math.isnan(fixed_kernel_mmd2(x[:1], y, 1.0))
    with pytest.raises(CTPluginError, match="length_scale"):
        fixed_kernel_mmd2(x, y, 0.0)


def test_round_metrics_average_valid_counterfactuals_only():
    factuals = torch.zeros(3, 1)
    cfs = torch.tensor([[1.0], [2.0], [10.0]])
    probability = torch.tensor([0.9, 0.5, 0.2])  # the third is invalid (p < 0.5)
    samples = torch.tensor([[1.0], [3.0]])
    values = round_metrics(factuals, cfs, probability, samples, (5.0, 0.5))
    assert values["validity"] == pytest.approx(2 / 3)
    assert values["ip"] == pytest.approx((1.0 + 1.0) / 2)  # row 0: (0 + 2)/2, row 1: (1 + 1)/2
    assert values["cost"] == pytest.approx(1.5)
    assert set(values) == {"validity", "ip", "ip_star", "ip_star_0.5", "cost"}
    none_valid = round_metrics(factuals, cfs, torch.zeros(3), samples, (5.0,))
    assert none_valid["validity"] == 0.0 and math.isnan(none_valid["ip"]) and math.isnan(none_valid["cost"])


def test_round_classes_are_class_balanced_and_targets_differ():
    gen = torch.Generator().manual_seed(0)
    classes = draw_round_classes(4000, 1, 3, gen)
    factual, target = classes[..., 0].flatten(), classes[..., 1].flatten()
    assert bool((factual != target).all())
    shares = torch.bincount(factual, minlength=3).float() / len(factual)
    assert torch.allclose(shares, torch.full((3,), 1 / 3), atol=0.03)
    for cls in range(3):
        others = torch.bincount(target[factual == cls], minlength=3).float()
        assert others[cls] == 0 and abs(others.max() - others[others > 0].min()) / others.sum() < 0.1


def test_factual_rows_are_rows_the_model_predicts_as_the_factual_class():
    predicted = torch.tensor([0, 1, 1, 0, 1])
    factual_class = torch.tensor([[0], [1], [2]])
    rows = draw_factual_rows(predicted, factual_class, 6, torch.Generator().manual_seed(1))
    assert rows.shape == (3, 1, 6)
    assert set(rows[0, 0].tolist()) <= {0, 3} and set(rows[1, 0].tolist()) <= {1, 2, 4}
    assert rows[2, 0].tolist() == [-1] * 6  # no row predicted as class 2


def test_factual_draws_share_random_numbers_across_models_and_stay_uniform():
    factual_class = torch.zeros((4000, 1), dtype=torch.long)
    same = torch.tensor([0, 0, 1, 0, 1, 0])
    a = draw_factual_rows(same, factual_class, 1, torch.Generator().manual_seed(3))
    b = draw_factual_rows(same.clone(), factual_class, 1, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)  # identical models, identical rows
    counts = torch.bincount(a.flatten(), minlength=6)[[0, 1, 3, 5]].double()
    assert (counts / counts.sum() - 0.25).abs().max() < 0.03  # uniform over the 4 rows predicted as class 0
    # a model that predicts one more row as class 0 mostly draws the same rows (a quantile coupling)
    wider = draw_factual_rows(torch.tensor([0, 0, 1, 0, 1, 0, 0]), factual_class, 1, torch.Generator().manual_seed(3))
    assert (wider == a).double().mean() > 0.5
    # a class no row is predicted as still consumes its random numbers: the next class's draw is unchanged
    two = torch.tensor([[0], [1]]).repeat(50, 1)
    with_class_0 = draw_factual_rows(torch.tensor([0, 1, 0, 1]), two, 3, torch.Generator().manual_seed(5))
    without = draw_factual_rows(torch.tensor([2, 1, 2, 1]), two, 3, torch.Generator().manual_seed(5))
    assert (without[0::2] == -1).all() and set(with_class_0[0::2].flatten().tolist()) <= {0, 2}
    assert torch.equal(without[1::2], with_class_0[1::2])


def test_ratio_comparison_is_the_references_formula():
    reference = np.array([2.0, 4.0, 5.0, np.nan])
    other = np.array([1.0, 3.0, 6.0, 1.0])
    stats = ratio_comparison(reference, other, 0.99)
    ratios = np.array([0.5, 0.75, 1.2])
    assert stats["reduction_pct"] == pytest.approx(-(ratios.mean() - 1) * 100)
    assert stats["se_pct"] == pytest.approx(100 * ratios.std(ddof=1))
    assert stats["paired_rounds"] == 3
    diffs = np.array([1.0, 1.0, -1.0])
    assert (stats["diff_low"], stats["diff_high"]) == pytest.approx((np.quantile(diffs, 0.005),
                                                                      np.quantile(diffs, 0.995)))
    assert stats["significant"] is False  # the interval spans 0
    assert ratio_comparison(np.array([2.0, 4.0, 5.0]), np.array([1.0, 3.0, 4.0]), 0.99)["significant"] is True


def _train(out: Path, strategy: str, protect: bool = False) -> Path:
    ct_plugin.train(None, dataset="moons", strategy=strategy, out=out, quiet=True, epochs=3, nce=60, seed=0,
                    dataset_options={"n_samples": 400}, protect=protect)
    return out


@pytest.fixture(scope="module")
def moons_runs(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("paper-runs")
    return [_train(root / "baseline", "vanilla"), _train(root / "ct", "ct", protect=True)]


def test_paper_protocol_end_to_end(moons_runs):
    runs = load_runs(moons_runs)
    config = ProtocolConfig(rounds=6, n_factuals=12, lambda_energies=(0.5, 5.0), epsilons=(0.0, 0.1), ig_rows=40,
                            ig_rounds=4, attack_rows=100)
    ev = evaluate_runs(runs, config)
    assert ev.config.protocol == "paper"
    # the ct run was trained with x1 immutable, but the paper's main search is free; the cost search freezes x1
    assert ev.frozen == {"main": [], "protected": ["x1"]}
    rounds = ev.rounds
    assert len(rounds) == 2 * 2 * 2 * 6  # runs x settings x lambdas x rounds
    main = rounds[rounds.setting == "main"]
    # both models share each round's classes, drawn class-balanced
    paired = main.pivot_table(index=["round", "lambda_energy"], columns="run", values="target_class")
    assert (paired["baseline"] == paired["ct"]).all()
    assert {"ip", "ip_star", "ip_star_0.5", "validity", "cost"} <= set(ev.comparison.metric)
    again = evaluate_runs(runs, config)
    assert again.comparison.equals(ev.comparison)


def test_bad_protocol_names_are_refused():
    with pytest.raises(CTPluginError, match="unknown evaluation protocol 'papr'"):
        ProtocolConfig(protocol="papr").validate()
    with pytest.raises(CTPluginError, match="main_mutability"):
        ProtocolConfig(main_mutability="frozen").validate()
