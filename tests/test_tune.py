"""``ct-plugin tune``: the selection rule, grid-value checks, the validation carve, and an end-to-end run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ct_plugin
from ct_plugin import cli
from ct_plugin.errors import CTPluginError
from ct_plugin.tuning.axes import (
    DEFAULT_GRID,
    grid_points,
    overrides_of,
    validate_grid,
)
from ct_plugin.tuning.judging import protocol_config
from ct_plugin.tuning.rescue import rescue_points, weaker_terms_points
from ct_plugin.tuning.selection import SelectionRule, apply_rule, choose
from ct_plugin.tuning.split import validation_split


# ------------------------------------------------------------------ selection rule
def criteria(*rows: dict) -> pd.DataFrame:
    """A hand-made criteria table; vanilla accuracy 0.90 and validity 0.95, IP differences significant, unless a row
    says otherwise."""
    base = {"vanilla_accuracy": 0.90, "vanilla_validity": 0.95, "ip_star_reduction_pct": 0.0, "ip_significant": True}
    return pd.DataFrame([{**base, "cell": f"c{i}", **row} for i, row in enumerate(rows)])


def good(**changes) -> dict:
    return {"accuracy": 0.90, "mature_last": 0.8, "validity": 0.95, "ip_reduction_pct": 10.0, **changes}


def test_the_best_ip_reduction_among_passing_configurations_wins():
    table = criteria(
        good(ip_reduction_pct=10.0),
        good(ip_reduction_pct=30.0, accuracy=0.85),     # best IP but 5 accuracy points lost
        good(ip_reduction_pct=25.0, mature_last=0.3),   # too few mature counterfactuals
        good(ip_reduction_pct=20.0, validity=0.85),     # 10 validity points lost
        good(ip_reduction_pct=15.0, accuracy=0.891),    # 0.9 points lost: within the rule
    )
    judged = apply_rule(table, SelectionRule())
    assert judged["pass"].tolist() == [True, False, False, False, True]
    assert judged["accuracy_ok"].tolist() == [True, False, True, True, True]
    assert judged["maturity_ok"].tolist() == [True, True, False, True, True]
    assert judged["validity_ok"].tolist() == [True, True, True, False, True]
    assert "maturity 30.00% < 50%" in judged.reasons[2]
    choice = choose(judged)
    assert (choice.index, choice.passed, choice.fallback, choice.recommend_ct) == (4, True, False, True)
    assert "2 of 5 configurations pass" in choice.message


def test_higher_accuracy_or_validity_than_vanilla_is_fine():
    judged = apply_rule(criteria(good(accuracy=0.99, validity=1.0)), SelectionRule())
    assert bool(judged["pass"].iloc[0]) and judged.violation_pts.iloc[0] == 0


def test_ties_go_to_ip_star_then_to_grid_order():
    table = criteria(good(), good(ip_star_reduction_pct=5.0), good(ip_star_reduction_pct=5.0))
    assert choose(apply_rule(table, SelectionRule())).index == 1
    assert choose(apply_rule(criteria(good(), good()), SelectionRule())).index == 0


def test_a_passing_choice_that_does_not_reduce_ip_says_so():
    choice = choose(apply_rule(criteria(good(ip_reduction_pct=-7.0), good(ip_reduction_pct=-9.0)), SelectionRule()))
    assert choice.index == 0 and choice.passed and "no passing configuration reduces IP" in choice.message
    # vanilla (reduction 0, every constraint met) beats a CT configuration that raises IP
    assert not choice.recommend_ct and "vanilla recommended" in choice.message
    assert not choose(apply_rule(criteria(good(ip_reduction_pct=0.0)), SelectionRule())).recommend_ct
    assert choose(apply_rule(criteria(good(ip_reduction_pct=0.1)), SelectionRule())).recommend_ct


def test_no_passing_configuration_falls_back_to_the_least_violation_and_says_so():
    table = criteria(
        good(accuracy=0.80, ip_reduction_pct=50.0),     # 9 points beyond the 1-point allowance
        good(mature_last=0.45, ip_reduction_pct=5.0),   # 5 points of maturity missing
        good(validity=0.70, ip_reduction_pct=40.0),     # 20 points beyond the 5-point allowance
    )
    judged = apply_rule(table, SelectionRule())
    assert not judged["pass"].any()
    assert judged.violation_pts.round(6).tolist() == [9.0, 5.0, 20.0]
    choice = choose(judged)
    assert (choice.index, choice.passed, choice.fallback, choice.recommend_ct) == (1, False, True, False)
    assert "NO configuration passes" in choice.message and "FALLBACK" in choice.message
    assert "vanilla recommended" in choice.message


def test_unmeasurable_ip_fails_and_ranks_last_in_the_fallback():
    table = criteria(good(ip_reduction_pct=math.nan), good(mature_last=0.49, ip_reduction_pct=1.0))
    judged = apply_rule(table, SelectionRule())
    assert judged["pass"].tolist() == [False, False]
    assert "IP not measurable" in judged.reasons[0]
    assert choose(judged).index == 1  # 1 maturity point missing beats an unmeasurable IP with no violation


def test_rule_thresholds_are_configurable_and_checked():
    table = criteria(good(accuracy=0.85))
    assert bool(apply_rule(table, SelectionRule(max_accuracy_drop=0.06))["pass"].iloc[0])
    with pytest.raises(CTPluginError, match="min_maturity"):
        SelectionRule(min_maturity=1.5).validate()
    with pytest.raises(CTPluginError, match="every grid cell failed"):
        choose(apply_rule(criteria().reindex(columns=list(criteria(good()).columns)), SelectionRule()))


# ------------------------------------------------------------------ grid values
def test_rescue_points_weaken_the_ridge_at_the_taus_that_matured():
    judged = pd.DataFrame({"tau": [0.5, 0.5, 0.75, 0.9], "lambda_reg": [0.1, 0.25, 0.1, 0.1],
                           "maturity_ok": [True, False, True, False]})
    points = rescue_points({"tau": [0.5, 0.75, 0.9], "lambda_reg": [0.1, 0.25, 0.5]}, judged)
    assert points == [{"tau": 0.5, "lambda_reg": 0.05}, {"tau": 0.5, "lambda_reg": 0.01},
                      {"tau": 0.75, "lambda_reg": 0.05}, {"tau": 0.75, "lambda_reg": 0.01}]
    nothing_matured = judged.assign(maturity_ok=False)
    assert len(rescue_points({"tau": [0.5, 0.9], "lambda_reg": [0.2]}, nothing_matured)) == 4  # every tau
    assert rescue_points({"tau": [0.5]}, judged) == []  # no ridge axis: nothing to weaken
    assert rescue_points({"tau": [0.5], "lambda_reg": [0.0, 0.1]}, judged) == []  # already at 0
    assert rescue_points({"tau": [0.5], "lambda_reg": [0.05, 0.1]}, judged) == [
        {"tau": 0.5, "lambda_reg": 0.025}, {"tau": 0.5, "lambda_reg": 0.005}]


def test_weaker_terms_points_scale_divergence_and_adversarial_weights_at_the_least_violating():
    judged = pd.DataFrame({"tau": [0.5, 0.5, 0.9], "lambda_reg": [0.1, 0.25, 0.1],
                           "violation_pts": [16.8, 27.6, 16.8], "ip_reduction_pct": [6.4, 8.4, 9.0]})
    points = weaker_terms_points(judged, ["tau", "lambda_reg"], {"lambda_div": 0.5, "lambda_adv": 0.25})
    # ties on violation: the higher IP reduction first; factors 1/5 and 1/25
    assert points == [{"tau": 0.9, "lambda_reg": 0.1, "lambda_div": 0.1, "lambda_adv": 0.05},
                      {"tau": 0.9, "lambda_reg": 0.1, "lambda_div": 0.02, "lambda_adv": 0.01},
                      {"tau": 0.5, "lambda_reg": 0.1, "lambda_div": 0.1, "lambda_adv": 0.05},
                      {"tau": 0.5, "lambda_reg": 0.1, "lambda_div": 0.02, "lambda_adv": 0.01}]
    # a grid that tunes lambda_div: the row's own value is scaled
    own = judged.assign(lambda_div=[1.0, 1.0, 2.0])
    first = weaker_terms_points(own, ["tau", "lambda_reg", "lambda_div"], {"lambda_div": 0.5, "lambda_adv": 0.0})[0]
    assert first == {"tau": 0.9, "lambda_reg": 0.1, "lambda_div": 0.4, "lambda_adv": 0.0}
    assert weaker_terms_points(judged, ["tau"], {"lambda_div": 0.0, "lambda_adv": 0.0}) == []  # nothing to weaken
    assert weaker_terms_points(judged.iloc[:0], ["tau"], {"lambda_div": 0.5, "lambda_adv": 0.25}) == []


def test_default_grid_is_the_papers():
    assert validate_grid(None) == {"tau": [0.5, 0.75, 0.9], "lambda_reg": [0.1, 0.25, 0.5]}
    assert len(grid_points(DEFAULT_GRID)) == 9
    assert grid_points({"tau": [0.5, 0.9], "nce": [10]}) == [{"tau": 0.5, "nce": 10}, {"tau": 0.9, "nce": 10}]


@pytest.mark.parametrize(
    ("grid", "culprit"),
    [
        ({"tau": [0.5, 1.5]}, r"tau: value\(s\) \[1.5\] out of range; each must be a number in \(0, 1\]"),
        ({"tau": [0.0]}, "tau"),
        ({"lambda_reg": [-0.1]}, "lambda_reg: value.*non-negative"),
        ({"nce": [10.5]}, "nce: value.*positive integer"),
        ({"max_steps": [0]}, "max_steps"),
        ({"step_size": [0.0]}, "step_size"),
        ({"tau": [True]}, "tau"),
        ({"tau": []}, "tau has no values"),
        ({"tau": [0.5, 0.5]}, "repeats"),
        ({"lr": [0.1]}, "unknown tuning axis 'lr'; valid axes: .*tau"),
        ({}, "non-empty"),
    ],
)
def test_bad_grid_values_name_the_culprit(grid, culprit):
    with pytest.raises(CTPluginError, match=culprit):
        validate_grid(grid)


def test_generator_axes_go_into_generator_options():
    assert overrides_of({"tau": 0.5, "step_size": 0.1}, {"lambda_energy": 5.0}) == {
        "tau": 0.5, "generator_options": {"lambda_energy": 5.0, "step_size": 0.1},
    }


def test_protocol_options_are_checked():
    config = protocol_config({"rounds": 5})
    assert config.rounds == 5 and tuple(config.lambda_energies) == (0.1, 0.5, 1.0, 5.0, 10.0)
    with pytest.raises(CTPluginError, match="unknown evaluation protocol option.*'bogus'"):
        protocol_config({"bogus": 1})


def test_bad_tune_inputs_fail_before_training(tmp_path):
    with pytest.raises(CTPluginError, match="unknown training option.*'epoch'"):
        ct_plugin.tune("moons", out=tmp_path, epoch=3)
    with pytest.raises(CTPluginError, match=r"\['tau'\] are tuning axes"):
        ct_plugin.tune("moons", out=tmp_path, tau=0.5)
    with pytest.raises(CTPluginError, match="tune sets"):
        ct_plugin.tune("moons", out=tmp_path, strategy="vanilla")
    with pytest.raises(CTPluginError, match="unknown option 'bogus'"):
        ct_plugin.tune("moons", out=tmp_path, generator_options={"bogus": 1}, grid={"tau": [0.5]},
                       dataset_options={"n_samples": 200}, progress=False)
    with pytest.raises(CTPluginError, match="unknown dataset"):
        ct_plugin.tune("nope", out=tmp_path)
    assert not (tmp_path / "cells").exists()


def _workers_in_a_daemon(queue) -> None:
    from ct_plugin.grid import default_workers

    queue.put(default_workers(18))


def test_tune_and_grid_train_one_cell_per_usable_core_unless_told_or_inside_a_pool_worker(tmp_path):
    import multiprocessing

    from ct_plugin.grid import default_workers
    from ct_plugin.threads import available_cpus

    assert default_workers(18) == min(available_cpus(), 18) and default_workers(1) == 1 and default_workers(0) == 1
    assert default_workers(18, on_accelerator=True) == 1  # cells on one GPU: one process, one CUDA context
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    daemon = context.Process(target=_workers_in_a_daemon, args=(queue,), daemon=True)
    daemon.start()
    assert queue.get(timeout=120) == 1  # a daemonic process may not start a pool: the cells train in it
    daemon.join()
    with pytest.raises(CTPluginError, match="workers must be at least 1, got 0"):
        ct_plugin.tune("moons", out=tmp_path, workers=0)


# ------------------------------------------------------------------ validation carve
def test_validation_split_is_a_stratified_seeded_carve_of_the_training_rows():
    spec = ct_plugin.load_dataset("moons", seed=0)  # 3000 training rows
    carved = validation_split(spec)
    assert len(carved.y_test) == 600 and len(carved.y_train) == 2400  # min(5000, 0.2 * 3000)
    train_rows = {r.tobytes() for r in spec.X_train}
    test_rows = {r.tobytes() for r in spec.X_test}
    val_rows = [r.tobytes() for r in carved.X_test]
    assert all(r in train_rows for r in val_rows) and not any(r in test_rows for r in val_rows)
    assert not {r.tobytes() for r in carved.X_train} & set(val_rows)
    share = np.bincount(spec.y_train) / len(spec.y_train)
    assert np.allclose(np.bincount(carved.y_test) / len(carved.y_test), share, atol=0.01)
    again = validation_split(spec)
    assert np.array_equal(again.X_test, carved.X_test)
    assert not np.array_equal(validation_split(spec, seed=1).X_test, carved.X_test)
    assert carved.options["validation_split"] == {"size": 600, "seed": 0}
    assert len(validation_split(spec, size=50).y_test) == 50


def test_validation_rows_are_a_fifth_of_the_training_rows_up_to_5000():
    spec = ct_plugin.load_dataset("moons", seed=0, n_samples=10000)
    assert len(validation_split(spec).y_test) == round(0.2 * len(spec.y_train))
    large = ct_plugin.load_dataset("moons", seed=0, n_samples=40000)
    assert len(validation_split(large).y_test) == 5000


def test_a_table_too_small_for_a_validation_split_is_refused():
    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], "y": [0, 0, 0, 0, 0, 0, 1, 1]})
    spec = ct_plugin.from_dataframe(frame, "y", test_size=0.25, name="tiny")
    with pytest.raises(CTPluginError, match="validation split .* would leave .*use more data"):
        validation_split(spec)
    with pytest.raises(CTPluginError, match="use more data"):
        ct_plugin.tune(spec, out="unused", progress=False)
    with pytest.raises(CTPluginError, match="at least 1 row"):
        validation_split(ct_plugin.load_dataset("moons", seed=0), size=0)


# ------------------------------------------------------------------ end to end
@pytest.mark.slow
def test_tune_end_to_end_writes_a_trainable_choice_and_reuses_cells(tmp_path, capsys):
    out = tmp_path / "tune"
    argv = ["tune", "--dataset", "moons", "--dataset-option", "n_samples=600", "--epochs", "12",
            "--batch-size", "30", "--nce", "100", "--max-steps", "20", "--grid-tau", "0.5,0.9",
            "--grid-lambda-reg", "0.1,0.5", "--rounds", "5", "--n-factuals", "50", "--out", str(out), "--quiet"]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "config:" in printed and "chosen.json" in printed
    for name in ("chosen.json", "tune.csv", "tune.md", "tune.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0
    table = pd.read_csv(out / "tune.csv", keep_default_na=False, na_values=[""]).assign(
        reasons=lambda t: t.reasons.fillna(""))  # a passing row has no reasons: "" in memory, empty in the CSV
    assert (table.stage == 1).sum() == 4 and table.chosen.sum() == 1
    assert table["pass"].any() or (table.stage >= 2).any()  # a rescue stage only when the grid has no pass
    assert {"tau", "lambda_reg", "accuracy", "mature_last", "validity", "ip_reduction_pct", "pass",
            "violation_pts", "reasons"} <= set(table.columns)
    assert "| tau | lambda_reg |" in (out / "tune.md").read_text() and "](tune.png)" in (out / "tune.md").read_text()
    chosen = json.loads((out / "chosen.json").read_text())
    meta = chosen["tune"]
    assert {"tau", "lambda_reg"} <= set(meta["overrides"]) <= {"tau", "lambda_reg", "lambda_div", "lambda_adv"}
    assert meta["recommendation"] in ("ct", "vanilla")
    assert chosen["train"]["strategy"] == meta["recommendation"]
    assert meta["ct_train"]["strategy"] == "ct" and meta["ct_train"]["tau"] == meta["overrides"]["tau"]
    row = table[table.chosen].iloc[0]
    assert (row.tau, row.lambda_reg) == (meta["overrides"]["tau"], meta["overrides"]["lambda_reg"])
    assert bool(row["pass"]) == meta["passed"] != meta["fallback"]
    # the carved spec never holds the real test rows
    full = ct_plugin.load_dataset("moons", seed=0, n_samples=600)
    carved = ct_plugin.DatasetSpec.load(out / "validation_spec")
    assert not {r.tobytes() for r in carved.X_test} & {r.tobytes() for r in full.X_test}
    cells = sorted(p.name for p in (out / "cells").iterdir())
    assert len(cells) == 2 * (1 + len(table))  # (vanilla + 2 x 2 (+ any rescue cells)) x the 2 default seeds
    assert meta["seeds"] == [0, 1]
    assert "seeds 0, 1 (every figure of the table is the mean" in (out / "tune.md").read_text()
    # each criterion is the mean over the seeds: accuracy and maturity from the two cells' own logs
    first = table.iloc[0]
    twin = first.cell.replace("-s0-", "-s1-").rsplit("-", 1)[0]
    pair = [out / "cells" / first.cell, next((out / "cells").glob(twin + "-*"))]
    logs = [ct_plugin.load_run(d).log for d in pair]
    assert first.accuracy == pytest.approx(np.mean([log[-1]["test_accuracy"] for log in logs]))
    assert first.mature_last == pytest.approx(np.mean([np.mean([r["mature"] for r in log[-10:]]) for log in logs]))
    # the chosen config trains with `ct-plugin train --config` (on the full training split)
    run = tmp_path / "chosen-run"
    assert cli.main(["train", "--config", str(out / "chosen.json"), "--epochs", "2", "--out", str(run),
                     "--quiet"]) == 0
    trained = ct_plugin.load_run(run)
    assert trained.config.strategy == meta["recommendation"]
    if meta["recommendation"] == "ct":
        assert trained.config.tau == meta["overrides"]["tau"]
    assert len(trained.spec.y_train) == len(full.y_train)
    # a re-run reuses every finished cell and its evaluation (same table), a killed cell is redone
    mtimes = {c: (out / "cells" / c / "model.pt").stat().st_mtime_ns for c in cells}
    result = ct_plugin.tune("moons", out=out, dataset_options={"n_samples": 600}, epochs=12, batch_size=30,
                            nce=100, max_steps=20, grid={"tau": [0.5, 0.9], "lambda_reg": [0.1, 0.5]},
                            protocol={"rounds": 5, "n_factuals": 50}, progress=False)
    assert {c: (out / "cells" / c / "model.pt").stat().st_mtime_ns for c in cells} == mtimes
    pd.testing.assert_frame_equal(result.table.drop(columns="train_seconds"),
                                  table.drop(columns="train_seconds"), check_dtype=False)
    assert result.overrides == meta["overrides"] and result.paths["config"] == out / "chosen.json"
    # a cell killed after its last checkpoint (no result, no weights, no evaluation) is resumed, not retrained
    killed = out / "cells" / table.cell[0]
    for name in ("result.json", "model.pt", "tune_eval.json"):
        (killed / name).unlink()
    again = ct_plugin.tune("moons", out=out, dataset_options={"n_samples": 600}, epochs=12, batch_size=30,
                           nce=100, max_steps=20, grid={"tau": [0.5, 0.9], "lambda_reg": [0.1, 0.5]},
                           protocol={"rounds": 5, "n_factuals": 50}, progress=False)
    assert (killed / "result.json").is_file() and len(ct_plugin.load_run(killed).log) == 12
    pd.testing.assert_frame_equal(again.table.drop(columns="train_seconds"),
                                  table.drop(columns="train_seconds"), check_dtype=False)


@pytest.mark.slow
def test_tune_rescues_a_grid_with_no_passing_configuration(tmp_path, capsys):
    # a maturity floor of 100% no configuration can meet forces the rescue stage
    result = ct_plugin.tune("moons", out=tmp_path / "tune", dataset_options={"n_samples": 400}, epochs=4,
                            batch_size=30, nce=60, max_steps=10, grid={"tau": [0.9], "lambda_reg": [0.2]},
                            protocol={"rounds": 3, "n_factuals": 30}, progress=False,
                            rule=SelectionRule(min_maturity=1.0))
    assert result.fallback
    table = result.table
    assert table.stage.tolist() == [1, 2, 2, 3, 3]
    # stage 2: the least-violating configuration (the grid's only one) with lambda_div / lambda_adv at 1/5
    # and 1/25; stage 3, last: the ridge at 1/2 and 1/10 of the grid's smallest, the other weights as trained
    assert table.lambda_reg.tolist() == [0.2, 0.2, 0.2, 0.1, 0.02]
    assert table.lambda_div.tolist() == [0.5, 0.1, 0.02, 0.5, 0.5]
    assert table.lambda_adv.tolist() == [0.25, 0.05, 0.01, 0.25, 0.25]
    text = result.paths["markdown"].read_text()
    assert "so stage 2 (a rescue) trained 2 more with weaker divergence and adversarial weights" in text
    assert "so stage 3 (a rescue) trained 2 more with a weaker logit ridge" in text
    meta = json.loads(result.paths["config"].read_text())["tune"]
    assert [r["stage"] for r in meta["rescue"]] == [2, 3]
    assert meta["rescue"][1]["points"] == [{"tau": 0.9, "lambda_reg": 0.1}, {"tau": 0.9, "lambda_reg": 0.02}]
    chosen = table[table.chosen].iloc[0]
    if chosen.stage == 2:  # the chosen weights reach the config `train --config` reads
        assert meta["overrides"]["lambda_div"] == chosen.lambda_div
    plain = ct_plugin.tune("moons", out=tmp_path / "plain", dataset_options={"n_samples": 400}, epochs=4,
                           batch_size=30, nce=60, max_steps=10, grid={"tau": [0.9], "lambda_reg": [0.2]},
                           protocol={"rounds": 3, "n_factuals": 30}, progress=False,
                           rule=SelectionRule(min_maturity=1.0), rescue=False)
    assert plain.table.stage.tolist() == [1]
    # nothing passes: tune recommends vanilla, chosen.json trains it and keeps the best CT configuration
    assert plain.recommendation == "vanilla" and plain.config.strategy == "vanilla"
    written = json.loads(plain.paths["config"].read_text())
    assert written["train"]["strategy"] == "vanilla" and written["tune"]["recommendation"] == "vanilla"
    assert written["tune"]["ct_train"]["strategy"] == "ct" and written["tune"]["ct_train"]["tau"] == 0.9
    assert "**Recommendation: vanilla** (no configuration passes the rule" in plain.paths["markdown"].read_text()
    run = tmp_path / "vanilla-run"
    capsys.readouterr()
    assert cli.main(["train", "--config", str(plain.paths["config"]), "--epochs", "1", "--out", str(run),
                     "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "trained vanilla" in printed and "recommends vanilla on this table" in printed
    forced = ct_plugin.tune("moons", out=tmp_path / "plain", dataset_options={"n_samples": 400}, epochs=4,
                            batch_size=30, nce=60, max_steps=10, grid={"tau": [0.9], "lambda_reg": [0.2]},
                            protocol={"rounds": 3, "n_factuals": 30}, progress=False,
                            rule=SelectionRule(min_maturity=1.0), rescue=False, always_ct=True)
    assert forced.recommendation == "vanilla" and forced.config.strategy == "ct" and forced.config.tau == 0.9
    assert json.loads(forced.paths["config"].read_text())["train"]["strategy"] == "ct"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["tune", "--dataset", "moons", "--grid-tau", "0.5,1.5"], "tau: value(s) [1.5] out of range"),
        (["tune", "--dataset", "moons", "--grid-lambda-reg", "-0.1"], "lambda_reg: value(s) [-0.1] out of range"),
        (["tune", "--dataset", "moons", "--grid-nce", "ten"], "--grid-nce expects comma-separated ints"),
        (["tune", "--dataset", "moons", "--grid-lambda-div", "-1"], "lambda_div: value(s) [-1.0] out of range"),
        (["tune", "--dataset", "moons", "--csv", "x.csv"], "either --dataset or --csv, not both"),
        (["tune"], "one of --dataset NAME or --csv FILE"),
        (["tune", "--csv", "x.csv"], "needs --target COLUMN"),
        (["tune", "--csv", "missing.csv", "--target", "y"], "--csv file 'missing.csv' not found"),
        (["tune", "--dataset", "moons", "--train-option", "bogus=1"], "unknown training option(s) ['bogus']"),
        (["tune", "--dataset", "moons", "--protocol-option", "bogus=1"], "unknown evaluation protocol option"),
    ],
)
def test_cli_bad_input_gets_one_clear_error(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_tune_is_a_registered_command(capsys):
    with pytest.raises(SystemExit):
        cli.main(["tune", "--help"])
    text = capsys.readouterr().out
    for flag in ("--grid-tau", "--grid-lambda-reg", "--csv", "--target", "--workers", "--executor", "--epochs",
                 "--generator-option", "--max-steps", "--nce", "--data-dir", "--grid-lambda-div", "--grid-lambda-adv"):
        assert flag in text


@pytest.mark.slow
def test_tune_on_a_users_csv_prints_the_train_command_that_uses_its_choice(tmp_path, capsys, monkeypatch):
    from sklearn.datasets import load_breast_cancer

    monkeypatch.chdir(tmp_path)
    load_breast_cancer(as_frame=True).frame.to_csv("cancer.csv", index=False)
    argv = ["tune", "--csv", "cancer.csv", "--target", "target", "--epochs", "4", "--nce", "50",
            "--grid-tau", "0.5,0.9", "--grid-lambda-reg", "0.1", "--rounds", "2", "--n-factuals", "20",
            "--no-rescue", "--out", "tune-cancer", "--quiet"]
    assert cli.main(argv) == 0
    printed = [line.strip() for line in capsys.readouterr().out.splitlines()]
    command = next(line for line in printed if line.startswith("train the choice:"))
    train_argv = command.split(": ", 1)[1].split("  (")[0].split()[1:]  # drop "ct-plugin" and the note
    assert train_argv == ["train", "--config", str(Path("tune-cancer") / "chosen.json"), "--out", "runs/cancer"]
    assert cli.main([*train_argv[:-2], "--epochs", "2", "--out", "run", "--quiet"]) == 0
    meta = json.loads(Path("tune-cancer/chosen.json").read_text())["tune"]
    trained = ct_plugin.load_run("run")
    assert trained.config.strategy == meta["recommendation"]
    assert any(line.startswith(f"recommendation: {meta['recommendation'].upper()}") for line in printed)
    if meta["recommendation"] == "ct":
        assert trained.config.tau == meta["overrides"]["tau"]
        table = pd.read_csv("tune-cancer/tune.csv")
        cost = float(table[table.chosen].iloc[0].cost_reduction_pct)
        assert any(line.startswith("cost of recourse") and f"{abs(cost):.3g}%" in line for line in printed)
    assert len(trained.spec.y_train) + len(trained.spec.y_test) == 569  # the whole table, not the carve


def test_a_ct_recommendation_says_what_it_does_to_the_cost_of_recourse():
    from ct_plugin.cli.tune import _cost_line

    assert _cost_line(12.34) == ("cost of recourse: 12.3% lower than vanilla's on the validation split (L1 distance "
                                 "of the counterfactuals to their factuals)")
    costlier = _cost_line(-6.91)
    assert "6.91% HIGHER than vanilla's" in costlier and "--max-cost-increase 0" in costlier
    assert "--methods all" in costlier
    assert _cost_line(float("nan")) == "cost of recourse: not measured on the validation split"


# ------------------------------------------------------------------ several seeds
def test_seed_figures_average_and_significance_needs_every_seed():
    from ct_plugin.tuning.seeds import mean_figures, seed_list

    per_seed = [{"ip_run": 2.0, "ip_reduction_pct": 10.0, "ip_significant": True, "validity_run": float("nan")},
                {"ip_run": 4.0, "ip_reduction_pct": -2.0, "ip_significant": False, "validity_run": 0.5}]
    merged = mean_figures(per_seed)
    assert merged["ip_run"] == 3.0 and merged["ip_reduction_pct"] == 4.0
    assert merged["ip_significant"] is False and mean_figures(per_seed[:1])["ip_significant"] is True
    assert merged["validity_run"] == 0.5  # a seed without a figure does not erase the other's
    assert seed_list(3, 2) == [3, 4]


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
def test_tune_refuses_impossible_seed_counts(bad):
    with pytest.raises(CTPluginError, match="seeds .* must be an integer >= 1"):
        ct_plugin.tune("moons", out="unused", seeds=bad, progress=False)
