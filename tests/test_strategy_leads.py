"""The paper's leads as plugins: block-wise updates, gradient supervision, entropy and misclassified factuals.

Each against values computed by hand on a tiny real torch model.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

import ct_plugin
from ct_plugin.config import TrainConfig
from ct_plugin.constraints import SearchConstraints
from ct_plugin.errors import CTPluginError
from ct_plugin.runs.checkpoint import load_checkpoint
from ct_plugin.training.factuals import EntropyFactuals, FactualPool, MisclassifiedFactuals
from ct_plugin.training.flipped import FlippedAdversarialStrategy
from ct_plugin.training.objective import (
    BatchContext,
    CounterfactualBatch,
    adversarial_term,
    augmentation_term,
    gradient_supervision_term,
    recourse_term,
)


def _linear(weight: list[list[float]], bias: list[float] | None = None) -> torch.nn.Linear:
    layer = torch.nn.Linear(len(weight[0]), len(weight))
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
        layer.bias.copy_(torch.tensor(bias or [0.0] * len(weight)))
    return layer


def test_entropy_factuals_are_the_rows_nearest_the_boundary():
    model = _linear([[1.0], [-1.0]])  # logits (x, -x): p = sigmoid(2x), entropy falls with |x|
    X = torch.tensor([[3.0], [0.1], [-2.0], [0.0], [-0.5]])
    pool = FactualPool(model, X, torch.zeros(5, dtype=torch.long), 3, torch.Generator().manual_seed(0), 0)
    assert EntropyFactuals().select(pool).tolist() == [3, 1, 4]  # |x| = 0, 0.1, 0.5
    pool.count = 7  # more factuals than rows: every row, then the ranking again
    assert EntropyFactuals().select(pool).tolist() == [3, 1, 4, 2, 0, 3, 1]


def test_misclassified_factuals_come_first():
    model = _linear([[1.0], [-1.0]])  # predicts class 0 for x > 0, class 1 for x < 0
    X = torch.tensor([[1.0], [2.0], [-1.0], [-3.0]])
    y = torch.tensor([0, 1, 1, 0])  # rows 1 and 3 are misclassified
    chosen = MisclassifiedFactuals().select(FactualPool(model, X, y, 3, torch.Generator().manual_seed(0), 0))
    assert sorted(chosen[:2].tolist()) == [1, 3] and chosen[2].item() in (0, 2)


def test_gradient_supervision_is_one_minus_the_cosine_computed_by_hand():
    weight = [[1.0, 2.0], [-1.0, 0.5]]
    model = _linear(weight)  # grad_x of logit k is row k of the weight
    factuals = torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 0.0]])
    x_cf = torch.tensor([[1.0, 0.0], [1.0, 3.0], [2.0, 0.0]])  # the third did not move: left out
    targets = torch.tensor([0, 1, 1])
    batch = CounterfactualBatch(factuals, x_cf, x_cf, factuals, targets, torch.zeros(3, dtype=torch.long))
    context = BatchContext(model, factuals, torch.zeros(3, dtype=torch.long), batch,
                           SearchConstraints.unconstrained(2), TrainConfig(), 0)
    value = gradient_supervision_term(context)

    def cos(a, b):
        return float(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b))

    expected = ((1 - cos([1.0, 2.0], [1.0, 0.0])) + (1 - cos([-1.0, 0.5], [0.0, 2.0]))) / 2
    assert value.item() == pytest.approx(expected, rel=1e-6)
    value.backward()  # second order: the term trains the weights
    assert model.weight.grad is not None and torch.isfinite(model.weight.grad).all()
    assert model.weight.grad.abs().sum() > 0


def test_blockwise_ct_takes_two_optimiser_steps_per_batch(tmp_path):
    runs = {}
    for strategy in ("ct", "ct_blockwise"):
        runs[strategy] = tmp_path / strategy
        ct_plugin.train("moons", strategy=strategy, epochs=2, batch_size=3000, nce=50, seed=0,
                        dataset_options={"n_samples": 3750}, out=runs[strategy], quiet=True)
    steps = {strategy: {int(state["step"]) for state in load_checkpoint(path, "cpu")["optimiser"]["state"].values()}
             for strategy, path in runs.items()}
    assert steps == {"ct": {2}, "ct_blockwise": {4}}  # 2 epochs x 1 batch: one step each, or yloss then the rest
    assert ct_plugin.load_run(runs["ct_blockwise"]).config.strategy == "ct_blockwise"


def test_flipped_strategy_counts_only_misclassified_nascent_examples():
    model = _linear([[1.0], [-1.0]])  # class 0 for x > 0
    x_adv = torch.tensor([[0.5], [-0.5], [-2.0], [1.0]])
    labels = torch.tensor([0, 0, 1, 1])  # rows 1 and 3 are misclassified: adversarial; rows 0 and 2 are not
    batch = CounterfactualBatch(x_adv, x_adv, x_adv, x_adv, 1 - labels, labels)
    marked = FlippedAdversarialStrategy().after_search(batch, None, model)
    assert marked.adversarial_mask.tolist() == [False, True, False, True]
    context = BatchContext(model, x_adv, labels, marked, SearchConstraints.unconstrained(1), TrainConfig(), 0)
    logits = model(x_adv)
    by_hand = torch.nn.functional.cross_entropy(logits[[1, 3]], labels[[1, 3]])
    assert adversarial_term(context).item() == pytest.approx(by_hand.item(), rel=1e-6)


def test_recourse_term_takes_one_first_order_step_on_the_actionable_features():
    model = _linear([[1.0, 1.0], [-1.0, 2.0]])  # desired class 1; d logit1-logit0 / dx = (-2, 1)
    x = torch.tensor([[1.0, 0.0], [-3.0, 3.0]])  # row 0 is denied class 1, row 1 already gets it
    constraints = SearchConstraints(torch.full((2,), -10.0), torch.full((2,), 10.0), torch.tensor([0, 3]), [])
    # feature 0 may move both ways, feature 1 is immutable (code 3 = none)
    context = BatchContext(model, x, torch.tensor([0, 1]), None, constraints, TrainConfig(epsilon=0.5), 0, desired=1)
    value = recourse_term(context)
    acted = torch.tensor([[1.0 - 0.5, 0.0]])  # towards class 1 feature 0 falls; feature 1 may not move
    by_hand = torch.nn.functional.cross_entropy(model(acted), torch.tensor([1]))
    assert value.item() == pytest.approx(by_hand.item(), rel=1e-6)
    with pytest.raises(CTPluginError, match="loss term 'recourse' needs the dataset's desired class"):
        ct_plugin.train("moons", strategy="vanilla", lambda_recourse=1.0, epochs=1, quiet=True)
    with pytest.raises(CTPluginError, match="loss term 'recourse' needs the dataset's desired class"):
        ct_plugin.train("moons", strategy="recourse", epochs=1, quiet=True)


def test_augmentation_term_is_the_cross_entropy_of_the_counterfactuals_against_their_targets():
    model = _linear([[1.0], [-1.0]])
    x_cf = torch.tensor([[0.5], [-2.0], [1.0]])
    targets = torch.tensor([1, 1, 0])
    batch = CounterfactualBatch(x_cf, x_cf, x_cf, x_cf, targets, 1 - targets)
    context = BatchContext(model, x_cf, 1 - targets, batch, SearchConstraints.unconstrained(1), TrainConfig(), 0)
    logits = [[0.5, -0.5], [-2.0, 2.0], [1.0, -1.0]]
    by_hand = np.mean([math.log(sum(math.exp(v) for v in row)) - row[t] for row, t in zip(logits, [1, 1, 0])])
    assert augmentation_term(context).item() == pytest.approx(by_hand, rel=1e-6)


def test_cat_pretrains_then_fine_tunes_on_the_counterfactuals_of_uncertain_rows(tmp_path):
    from ct_plugin.plugins.registry import get_registry

    strategy = get_registry().build("strategy", "cat")
    assert (set(strategy.terms), strategy.factual_selector, strategy.burnin) == ({"augment"}, "entropy", 0.5)
    assert strategy.active_terms(1, 4) == {"yloss"} and strategy.active_terms(2, 4) == {"yloss", "augment"}
    result = ct_plugin.train("moons", strategy="cat", epochs=4, batch_size=500, nce=100, seed=0,
                             dataset_options={"n_samples": 1000}, out=tmp_path / "cat", quiet=True)
    assert [("augment" in row) for row in result.log] == [False, False, True, True]
    assert all(math.isfinite(row["augment"]) for row in result.log[2:])


@pytest.mark.slow
@pytest.mark.parametrize("settings", [{"strategy": "ct_blockwise"}, {"strategy": "ct_flipped"}, {"strategy": "cat"},
                                      {"factual_selector": "entropy"}, {"factual_selector": "misclassified"},
                                      {"lambda_gradsup": 0.5}, {"strategy": "vanilla", "lambda_recourse": 1.0},
                                      {"strategy": "recourse"}, {"strategy": "counternet"},
                                      {"strategy": "energy"}])
def test_each_lead_trains_end_to_end_on_a_real_table(settings, tmp_path):
    from tests.realdata import real_data_dir

    spec = ct_plugin.load_dataset("credit_default", data_dir=real_data_dir("credit_default.csv"), max_rows=3000)
    result = ct_plugin.train(spec, epochs=4, nce=300, batch_size=500, out=tmp_path / "run", quiet=True, **settings)
    last = result.log[-1]
    assert math.isfinite(last["yloss"]) and last["test_accuracy"] > 0.6
    if "lambda_gradsup" in settings:
        assert 0.0 <= last["gradsup"] <= 2.0  # 1 - cos lies in [0, 2]


def test_tune_takes_the_strategy_as_a_grid_axis(tmp_path):
    from ct_plugin.tuning.axes import validate_grid

    assert validate_grid({"strategy": ["ct", "ct_blockwise"]}) == {"strategy": ["ct", "ct_blockwise"]}
    with pytest.raises(CTPluginError, match=r"strategy: \['vanilla'\] not allowed.*vanilla is the baseline"):
        validate_grid({"strategy": ["vanilla", "ct"]})
    with pytest.raises(CTPluginError, match=r"tuning axis strategy: \['ct_blockwsie'\] not allowed; choose from"):
        validate_grid({"strategy": ["ct_blockwsie"]})
    result = ct_plugin.tune("moons", grid={"strategy": ["ct", "ct_blockwise"], "tau": [0.75]}, epochs=3, seeds=1,
                            out=tmp_path / "tune", progress=False, dataset_options={"n_samples": 600})
    assert set(result.table.strategy) == {"ct", "ct_blockwise"}  # each configuration trained its strategy
    assert result.ct_config.strategy == result.table.loc[result.table.chosen, "strategy"].item()


def test_counternet_losses_by_hand_on_a_tiny_generator():
    from ct_plugin.generators.counternet import GeneratorNetwork, generator_losses

    model = _linear([[1.0, 0.0], [0.0, 1.0]])  # logits = x
    network = GeneratorNetwork(2, 2, hidden=3)
    with torch.no_grad():  # g outputs a constant step (0.5, -1): last layer's weights 0, bias the step
        network.net[-1].weight.zero_()
        network.net[-1].bias.copy_(torch.tensor([0.5, -1.0]))
    x = torch.tensor([[0.0, 0.0], [1.0, 2.0]])
    targets = torch.tensor([0, 1])
    constraints = SearchConstraints(torch.full((2,), -10.0), torch.full((2,), 10.0), torch.tensor([0, 3]), [])
    validity, proximity = generator_losses(model, network, x, targets, constraints)
    cf = torch.tensor([[0.5, 0.0], [1.5, 2.0]])  # feature 1 is immutable (code 3): it keeps the factual's value
    p = torch.softmax(cf, dim=1)
    by_hand = (((p - torch.tensor([[1.0, 0.0], [0.0, 1.0]])) ** 2).sum(dim=1)).mean()
    assert validity.item() == pytest.approx(by_hand.item(), rel=1e-6)
    assert proximity.item() == pytest.approx((0.5 + 0 + 0.5 + 0) / 4)  # per feature: the elementwise mean


def test_counternet_trains_classifier_and_generator_block_wise_and_resumes(tmp_path):
    out = tmp_path / "cn"
    spec = ct_plugin.load_dataset("moons", n_samples=600)
    result = ct_plugin.train(spec, strategy="counternet", epochs=2, batch_size=480, seed=0, out=out, quiet=True)
    assert {"cn_validity", "cn_proximity"} <= set(result.log[-1]) and result.log[-1]["mature"] is None
    state = load_checkpoint(out, "cpu")
    steps = {int(s["step"]) for s in state["optimiser"]["state"].values()}
    assert steps == {4}  # 2 epochs x 1 batch x (yloss, then validity + proximity)
    generator = state["strategy"]["network"]
    assert {int(s["step"]) for s in state["strategy"]["optimiser"]["state"].values()} == {2}
    resumed = ct_plugin.train(spec, strategy="counternet", epochs=3, batch_size=480, seed=0, out=out, quiet=True,
                              resume=True)
    assert len(resumed.log) == 3
    again = load_checkpoint(out, "cpu")["strategy"]["network"]
    assert any(not torch.equal(generator[k], again[k]) for k in generator)  # g kept training from its checkpoint
    with pytest.raises(CTPluginError, match="loss terms cn_validity, cn_proximity need strategy counternet"):
        ct_plugin.train(spec, strategy="ct", lambda_cn_validity=0.2, epochs=1, out=tmp_path / "bad", quiet=True)


def test_counternet_generator_explains_another_model_after_training_against_it(tmp_path):
    from ct_plugin.generators.counternet import CounterNetGenerator

    spec = ct_plugin.load_dataset("moons", n_samples=600)
    model = ct_plugin.train(spec, strategy="vanilla", epochs=20, batch_size=50, seed=0, quiet=True).model.cpu()
    before = [p.detach().clone() for p in model.parameters()]
    generator = CounterNetGenerator(epochs=30)
    generator.fit(spec)
    X = torch.as_tensor(spec.X_test[:100], dtype=torch.float32)
    targets = 1 - model(X).argmax(dim=1)
    result = generator.search(model, X, targets, SearchConstraints.from_spec(spec), tau=0.5, max_steps=0, epsilon=0.0)
    assert result.converged.float().mean() > 0.8 and (result.steps == 1).all()
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))  # the model is untouched
    assert generator.network_for(model, SearchConstraints.from_spec(spec)) is generator._trained[3]  # reused
    with pytest.raises(CTPluginError, match="counternet: epochs must be a positive integer"):
        CounterNetGenerator(epochs=0)


def test_tune_judges_cost_when_asked_and_recommends_a_method_only_within_it(tmp_path, capsys):
    from ct_plugin.cli import main
    from ct_plugin.tuning.selection import SelectionRule, apply_rule, choose

    base = {"vanilla_accuracy": 0.9, "vanilla_validity": 0.95, "ip_star_reduction_pct": 0.0, "ip_significant": True,
            "accuracy": 0.9, "mature_last": 0.8, "validity": 0.95}
    table = pd.DataFrame([{**base, "cell": "costly", "ip_reduction_pct": 30.0, "cost_reduction_pct": -25.0},
                          {**base, "cell": "cheap", "ip_reduction_pct": 10.0, "cost_reduction_pct": -3.0},
                          {**base, "cell": "unmeasured", "ip_reduction_pct": 20.0, "cost_reduction_pct": math.nan}])
    assert choose(apply_rule(table, SelectionRule())).index == 0  # cost not judged: the best IP wins
    judged = apply_rule(table, SelectionRule(max_cost_increase=0.05))
    assert judged["cost_ok"].tolist() == [False, True, False]
    assert "cost of recourse 25.00% above vanilla's (rule: at most 5%)" in judged.reasons[0]
    assert judged.violation_pts.tolist() == [20.0, 0.0, 100.0]
    assert choose(judged).index == 1
    assert "cost of recourse at most 5% above vanilla's" in SelectionRule(max_cost_increase=0.05).describe()
    with pytest.raises(CTPluginError, match="max_cost_increase must be None or a fraction >= 0"):
        SelectionRule(max_cost_increase=-0.1).validate()
    out = tmp_path / "tune"
    argv = ["tune", "--dataset", "moons", "--dataset-option", "n_samples=600", "--epochs", "3", "--seeds", "1",
            "--grid-strategy", "ct,ct_flipped", "--grid-tau", "0.75", "--max-cost-increase", "0", "--out", str(out),
            "--quiet", "--no-rescue"]
    assert main(argv) in (0, 1)
    written = pd.read_csv(out / "tune.csv")
    assert {"cost_reduction_pct", "cost_ok"} <= set(written.columns) and written.cost_reduction_pct.notna().all()
    assert (written.cost_ok == (written.cost_reduction_pct >= 0)).all()


def test_the_recommendation_names_the_strategy_the_grid_chose():
    from ct_plugin.tuning.report import _recommendation_line
    from ct_plugin.tuning.selection import Choice

    chosen = Choice(index=1, passed=True, message="", recommend_ct=True)
    best = pd.Series({"strategy": "ct_blockwise", "ip_reduction_pct": 12.5})
    assert "**Recommendation: CT** (strategy `ct_blockwise`, chosen by the grid's strategy axis)" in (
        _recommendation_line(chosen, None, best))
    assert _recommendation_line(chosen, None, pd.Series({"ip_reduction_pct": 12.5})).startswith(
        "**Recommendation: CT** with the configuration above")
