"""tune's margin: each accuracy and validity drop is judged with its standard error added, so a configuration
on the edge of a tolerance on the validation split does not pass (:mod:`ct_plugin.tuning.criteria`)."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

import ct_plugin
from ct_plugin.errors import CTPluginError
from ct_plugin.evaluation.protocol import ProtocolConfig
from ct_plugin.runs.load import load_model
from ct_plugin.tuning.criteria import (
    paired_difference_se,
    proportion_difference_se,
    seed_mean_se,
    validity_searches,
)
from ct_plugin.tuning.selection import SelectionRule, apply_rule, choose
from ct_plugin.tuning.split import validation_split


def criteria(**row) -> pd.DataFrame:
    """One configuration 0.72 points of accuracy and 4.9 of validity below vanilla (GMSC's validation figures)."""
    base = {"cell": "c0", "vanilla_accuracy": 0.7788, "accuracy": 0.7716, "vanilla_validity": 0.977,
            "validity": 0.928, "mature_last": 0.83, "ip_reduction_pct": 10.9, "ip_significant": True,
            "ip_star_reduction_pct": 49.2}
    return pd.DataFrame([{**base, **row}])


def test_the_standard_errors_follow_their_definitions():
    # paired rows: differences (0, 1, 0, 0): sd 0.5 over sqrt(4)
    assert paired_difference_se(np.array([1, 1, 0, 1]), np.array([1, 0, 0, 1])) == pytest.approx(0.25)
    assert math.isnan(paired_difference_se(np.array([1]), np.array([0])))
    assert proportion_difference_se(0.9, 0.5, 100) == pytest.approx(math.sqrt((0.09 + 0.25) / 100))
    assert math.isnan(proportion_difference_se(float("nan"), 0.5, 100))
    # two seeds that agree: their sampling error; two that disagree: their spread
    assert seed_mean_se([0.01, 0.01], [0.004, 0.004]) == pytest.approx(math.sqrt(2 * 0.004 ** 2) / 2)
    assert seed_mean_se([0.01, 0.05], [0.002, 0.002]) == pytest.approx(np.std([0.01, 0.05], ddof=1) / math.sqrt(2))
    assert seed_mean_se([0.03], [0.002]) == pytest.approx(0.002)
    assert math.isnan(seed_mean_se([float("nan")], [0.1]))


def test_validity_counts_the_searches_that_can_differ():
    protocol = ProtocolConfig(rounds=4, n_factuals=100, lambda_energies=(0.1, 0.5, 1.0, 5.0, 10.0)).validate()
    spec = ct_plugin.load_dataset("moons", n_samples=2000)
    big = validation_split(spec, 1000)
    small = validation_split(spec, 50)
    assert validity_searches(protocol, big) == 4 * 5 * 100
    assert validity_searches(protocol, small) == 5 * 50  # one row searched twice with one energy: one outcome


def test_a_drop_on_the_edge_fails_with_its_margin_and_the_reason_says_so():
    edge = criteria(accuracy_se=0.0088, validity_se=0.0063)
    assert bool(apply_rule(edge, SelectionRule(margin_se=0.0))["pass"].iloc[0])
    judged = apply_rule(edge, SelectionRule())
    assert not bool(judged["pass"].iloc[0])
    assert not bool(judged["accuracy_ok"].iloc[0]) and not bool(judged["validity_ok"].iloc[0])
    reason = judged["reasons"].iloc[0]
    assert "with the 1-SE margin of 0.88 points" in reason and "with the 1-SE margin of 0.63 points" in reason
    # the shortfall counts the margin: 0.72 + 0.88 - 1 = 0.60 points of accuracy, 4.9 + 0.63 - 5 of validity
    assert judged["violation_pts"].iloc[0] == pytest.approx(0.60 + 0.53, abs=1e-6)
    assert not choose(judged).recommend_ct
    # a clear pass keeps passing, and a table without standard errors is judged on the drops alone
    assert bool(apply_rule(criteria(accuracy=0.7788, validity=0.97, accuracy_se=0.0088, validity_se=0.0063),
                           SelectionRule())["pass"].iloc[0])
    assert bool(apply_rule(criteria(), SelectionRule())["pass"].iloc[0])
    assert "margin of 1 standard error(s)" in SelectionRule().describe()
    assert "standard error" not in SelectionRule(margin_se=0).describe()


@pytest.mark.parametrize("margin", [-1.0, 11.0, True, "1"])
def test_an_impossible_margin_is_refused(margin):
    with pytest.raises(CTPluginError, match="margin_se"):
        SelectionRule(margin_se=margin).validate()


def test_a_real_tune_reports_the_standard_errors_of_its_own_models(tmp_path):
    out = tmp_path / "tune"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the small split's resolution warning
        result = ct_plugin.tune("moons", out=out, dataset_options={"n_samples": 400}, epochs=4, batch_size=40,
                                nce=30, max_steps=10, seeds=2, grid={"tau": [0.5], "lambda_reg": [0.25]},
                                protocol={"rounds": 2, "n_factuals": 10}, progress=False, rescue=False)
    row = result.table.iloc[0]
    written = pd.read_csv(out / "tune.csv")
    assert {"accuracy_se", "validity_se"} <= set(written.columns)
    assert math.isfinite(row.accuracy_se) and row.accuracy_se >= 0
    assert math.isfinite(row.validity_se) and row.validity_se > 0
    # the accuracy margin again, from the models on disk: each seed's paired rows, then over the seeds
    carved = validation_split(ct_plugin.load_dataset("moons", n_samples=400), None, 0)
    X, y = torch.as_tensor(carved.X_test, dtype=torch.float32), np.asarray(carved.y_test)
    cells = sorted(p.name for p in (out / "cells").iterdir())
    vanillas = [c for c in cells if c.startswith("moons-vanilla")]
    cts = [c for c in cells if not c.startswith("moons-vanilla")]

    def correct(cell: str) -> np.ndarray:
        with torch.no_grad():
            return load_model(out / "cells" / cell)(X).argmax(dim=1).numpy() == y

    seed_of = {c: json.loads((out / "cells" / c / "config.json").read_text())["seed"] for c in cells}
    pairs = [(c, next(v for v in vanillas if seed_of[v] == seed_of[c])) for c in cts]
    differences = [correct(c).mean() - correct(v).mean() for c, v in pairs]
    errors = [np.std(correct(c).astype(float) - correct(v), ddof=1) / math.sqrt(len(y)) for c, v in pairs]
    within = math.sqrt(sum(e * e for e in errors)) / 2
    between = np.std(differences, ddof=1) / math.sqrt(2)
    assert row.accuracy_se == pytest.approx(max(within, between), rel=1e-6)


def test_the_cli_takes_the_margin_and_names_its_default(capsys):
    from ct_plugin import cli

    with pytest.raises(SystemExit):
        cli.main(["tune", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"(default {SelectionRule.margin_se:g}; 0: the measured drops alone)" in text
    assert cli.main(["tune", "--dataset", "moons", "--margin-se", "-1", "--out", "unused"]) != 0
    assert "margin_se must be a number of standard errors in [0, 10], got -1.0" in capsys.readouterr().err
