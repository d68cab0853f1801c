"""`ct-plugin compare`: the methods and their budgets, the MAD-weighted cost, the aggregation, and a quick run."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from ct_plugin.cli import main
from ct_plugin.compare import METHODS, resolve_methods
from ct_plugin.compare.pick import PICK, pick_method, pick_rows
from ct_plugin.compare.report import as_chosen, averages
from ct_plugin.errors import CTPluginError
from ct_plugin.evaluation.metrics import mad_weights
from ct_plugin.evaluation.protocol.paper import batched_round_metrics
from ct_plugin.plugins.registry import get_registry
from ct_plugin.tuning.axes import validate_grid
from tests.realdata import real_data_dir


def test_every_method_is_registered_and_tuned_within_cts_budget():
    strategies = get_registry().names("strategy")
    for method in METHODS.values():
        assert method.strategy in strategies, method.name
        assert method.configurations <= 9, method.name  # CT's default grid: 3 x 3
        validate_grid(dict(method.grid))  # every axis and value is one tune accepts
    assert [m.name for m in resolve_methods(["cat"])] == ["ct", "cat"]  # CT is always the reference row
    with pytest.raises(CTPluginError, match=r"unknown method\(s\) \['counternett'\] for compare; choose from ct,"):
        resolve_methods(["counternett"])


def test_mad_weights_and_the_weighted_cost_by_hand():
    X = torch.tensor([[0.0, 1.0, 5.0], [1.0, 1.0, 5.0], [3.0, 0.0, 5.0], [4.0, 1.0, 5.0]])
    # feature 0: median 1 (torch takes the lower middle), |x - 1| = 1, 0, 2, 3 -> MAD 1; features 1, 2: MAD 0 -> 1
    assert mad_weights(X).tolist() == [1.0, 1.0, 1.0]
    X = torch.tensor([[0.0], [2.0], [4.0], [10.0]])  # median 2, deviations 2, 0, 2, 8 -> MAD 2
    assert mad_weights(X).tolist() == [0.5]
    factuals = torch.tensor([[[0.0, 0.0], [0.0, 0.0]]])
    counterfactuals = torch.tensor([[[1.0, 2.0], [4.0, 0.0]]])
    out = batched_round_metrics(factuals, counterfactuals, torch.tensor([[0.9, 0.2]]), torch.tensor([1]),
                                {1: torch.zeros(3, 2)}, [5.0], feature_weights=torch.tensor([0.5, 2.0]))
    assert out["cost"].tolist() == [3.0]  # only the valid row: |1| + |2|
    assert out["cost_mad"].tolist() == [0.5 * 1 + 2.0 * 2]
    with pytest.raises(CTPluginError, match="mad_weights: X must be a non-empty"):
        mad_weights(torch.zeros(0, 2))


def test_as_tune_chooses_counts_vanilla_tables_as_the_baseline():
    columns = {"IP": [10.0, 20.0], "IP* (l=5)": [30.0, 40.0], "IP* (l=0.5)": [1.0, 2.0], "cost": [-5.0, 15.0],
               "cost (MAD)": [-4.0, 12.0], "strict IP": [2.0, 4.0]}
    rows = pd.DataFrame({"data": ["a", "b"], "method": ["m", "m"], "chosen": [True, False], "seeds": [3, 3],
                         "worse seeds": [0, 2], "validity base": [0.9, 0.8], "validity": [0.88, 0.6],
                         "accuracy base": [0.8, 0.9], "accuracy": [0.795, 0.85], "robust accuracy base": [0.1, 0.2],
                         "robust accuracy": [0.3, 0.4], **columns})
    best = averages(rows).iloc[0]
    assert best["cost"] == pytest.approx(5.0) and best["IP* (l=5)"] == pytest.approx(35.0)
    assert best["worst accuracy drop"] == pytest.approx(5.0) and best["worst validity drop"] == pytest.approx(20.0)
    assert best["tables worse in most seeds"] == 1  # table b: worse in 2 of 3 seeds
    chosen = averages(as_chosen(rows)).iloc[0]  # table b: tune kept vanilla, so its figures are the baseline's
    assert chosen["cost"] == pytest.approx(-2.5) and chosen["IP* (l=5)"] == pytest.approx(15.0)
    assert chosen["worst accuracy drop"] == pytest.approx(0.5) and chosen["worst validity drop"] == pytest.approx(2.0)
    assert chosen["tables worse in most seeds"] == 0 and chosen["tune chose it on"] == 1


def test_the_pick_takes_the_best_validation_ip_among_recommended_methods_not_costlier_than_vanilla():
    def outcome(recommendation: str, ip: float, cost: float) -> dict:
        return {"recommendation": recommendation, "overrides": {},
                "validation": {"ip_reduction_pct": ip, "cost_reduction_pct": cost}}

    tuned = {("a", "ct"): outcome("ct", 5.0, 2.0), ("a", "fast"): outcome("ct", 30.0, -40.0),
             ("a", "calm"): outcome("ct", 8.0, 0.0), ("a", "peer"): outcome("vanilla", 50.0, 10.0),
             ("b", "ct"): outcome("vanilla", 9.0, 1.0), ("c", "ct"): outcome("ct", 9.0, -1.0),
             ("c", "calm"): outcome("ct", 4.0, float("nan"))}
    names = ["ct", "fast", "calm", "peer"]
    pick = pick_method("a", names, tuned)  # "fast" has the best IP but costlier recourse; "peer" not recommended
    assert pick.method == "calm" and "dropping the costlier `fast`" in pick.reason and "8%" in pick.reason
    assert pick_method("b", names, tuned).method is None  # nothing recommended: vanilla
    assert "recommended no method" in pick_method("b", names, tuned).reason
    no_cheap = pick_method("c", names, tuned)  # recommended, but costlier (a nan cost counts as not cheaper)
    assert no_cheap.method is None and "`ct` -1%" in no_cheap.reason

    columns = {"IP": [1.0, 2.0, 3.0], "IP* (l=5)": [4.0, 5.0, 6.0], "IP* (l=0.5)": [0.0] * 3, "cost": [1.0, 7.0, 3.0],
               "cost (MAD)": [0.0] * 3, "strict IP": [0.0] * 3}
    rows = pd.DataFrame({"data": ["a", "a", "b"], "method": ["ct", "calm", "ct"], "chosen": [True, True, False],
                         "settings": [{"tau": 0.5}, {"tau": 0.9}, {}], "seeds": [3] * 3, "worse seeds": [0] * 3,
                         "validity base": [1.0] * 3, "validity": [0.9, 0.95, 0.8], "accuracy base": [0.9] * 3,
                         "accuracy": [0.9] * 3, "robust accuracy base": [0.5] * 3, "robust accuracy": [0.5] * 3,
                         **columns})
    picked = pick_rows(rows, [pick, pick_method("b", names, tuned)])
    assert list(picked.method) == [PICK, PICK] and list(picked.chosen) == [True, False]
    assert picked.settings[0] == {"method": "calm", "tau": 0.9} and picked.settings[1] == {"method": "vanilla"}
    mean = averages(as_chosen(picked)).iloc[0]  # a: calm's figures; b: vanilla's (0)
    assert mean["cost"] == pytest.approx(3.5) and mean["tune chose it on"] == 1
    assert mean["worst validity drop"] == pytest.approx(5.0)


def test_compare_refuses_bad_input(tmp_path, capsys):
    assert main(["compare", "--methods", "ct,nope", "--out", str(tmp_path)]) == 2
    assert "unknown method(s) ['nope'] for compare" in capsys.readouterr().err
    assert main(["compare", "--datasets", "iris", "--out", str(tmp_path)]) == 2
    assert "unknown dataset(s) ['iris'] for compare" in capsys.readouterr().err
    assert main(["compare", "--seeds", "0", "--out", str(tmp_path)]) == 2
    assert "--seeds must be at least 1" in capsys.readouterr().err
    assert main(["compare", "--max-cost-increase", "-5", "--out", str(tmp_path)]) == 2
    assert "--max-cost-increase must be a percentage >= 0, got -5.0" in capsys.readouterr().err


@pytest.mark.slow
def test_quick_comparison_on_two_tables_and_its_resume(tmp_path, capsys):
    data = real_data_dir("credit_default.csv")
    out, runs_dir = tmp_path / "out", tmp_path / "runs"
    argv = ["compare", "--quick", "--datasets", "circles,credit_default", "--methods", "ct,cat,recourse",
            "--data-dir", str(data), "--out", str(out), "--runs-dir", str(runs_dir), "--workers", "2", "--quiet"]
    assert main(argv) == 0
    report = (out / "strategies.md").read_text()
    for part in ("## Which method to use when", "## The targets", "### circles", "### credit_default",
                 "circles / `recourse`: needs a desired class", "![plausibility against cost]"):
        assert part in report, part
    assert (out / "figures" / "strategies_plausibility_cost.png").stat().st_size > 0
    assert "## The comparison's pick per table" in report and "| pick |" in report
    picks = pd.read_csv(out / "results" / "strategies_pick.csv")
    assert list(picks.data) == ["circles", "credit_default"] and picks.reason.str.len().min() > 10
    rows = pd.read_csv(out / "results" / "strategies.csv")
    assert set(zip(rows.data, rows.method)) == {("circles", "ct"), ("circles", "cat"), ("credit_default", "ct"),
                                                ("credit_default", "cat"), ("credit_default", "recourse")}
    assert rows["cost (MAD)"].notna().all() and rows["strict IP"].notna().all()
    assert (rows["s/epoch"] > 0).all() and rows["peak RSS MB"].notna().all()
    capsys.readouterr()
    assert main(argv) == 0  # a second call reuses every tune, run and evaluation
    err = capsys.readouterr().err
    # 2 baselines + 5 (table, method) pairs x 2 trainings; 5 evaluation groups, all cached
    assert "trained 0 runs, reused 12" in err and "evaluated 5 groups" in err


def test_counternet_generator_in_evaluate(tmp_path):
    import ct_plugin

    runs = []
    for strategy in ("vanilla", "counternet"):
        runs.append(tmp_path / strategy)
        ct_plugin.train("circles", strategy=strategy, epochs=3, batch_size=100, seed=0, out=runs[-1], quiet=True,
                        dataset_options={"n_samples": 400})
    out = tmp_path / "eval"
    argv = ["evaluate", *map(str, runs), "--out", str(out), "--posthoc", "counternet", "--posthoc-option", "epochs=5",
            "--rounds", "3", "--n-factuals", "10", "--epsilons", "0"]
    assert main(argv) == 0
    summary = pd.read_csv(out / "summary.csv")
    validity = summary[summary.metric == "validity"].set_index("run")["mean"]
    assert len(validity) == 2 and validity.notna().all()
    assert "* generator: `counternet` (epochs=5)" in (out / "evaluation.md").read_text()
