"""`reproduce`'s report: target lines against a hand-built table, and its durations."""

from __future__ import annotations

import pandas as pd

from ct_plugin.reproduce.plan import DEFAULT_DATASETS, Plan
from ct_plugin.reproduce.report import paper_lines, target_lines, validation_text, write_report


def _row(data: str, ip: float, ip_star: float = 30.0, cost: float = 20.0, **extra) -> dict:
    return {"data": data, "ip_mean": ip, "ip_star_mean": ip_star, "cost_mean": cost, "ip_worse": 0, "ip_seeds": 3,
            "accuracy_base": 0.85, "accuracy_ct": 0.85, "accuracy_base_sd": 0.001, "validity_base": 0.99,
            "validity_ct": 0.99, **extra}


def test_target_lines_name_each_miss_with_its_measured_size():
    raw = pd.DataFrame([
        _row("gmsc", 10.0, accuracy_base=0.767, accuracy_ct=0.7563, accuracy_base_sd=0.0046, validity_base=0.97,
             validity_ct=1.0),
        _row("adult", 30.0, ip_worse=2, validity_ct=0.90),
    ])
    *paper, majority, accuracy, validity = target_lines(raw)
    # two tables: each beside the paper's own figure, and the averages against the paper's over the same two
    assert paper[0].startswith("* each table against the paper's Table 1 figure for the same table")
    assert "  * gmsc: IP 10.0 / 10.65* (**below the paper's**), IP* 30.0 / 24.75* (at or above the paper's)" in paper[1]
    assert "  * adult (cf-data; paper: UCI Adult): IP 30.0 / 0.19 (at or above the paper's)" in paper[2]
    average = paper[3]
    assert ("averages over the 2 tables run (gmsc, adult), against the paper's figures averaged over the same 2"
            in average)
    assert "not its nine-table average 15.64 / 25.29 / 18.49" in average
    # the paper over gmsc and adult: IP (10.65 + 0.19) / 2 = 5.42, IP* 29.55, cost 35.02
    assert "ours 20.0 / 30.0 / 20.0, the paper's 5.42 / 29.6 / 35.0: IP met, IP* met, cost **not met**" in average
    assert majority.endswith("**not met** (adult)")
    assert accuracy.endswith("**not met** (lower by more on gmsc (1.07 points; the baseline's sd over seeds 0.46))")
    assert validity.endswith("**not met** (not on adult)")


def test_one_table_is_compared_with_its_own_paper_figure_not_the_nine_table_average():
    raw = pd.DataFrame([_row("circles", 12.0, 95.0, 50.0)])
    lines = target_lines(raw, quick=True)
    text = "\n".join(lines)
    assert lines[0].startswith("* quick mode: CI-sized training") and "not that the paper's figures" in lines[0]
    assert ("  * circles: IP 12.0 / 58.88* (**below the paper's**), IP* 95.0 / 93.84* (at or above the paper's), "
            "cost 50.0 / 42.99* (at or above the paper's)") in text
    assert "average" not in text and "15.64" not in text  # no claim about an average from one table
    assert " met" not in text.split("no table with IP")[0]  # nor a "met" before the per-table targets


def test_all_nine_tables_are_compared_with_the_published_average():
    for nine in (DEFAULT_DATASETS["project"], DEFAULT_DATASETS["reference"]):
        raw = pd.DataFrame([_row(d, 20.0, 30.0, 20.0) for d in nine])
        lines = paper_lines(raw)
        assert len(lines) == 1 + 9 + 1
        assert lines[-1].startswith("* averages over the nine tables (the paper's average, as published)")
    assert "  * mnist: IP 20.0 / 6.36*" in lines[9]  # the reference data face the paper's rows under their own names
    raw = pd.DataFrame([_row(d, 20.0, 30.0, 20.0) for d in DEFAULT_DATASETS["project"]])
    lines = paper_lines(raw)
    assert "  * digits (paper: MNIST): IP 20.0 / 6.36*" in lines[9]
    assert lines[-1] == ("* averages over the nine tables (the paper's average, as published) reach the paper's: "
                         "ours 20.0 / 30.0 / 20.0, the paper's 15.6 / 25.3 / 18.5: IP met, IP* met, cost met")


def test_target_lines_of_one_seed_give_no_spread():
    raw = pd.DataFrame([_row("gmsc", 0.0, 0.0, 0.0, ip_seeds=1, accuracy_base=0.8, accuracy_ct=0.78,
                             accuracy_base_sd=float("nan"), validity_base=0.5, validity_ct=0.2)])
    *_, majority, accuracy, validity = target_lines(raw)
    assert accuracy.endswith("(lower by more on gmsc (2.00 points))")
    assert majority.endswith(": met") and validity.endswith(": met")  # validity checked only where base >= 0.9


def test_validation_figures_use_the_report_formatter():
    text = validation_text({"ip_reduction_pct": 12.3456, "vanilla_validity": 0.99, "validity": 0.9412,
                             "vanilla_accuracy": 0.8512345, "accuracy": 0.84})
    assert text == "12.3% / 0.990 → 0.941 / 0.851 → 0.840"


def test_report_states_durations_in_seconds_or_minutes(tmp_path):
    settings = {"compute_seconds": {"tune": 3.0, "train": 20.0, "evaluate": 10.0}, "workers": 2,
                "wall_seconds": 204.0, "command": "ct-plugin reproduce --quick"}
    md = write_report(tmp_path, ["circles"], Plan.for_mode(True), {}, {}, {}, [], settings, {})
    text = md.read_text()
    # (20 + 10) / 2 workers + 3 = 18 s: not "about 0 min"
    assert ("the work behind this table took about **18 s** of wall time: tuning 3.0 s, then training 20 s and "
            "evaluation 10 s of process time") in text
    assert "this invocation took 3.4 min" in text
