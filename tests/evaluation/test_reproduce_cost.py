"""The cost decomposition of `reproduce`'s report against hand-computed values."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from ct_plugin.reproduce.cost import cost_rows, cost_section


def _evaluation(base: float, free: float, protected: float, reductions: tuple[float, float],
                significant: tuple[bool, bool]) -> dict[str, pd.DataFrame]:
    """The comparison and attribution frames of one seed's paper-protocol evaluation."""
    rows = []
    for run, mean, reduction, sig in (("ct_free", free, reductions[0], significant[0]),
                                      ("ct_protected", protected, reductions[1], significant[1])):
        rows += [{"reference": "baseline", "run": run, "metric": "cost", "setting": "protected",
                  "reference_mean": base, "run_mean": mean, "reduction_pct": reduction, "significant": sig},
                 {"reference": "baseline", "run": run, "metric": "validity_protected", "setting": "protected",
                  "reference_mean": 0.9, "run_mean": 0.8 if run == "ct_protected" else 0.85,
                  "reduction_pct": 0.0, "significant": False}]
    attribution = pd.DataFrame({"run": ["baseline", "ct_free", "ct_protected"],
                                "protected_share": [0.3, 0.25, 0.1], "protected_features": "age",
                                "uniform_share": 0.2})
    return {"paper": {"comparison": pd.DataFrame(rows), "attribution": attribution}}


@pytest.fixture()
def frames():
    return {
        ("gmsc", "", "tune", 0): _evaluation(2.0, 2.5, 2.0, (-25.0, 0.0), (True, False)),
        ("gmsc", "", "tune", 1): _evaluation(2.0, 2.0, 1.5, (0.0, 25.0), (False, True)),
        # where tune recommends vanilla, its best CT configuration (tune_ct) is what the section shows
        ("adult", "", "tune", 0): _evaluation(1.0, 1.0, 1.0, (0.0, 0.0), (False, False)),
        ("adult", "", "tune_ct", 0): _evaluation(1.0, 0.8, 0.6, (20.0, 40.0), (True, True)),
        ("adult", "ablation", "tune", 0): _evaluation(9.0, 9.0, 9.0, (0.0, 0.0), (False, False)),
    }


def test_cost_rows_split_ct_from_protection(frames):
    rows = cost_rows(frames, ["gmsc", "adult"], ["tune"], kept_vanilla=["adult"]).set_index("data")
    gmsc = rows.loc["gmsc"]
    assert gmsc.source == "tune"
    assert (gmsc.cost_base, gmsc.cost_free, gmsc.cost_protected) == pytest.approx((2.0, 2.25, 1.75))
    assert gmsc.ct_unprotected_pct == pytest.approx(-12.5)  # mean of the per-seed reductions
    assert gmsc.ct_protected_pct == pytest.approx(12.5)
    # protection alone: 1 - 2.0/2.5 = 20% and 1 - 1.5/2.0 = 25%
    assert gmsc.protection_pct == pytest.approx(22.5)
    assert gmsc.protection_sd == pytest.approx(math.sqrt(12.5))
    assert gmsc.ct_unprotected == "-12.5 ± 17.7 (0+/1-)"
    assert gmsc.ct_protected == "12.5 ± 17.7 (1+/0-)"
    assert (gmsc.validity_base, gmsc.validity_protected) == pytest.approx((0.9, 0.8))
    assert (gmsc.ig_base, gmsc.ig_protected, gmsc.ig_uniform) == pytest.approx((0.3, 0.1, 0.2))
    adult = rows.loc["adult"]
    assert adult.source == "tune_ct"
    assert adult.protection_pct == pytest.approx(25.0)
    assert math.isnan(adult.protection_sd)  # one seed: no spread
    assert adult.ct_protected == "40.0*"


def test_cost_section_states_the_averages(frames):
    lines, raw = cost_section(frames, ["gmsc", "adult"], ["tune"], kept_vanilla=["adult"])
    text = "\n".join(lines)
    assert len(raw) == 2
    assert "## Where the cost column comes from" in text
    # CT unprotected: mean(-12.5, 20) = 3.75; protection: mean(22.5, 25) = 23.75; column: mean(12.5, 40) = 26.25
    assert "CT unprotected averages 3.75% against the baseline (it raises the cost on 1: gmsc)" in text
    assert "protecting the feature averages 23.8% against ct_free" in text
    assert "the cost column averages 26.2%" in text
    assert "| `tune`'s best CT (vanilla recommended) | adult |" in text


def test_cost_section_is_empty_without_evaluations():
    lines, raw = cost_section({}, ["gmsc"], ["tune", "paper"])
    assert lines == [] and raw.empty
