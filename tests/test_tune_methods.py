"""``ct-plugin tune --methods``: every method tuned on its own grid, then the pick on validation figures
(:mod:`ct_plugin.compare.choose`)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

import ct_plugin
from ct_plugin.cli import main
from ct_plugin.compare import resolve_methods
from ct_plugin.compare.choose import tune_methods
from ct_plugin.errors import CTPluginError


def test_tune_methods_refuses_what_it_cannot_do(tmp_path, capsys):
    base = ["tune", "--dataset", "moons", "--out", str(tmp_path)]
    assert main([*base, "--methods", "ct,nope"]) == 2
    assert "unknown method(s) ['nope'] for tune --methods; choose from ct," in capsys.readouterr().err
    assert main([*base, "--methods", "cat", "--grid-tau", "0.5"]) == 2
    assert "--methods tunes each method on its own grid; drop the --grid-* options" in capsys.readouterr().err
    assert main([*base, "--methods", "cat", "--always-ct"]) == 2
    assert "--always-ct writes one method's best configuration" in capsys.readouterr().err
    with pytest.raises(CTPluginError, match="tunes each method on its own grid"):
        tune_methods("moons", resolve_methods(["cat"]), out=tmp_path, grid={"tau": [0.5]})
    with pytest.raises(CTPluginError, match=r"unknown method\(s\) \['nope'\] for tune_methods"):
        ct_plugin.tune_methods("moons", ["nope"], out=tmp_path)  # the Python face takes names too
    with pytest.raises(CTPluginError, match="all names or all Method objects"):
        ct_plugin.tune_methods("moons", ["cat", *resolve_methods(["cat"])], out=tmp_path)
    assert not (tmp_path / "chosen.json").exists()  # nothing was trained or written


def _table(tmp_path):
    """A small two-class CSV with a desired class: a loan approved when income is high and debt low."""
    rng = np.random.default_rng(0)
    n = 400
    income, debt, age = rng.normal(0, 1, n), rng.normal(0, 1, n), rng.integers(20, 70, n)
    approved = np.where(income - debt + rng.normal(0, 0.5, n) > 0, "yes", "no")
    path = tmp_path / "loans.csv"
    pd.DataFrame({"income": income, "debt": debt, "age": age, "approved": approved}).to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_tune_methods_tunes_each_method_picks_one_and_its_choice_trains(tmp_path, capsys):
    csv, out = _table(tmp_path), tmp_path / "pick"
    argv = ["tune", "--csv", str(csv), "--target", "approved", "--desired", "yes", "--protected", "age",
            "--methods", "cat,recourse", "--epochs", "10", "--batch-size", "32", "--seeds", "1", "--rounds", "2",
            "--n-factuals", "20", "--no-rescue", "--out", str(out), "--quiet"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(argv) == 0
    small = [w for w in caught if "the validation split has" in str(w.message)]
    assert len(small) == 1  # every method's tune finds the same small split: said once, not once per method
    printed = capsys.readouterr().out
    for method in ("ct", "cat", "recourse"):  # ct always included; recourse runs: the CSV names a desired class
        assert f"{method}: recommends " in printed, method
        assert (out / method / "tune.csv").is_file() and (out / method / "tune.md").is_file()
    pick = json.loads((out / "chosen.json").read_text())["pick"]
    assert set(pick["methods"]) == {"ct", "cat", "recourse"} and pick["skipped"] == {}
    # the vanilla baseline trained once: the other methods' folders hold copies of the same cell
    baselines = {method: sorted(p.parent.name for p in (out / method / "cells").glob("*vanilla*/result.json"))
                 for method in ("ct", "cat", "recourse")}
    assert len(baselines["ct"]) == 1 and baselines["cat"] == baselines["ct"] == baselines["recourse"]
    rows = {(out / method / "cells" / baselines["ct"][0] / "result.json").read_text() for method in baselines}
    assert len(rows) == 1  # the same result row, wall time included: copied, not trained again
    assert f"pick: {pick['reason']}" in printed
    report = (out / "pick.md").read_text()
    assert "# Which method for loans" in report and "| recourse |" in report and pick["reason"] in report
    # the pick follows the rule from each method's own validation figures
    recommended = {}
    for method in pick["methods"]:
        table = pd.read_csv(out / method / "tune.csv")
        row = table[table.chosen].iloc[0]
        chosen = json.loads((out / method / "chosen.json").read_text())["tune"]
        if chosen["recommendation"] == "ct" and row.cost_reduction_pct >= 0:
            recommended[method] = row.ip_reduction_pct
    expected = max(recommended, key=recommended.get) if recommended else "vanilla"
    assert pick["method"] == expected
    trained = json.loads((out / "chosen.json").read_text())["train"]
    assert trained["strategy"] == ("vanilla" if expected == "vanilla" else
                                   json.loads((out / expected / "chosen.json").read_text())["train"]["strategy"])
    # the choice trains as any tune choice does; a second call reuses every cell
    assert main(["train", "--config", str(out / "chosen.json"), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    assert (tmp_path / "run" / "model.pt").is_file()
    capsys.readouterr()
    assert main(argv) == 0
    assert json.loads((out / "chosen.json").read_text())["pick"] == pick

    # a table without a desired class: the methods that aim at one are skipped, and say so
    assert main(["tune", "--dataset", "moons", "--dataset-option", "n_samples=300", "--methods", "recourse",
                 "--epochs", "10", "--batch-size", "32", "--seeds", "1", "--rounds", "2",
                 "--n-factuals", "10", "--no-rescue",
                 "--out", str(tmp_path / "moons"), "--quiet"]) == 0
    assert "recourse: skipped, aims at a desired class" in capsys.readouterr().out
