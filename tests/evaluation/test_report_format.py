"""How reports write numbers and durations, and how the robust-accuracy figure tells runs and attacks apart."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from ct_plugin.evaluation import plots
from ct_plugin.evaluation.metrics.directions import metric_names
from ct_plugin.evaluation.report import fmt, fmt_duration, fmt_pm, formatted
from ct_plugin.reproduce.tables import stats_cell


@pytest.mark.parametrize(("value", "text"), [
    (0.55, "0.550"), (3.1549, "3.15"), (50.0, "50.0"), (158.3, "158"), (12345.6, "12346"), (-1.93, "-1.93"),
    (0.0123, "0.0123"), (2.2204e-06, "2.22e-06"), (1.5e7, "1.50e+07"), (9.996, "10.0"), (0.0, "0"),
    (float("nan"), "-"), (None, "-"), (float("inf"), "-"),
])
def test_fmt_gives_three_significant_digits(value, text):
    assert fmt(value) == text


@pytest.mark.parametrize(("mean", "spread", "text"), [
    (0.55, 0.636, "0.550 ± 0.636"),
    (3.155, 1.09, "3.15 ± 1.09"),  # the spread at the mean's precision
    (50.0, 0.0, "50.0 ± 0.0"),
    (2.2204e-06, 4.35e-22, "2.22e-06 ± 0"),  # float noise of a spread is 0
    (4.35e-22, 2.2e-06, "0 ± 2.20e-06"),  # and so is a mean far inside its spread
    (2e-06, 1e-06, "2.00e-06 ± 1.00e-06"),  # one exponent for both
    (0.001, 31.2, "0.0 ± 31.2"),  # the precision of the larger of the two
    (58.88, 20.04, "58.9 ± 20.0"),
    (-0.0001, 0.3, "0.000 ± 0.300"),  # no "-0.000"
    (0.205, float("nan"), "0.205 ± -"),
    (float("nan"), float("nan"), "-"),
])
def test_fmt_pm_shows_both_at_one_precision(mean, spread, text):
    assert fmt_pm(mean, spread) == text


@pytest.mark.parametrize(("seconds", "text"), [
    (0.0, "0 s"), (0.04, "0.04 s"), (0.28, "0.28 s"), (1.34, "1.3 s"), (12.4, "12 s"), (59.6, "1.0 min"),
    (204.0, "3.4 min"), (1500.0, "25 min"), (9000.0, "2.5 h"), (None, "-"),
])
def test_fmt_duration_in_seconds_minutes_and_hours(seconds, text):
    assert fmt_duration(seconds) == text


def test_formatted_rounds_every_float_column_and_keeps_the_others():
    frame = pd.DataFrame({"run": ["a"], "ig_convergence_delta": [0.002123441779986024], "rows": [3]})
    shown = formatted(frame)
    assert shown.iloc[0].tolist() == ["a", "0.00212", 3]


def test_seed_cells_use_the_same_formatter():
    assert stats_cell({"mean": 12.345, "sd": 4.5, "better": 2, "worse": 0, "seeds": 3}) == "12.3 ± 4.5 (2+/0-)"
    assert stats_cell({"mean": 40.0, "sd": float("nan"), "better": 1, "worse": 0, "seeds": 1}) == "40.0*"


def test_metric_names_without_protected_features_say_nothing_of_protection():
    for protocol in ("paper", "strict"):
        protected = metric_names(protocol)
        plain = metric_names(protocol, protected=False)
        assert "protected" in protected["cost"] and "protected" in protected["validity_protected"]
        assert not any("protected" in name for name in plain.values())
        assert plain["validity_protected"].startswith("validity, cost search (")
        assert plain["validity_protected"] != plain["validity"]  # still told apart from the main search's
    assert metric_names("paper", protected=False)["cost"] == "cost (L1, valid CFs)"


def _robustness(accuracies: dict[tuple[str, str], list[float]]) -> pd.DataFrame:
    epsilons = [0.0, 0.05, 0.1]
    return pd.DataFrame([{"run": run, "attack": attack, "epsilon": e, "accuracy": a}
                         for (run, attack), values in accuracies.items() for e, a in zip(epsilons, values)])


def test_robust_accuracy_lines_differ_by_attack_and_by_run_on_a_zoomed_axis(tmp_path):
    frame = _robustness({("base", "fgsm"): [0.85, 0.78, 0.70], ("base", "pgd"): [0.85, 0.77, 0.69],
                         ("ct", "fgsm"): [0.85, 0.80, 0.73], ("ct", "pgd"): [0.85, 0.79, 0.72]})
    fig, ax = plt.subplots()
    assert plots.robustness_axes(ax, frame) is True
    lines = {line.get_label(): line for line in ax.get_lines()}
    fgsm, pgd = lines["base FGSM"], lines["base PGD"]
    assert (fgsm.get_linestyle(), fgsm.get_marker()) != (pgd.get_linestyle(), pgd.get_marker())
    assert fgsm.get_linestyle() != pgd.get_linestyle() and fgsm.get_marker() != pgd.get_marker()
    assert fgsm.get_color() == pgd.get_color() != lines["ct FGSM"].get_color()
    assert fgsm.get_linewidth() > lines["ct FGSM"].get_linewidth()  # an equal later curve leaves a rim
    low, high = ax.get_ylim()
    assert 0.6 < low < 0.69 and 0.85 < high < 0.9  # scaled to the data, not 0-1 ...
    assert "not 0-1" in ax.get_ylabel()  # ... and the label says so
    plt.close(fig)
    labels = [h.get_label() for h in plots.robustness_legend_handles(["base", "ct"])]
    assert labels == ["run base", "run ct", "FGSM (solid)", "PGD (dashed)"]
    path = plots.plot_robustness(frame, tmp_path / "robust.png", "robust accuracy")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    grid = plots.plot_robustness_grid({"a": frame, "b": frame}, tmp_path / "grid.png")
    assert grid.stat().st_size > 0


def test_robust_accuracy_spanning_most_of_0_1_keeps_the_whole_axis():
    frame = _robustness({("base", "fgsm"): [0.95, 0.5, 0.05], ("base", "pgd"): [0.95, 0.4, 0.02]})
    fig, ax = plt.subplots()
    assert plots.robustness_axes(ax, frame) is False
    assert ax.get_ylim() == (0.0, 1.0) and ax.get_ylabel() == "accuracy"
    plt.close(fig)
    assert plots.accuracy_limits([0.583, 0.583]) == pytest.approx((0.573, 0.593))
    assert plots.accuracy_limits([]) == (0.0, 1.0)
