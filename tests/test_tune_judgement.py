"""tune's judgement: a significant IP gain before CT, a baseline that must be measurable, the validation split's
accuracy resolution, maturity on the full training split, and a figure that says what it shows."""

from __future__ import annotations

import json
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import ct_plugin
from ct_plugin import cli
from ct_plugin.evaluation.protocol.ratios import ratio_comparison
from ct_plugin.training.health import mature_share, tuned_maturity_problem
from ct_plugin.tuning.report import figure_title, grid_figure
from ct_plugin.tuning.seeds import mean_figures
from ct_plugin.tuning.selection import (
    SelectionRule,
    apply_rule,
    baseline_problems,
    choose,
    resolution_warning,
    unmeasured,
)


def criteria(*rows: dict) -> pd.DataFrame:
    """A criteria table; vanilla accuracy 0.90 and validity 0.95; every row passes unless it says otherwise."""
    base = {"vanilla_accuracy": 0.90, "vanilla_validity": 0.95, "ip_star_reduction_pct": 0.0, "accuracy": 0.90,
            "mature_last": 0.8, "validity": 0.95}
    return pd.DataFrame([{**base, "cell": f"c{i}", **row} for i, row in enumerate(rows)])


# ------------------------------------------------------------------ 1. a significant IP gain before CT
def test_an_insignificant_ip_reduction_recommends_vanilla_and_says_why():
    # the two tables: 2.10% and 0.48%, both not significant, both used to select CT
    for reduction in (2.10, 0.48):
        table = criteria({"ip_reduction_pct": reduction, "ip_significant": False},
                         {"ip_reduction_pct": -1.0, "ip_significant": False})
        choice = choose(apply_rule(table, SelectionRule()), confidence=0.99)
        assert choice.passed and not choice.recommend_ct and choice.recommendation == "vanilla"
        assert choice.index == 0
        assert f"IP reduction {reduction:.2f}% is not significant at the protocol's 99% interval" in choice.message
        assert "vanilla recommended" in choice.message
    no_level = choose(apply_rule(criteria({"ip_reduction_pct": 2.1, "ip_significant": False}), SelectionRule()))
    assert "is not significant at the protocol's interval" in no_level.message


def test_a_significant_reduction_wins_over_a_larger_noisy_one_and_recommends_ct():
    table = criteria({"ip_reduction_pct": 9.0, "ip_significant": False},
                     {"ip_reduction_pct": 4.0, "ip_significant": True},
                     {"ip_reduction_pct": 6.0, "ip_significant": True, "accuracy": 0.80})  # fails accuracy
    choice = choose(apply_rule(table, SelectionRule()), confidence=0.95)
    assert (choice.index, choice.recommend_ct, choice.recommendation) == (1, True, "ct")
    assert "1 with a validation IP reduction significant at the protocol's 95% interval" in choice.message
    assert "IP reduction 4.00% (significant)" in choice.message


def test_a_significant_ip_increase_is_no_reason_for_ct():
    choice = choose(apply_rule(criteria({"ip_reduction_pct": -4.0, "ip_significant": True}), SelectionRule()))
    assert not choice.recommend_ct and "no passing configuration reduces IP" in choice.message


def test_significance_is_the_protocols_interval_over_real_rounds():
    reference = np.array([1.00, 1.10, 0.90, 1.05])
    noisy = reference * np.array([0.96, 0.97, 1.03, 0.96])   # 2% lower on average, one round higher
    steady = reference * 0.9                                 # 10% lower in every round
    rows = []
    for run in (noisy, steady):
        stats = ratio_comparison(reference, run, confidence=0.99)
        rows.append({"ip_reduction_pct": stats["reduction_pct"], "ip_significant": stats["significant"]})
    assert rows[0]["ip_reduction_pct"] == pytest.approx(2.0) and not rows[0]["ip_significant"]
    assert rows[1]["ip_reduction_pct"] == pytest.approx(10.0) and rows[1]["ip_significant"]
    assert not choose(apply_rule(criteria(rows[0]), SelectionRule())).recommend_ct
    choice = choose(apply_rule(criteria(*rows), SelectionRule()))
    assert choice.recommend_ct and choice.index == 1


def test_significance_over_seeds_needs_every_seed_in_the_same_direction():
    better = {"ip_reduction_pct": 6.0, "ip_significant": True}
    worse = {"ip_reduction_pct": -3.0, "ip_significant": True}
    assert mean_figures([better, better])["ip_significant"] is True
    mixed = mean_figures([better, worse])
    assert mixed["ip_reduction_pct"] == 1.5 and mixed["ip_significant"] is False


# ------------------------------------------------------------------ 2. a baseline that cannot be measured
def test_baseline_problems_name_each_cause():
    rule = SelectionRule()
    fine = {"seed": 0, "accuracy": 0.9, "validity": 0.95, "ip": 1.2}
    assert baseline_problems([fine, {**fine, "seed": 1}], 0.5, rule) == []
    dead = baseline_problems([fine, {"seed": 1, "accuracy": 0.5, "validity": 0.0, "ip": math.nan}], 0.5, rule)
    assert dead == [
        "seed 1: vanilla validation accuracy 50.0% is no better than always predicting the majority class (50.0%)",
        "seed 1: vanilla validation validity 0.0% is below 10%",
        "seed 1: vanilla IP is undefined (no valid counterfactuals)",
    ]
    assert baseline_problems([{**fine, "validity": 0.09}], 0.5, rule) == [
        "seed 0: vanilla validation validity 9.0% is below 10%"]
    # a converged baseline may validate under half of its counterfactuals (circles: 48%): still measurable
    assert baseline_problems([{**fine, "accuracy": 1.0, "validity": 0.48}], 0.5, rule) == []
    assert baseline_problems([{**fine, "validity": 0.3}], 0.5, SelectionRule(min_baseline_validity=0.5)) != []
    # an imbalanced table: 92% accuracy is what always answering the majority class gets
    assert "majority class (93.0%)" in baseline_problems([{**fine, "accuracy": 0.92}], 0.93, rule)[0]
    assert baseline_problems([{"seed": 0, "accuracy": 0.9}], 0.5, rule) == []  # not evaluated: not judged
    choice = unmeasured(0, True, dead)
    assert choice.recommendation == "none" and not choice.recommend_ct
    assert "NO RECOMMENDATION" in choice.message and "validity 0.0% is below 10%" in choice.message
    assert "more --epochs" in choice.message
    with pytest.raises(ct_plugin.CTPluginError, match="min_baseline_validity"):
        SelectionRule(min_baseline_validity=2.0).validate()


def test_tune_with_an_untrained_baseline_recommends_nothing_and_writes_no_choice(tmp_path, capsys):
    out = tmp_path / "tune"
    out.mkdir()
    (out / "chosen.json").write_text(json.dumps({"train": {"strategy": "ct"}, "tune": {"recommendation": "ct"}}))
    # one epoch at lr 1e-6: the vanilla model is its random initialisation
    argv = ["tune", "--dataset", "moons", "--dataset-option", "n_samples=300", "--epochs", "1", "--lr", "1e-6",
            "--batch-size", "40", "--nce", "30", "--max-steps", "10", "--seeds", "1", "--grid-tau", "0.5",
            "--grid-lambda-reg", "0.1", "--rounds", "2", "--n-factuals", "10", "--out", str(out), "--quiet"]
    with pytest.warns(RuntimeWarning, match="48 rows"):
        assert cli.main(argv) == 1
    captured = capsys.readouterr()
    assert "recommendation: NONE" in captured.out and "could not be measured" in captured.out
    assert "no better than always predicting the majority class" in captured.out and "--epochs" in captured.out
    assert "VANILLA" not in captured.out and "does not help" not in captured.out
    assert not (out / "chosen.json").exists()  # the stale choice is gone: nothing to `train --config`
    text = (out / "tune.md").read_text()
    assert "**Recommendation: none.**" in text and "No `chosen.json` was written" in text
    assert "**Warning:** the validation split has 48 rows" in text  # item 3, recorded in the markdown
    table = pd.read_csv(out / "tune.csv")
    assert len(table) == 1  # no rescue stage trains against a baseline that cannot be measured


# ------------------------------------------------------------------ 3. the validation split's resolution
def test_a_validation_split_too_small_for_the_accuracy_tolerance_is_flagged():
    warning = resolution_warning(28, SelectionRule())
    assert "28 rows" in warning and "3.57 points" in warning and "1-point tolerance" in warning
    assert "at least 100 validation rows" in warning
    assert resolution_warning(100, SelectionRule()) is None and resolution_warning(600, SelectionRule()) is None
    assert resolution_warning(28, SelectionRule(max_accuracy_drop=0.05)) is None  # 3.6 < 5 points
    assert resolution_warning(28, SelectionRule(max_accuracy_drop=0.0)) is None   # no extra error, as asked


# ------------------------------------------------------------------ 4. maturity on the full training split
def _log(mature: float, n: int = 12) -> list[dict]:
    return [{"epoch": i + 1, "mature": mature} for i in range(n)]


def test_tuned_maturity_problem_names_both_figures_and_the_rule():
    assert mature_share(_log(0.3, 5) + _log(0.8, 10), 10) == pytest.approx(0.8)
    assert mature_share([{"epoch": 1, "mature": None}]) is None
    problem = tuned_maturity_problem(_log(0.3), 0.5, 10, tuned=0.72)
    assert "matured 30.0%" in problem and "last 10 epochs" in problem and "at least 50%" in problem
    assert "tune measured 72.0%" in problem
    assert tuned_maturity_problem(_log(0.6), 0.5, 10, tuned=0.72) is None
    assert tuned_maturity_problem([{"epoch": 1, "mature": None}], 0.5) is None  # vanilla: nothing to compare


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """One small real tune run whose chosen.json trains CT (always_ct)."""
    out = tmp_path_factory.mktemp("tuned") / "tune"
    with pytest.warns(RuntimeWarning, match="48 rows"):
        result = ct_plugin.tune("moons", out=out, dataset_options={"n_samples": 300}, epochs=4, batch_size=40,
                                nce=30, max_steps=10, seeds=1, grid={"tau": [0.5], "lambda_reg": [0.1, 0.5]},
                                protocol={"rounds": 2, "n_factuals": 10}, progress=False, rescue=False,
                                always_ct=True)
    return result


def test_train_from_a_tune_choice_warns_when_it_does_not_mature_on_the_full_split(tuned, tmp_path, capsys):
    chosen = tuned.paths["config"]
    meta = json.loads(chosen.read_text())["tune"]
    assert json.loads(chosen.read_text())["train"]["strategy"] == "ct"
    assert meta["warnings"] == tuned.warnings and "48 rows" in meta["warnings"][0]  # item 3, in chosen.json
    best = tuned.table[tuned.table.chosen].iloc[0]
    assert meta["ct_maturity"] == pytest.approx(best.mature_last)
    # the choice as tuned: it matures on the full split, no warning
    capsys.readouterr()
    assert cli.main(["train", "--config", str(chosen), "--epochs", "2", "--out", str(tmp_path / "ok"),
                     "--quiet"]) == 0
    share = mature_share(ct_plugin.load_run(tmp_path / "ok").log)
    assert (share < 0.5) == ("below tune's rule" in capsys.readouterr().err)
    # trained so that no search matures (tau near 1, one step): the warning names both figures and the rule
    with pytest.warns(RuntimeWarning, match="matured"):  # the loop's own, generic 20% warning
        assert cli.main(["train", "--config", str(chosen), "--epochs", "2", "--tau", "0.9999", "--max-steps", "1",
                         "--out", str(tmp_path / "idle"), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "warning:" in err and "matured 0.0% of its in-training counterfactuals over the last 2 epochs" in err
    assert "below tune's rule of at least 50%" in err
    assert f"tune measured {100 * best.mature_last:.1f}% on its carved training rows" in err


# ------------------------------------------------------------------ 5. the figure says what it shows
def _texts(fig) -> tuple[str, list[str], list[str]]:
    ax = fig.axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    return ax.get_title(loc="left"), legend, [c.get_text() for c in ax.texts]


@pytest.mark.parametrize("recommendation", ["ct", "vanilla", "none"])
def test_the_figure_marks_what_its_title_says(tuned, recommendation):
    table = tuned.table.assign(ip_significant=recommendation == "ct")
    fig = grid_figure(table, ["tau", "lambda_reg"], f"title: {recommendation}", 0.05, recommendation)
    try:
        title, legend, labels = _texts(fig)
        number = int(np.flatnonzero(table.chosen.to_numpy())[0]) + 1
        assert title == f"title: {recommendation}"
        assert "vanilla baseline (IP reduction 0)" in legend
        if recommendation == "ct":
            assert f"recommended: CT configuration #{number}" in legend
            assert not any("recommended: vanilla" in t for t in legend)
        elif recommendation == "vanilla":
            assert "recommended: vanilla" in legend
            assert f"best CT configuration #{number} (not recommended)" in legend
        else:
            assert f"best CT configuration #{number} (nothing recommended)" in legend
            assert not any(t.startswith("recommended") for t in legend)
        # points carry short numbers only; the configurations are named in the list beside the plot
        assert all(len(t) <= 8 for t in labels)
        listing = fig.axes[1].texts[0].get_text()
        assert "tau=0.5 lambda_reg=0.1" in listing and "<- best CT" in listing
        # every label lies inside the figure
        fig.canvas.draw()
        box = fig.bbox
        for text in fig.axes[0].texts:
            extent = text.get_window_extent()
            assert box.x0 <= extent.x0 and extent.x1 <= box.x1 and box.y0 <= extent.y0 and extent.y1 <= box.y1
    finally:
        plt.close(fig)


def test_tune_png_title_follows_the_recommendation(tuned):
    text = tuned.paths["markdown"].read_text()
    assert tuned.paths["figure"].is_file()
    assert f"**Recommendation: {'CT' if tuned.recommendation == 'ct' else 'vanilla'}**" in text
    best = tuned.table[tuned.table.chosen].iloc[0]
    choice = choose(apply_rule(tuned.table, SelectionRule()))  # the same rows, the same rule: the same choice
    assert choice.recommendation == tuned.recommendation
    title = figure_title("moons", choice, best, "x", 1)
    assert ("recommendation CT" in title) == choice.recommend_ct
    assert ("recommendation VANILLA" in title) == (not choice.recommend_ct)
