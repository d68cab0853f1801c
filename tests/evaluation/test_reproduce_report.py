"""`reproduce`'s target lines against a hand-built table."""

from __future__ import annotations

import pandas as pd

from ct_plugin.reproduce.report import target_lines


def test_target_lines_name_each_miss_with_its_measured_size():
    raw = pd.DataFrame([
        {"data": "gmsc", "ip_mean": 10.0, "ip_star_mean": 30.0, "cost_mean": 20.0, "ip_worse": 0, "ip_seeds": 3,
         "accuracy_base": 0.767, "accuracy_ct": 0.7563, "accuracy_base_sd": 0.0046,
         "validity_base": 0.97, "validity_ct": 1.0},
        {"data": "adult", "ip_mean": 30.0, "ip_star_mean": 30.0, "cost_mean": 20.0, "ip_worse": 2, "ip_seeds": 3,
         "accuracy_base": 0.85, "accuracy_ct": 0.85, "accuracy_base_sd": 0.001,
         "validity_base": 0.99, "validity_ct": 0.90},
    ])
    averages, majority, accuracy, validity = target_lines(raw)
    assert "ours 20.00 / 30.00 / 20.00: IP met, IP* met, cost met" in averages
    assert majority.endswith("**not met** (adult)")
    assert accuracy.endswith("**not met** (lower by more on gmsc (1.07 points; the baseline's sd over seeds 0.46))")
    assert validity.endswith("**not met** (not on adult)")


def test_target_lines_of_one_seed_give_no_spread():
    raw = pd.DataFrame([{"data": "gmsc", "ip_mean": 0.0, "ip_star_mean": 0.0, "cost_mean": 0.0, "ip_worse": 0,
                         "ip_seeds": 1, "accuracy_base": 0.8, "accuracy_ct": 0.78, "accuracy_base_sd": float("nan"),
                         "validity_base": 0.5, "validity_ct": 0.2}])
    _, majority, accuracy, validity = target_lines(raw)
    assert accuracy.endswith("(lower by more on gmsc (2.00 points))")
    assert majority.endswith(": met") and validity.endswith(": met")  # validity checked only where base >= 0.9
