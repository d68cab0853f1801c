"""Own data: `train --csv`, a given test split, `--overwrite`, integer features in original units."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

import ct_plugin
from ct_plugin.cli import main
from ct_plugin.errors import CTPluginError


def loans(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "income": rng.normal(50, 15, n).round(1),
        "education_years": rng.integers(8, 21, n),
        "age": rng.integers(18, 80, n),
        "city": rng.choice(["north", "south"], n),
    })
    frame["approved"] = (0.08 * frame["income"] + 0.3 * frame["education_years"] > 8.5).astype(int)
    return frame


def test_integer_columns_are_detected_bounded_by_the_observed_range_and_rounded():
    frame = loans()
    spec = ct_plugin.from_dataframe(frame, "approved", increase_only=["education_years"])
    assert spec.integer == ["education_years", "age"]
    j = spec.feature_names.index("education_years")
    train_values = spec.decode(spec.X_train)["education_years"]
    low, high = (np.array([spec.lower[j], spec.upper[j]]) * spec.scale[j] + spec.mean[j]).round(4)
    assert (low, high) == (train_values.min(), train_values.max())
    # a counterfactual pushed far beyond the data stays inside the observed range and is a whole number
    model = torch.nn.Linear(spec.n_features, 2)
    with torch.no_grad():
        model.weight.zero_()
        model.weight[1, j] = 5.0
    generator = ct_plugin.get_registry().build("generator", "generic")
    factual = torch.as_tensor(spec.X_test[:4])
    found = generator.search(model, factual, torch.ones(4, dtype=torch.long),
                             ct_plugin.SearchConstraints.from_spec(spec), tau=0.9999, max_steps=200, epsilon=0.3)
    decoded = spec.decode(found.counterfactuals.numpy())
    assert decoded["education_years"].dtype.kind == "i"
    assert decoded["education_years"].max() <= frame["education_years"].max()


def test_given_test_split_is_used_as_is():
    frame = loans(400)
    train, test = frame.iloc[:300], frame.iloc[300:]
    spec = ct_plugin.from_dataframe(train, "approved", test=test)
    assert len(spec.y_train) == 300 and len(spec.y_test) == 100
    assert np.array_equal(spec.decode(spec.X_test)["age"].to_numpy(), test["age"].to_numpy())
    with pytest.raises(CTPluginError, match="missing: city"):
        ct_plugin.from_dataframe(train, "approved", test=test.drop(columns=["city"]))


def test_integer_feature_survives_a_run_directory(tmp_path):
    spec = ct_plugin.from_dataframe(loans(200), "approved")
    spec.save(tmp_path)
    assert ct_plugin.DatasetSpec.load(tmp_path).integer == spec.integer


def test_cli_trains_on_a_csv_with_mutability_flags_and_overwrite(tmp_path, capsys):
    csv, test_csv = tmp_path / "loans.csv", tmp_path / "loans_test.csv"
    frame = loans(500)
    frame.iloc[:400].to_csv(csv, index=False)
    frame.iloc[400:].to_csv(test_csv, index=False)
    out = tmp_path / "run"
    argv = ["train", "--csv", str(csv), "--test-csv", str(test_csv), "--target", "approved",
            "--categorical", "city", "--immutable", "age", "--increase-only", "education_years",
            "--epochs", "2", "--nce", "50", "--quiet", "--threads", "1", "--out", str(out)]
    assert main(argv) == 0
    assert "trained ct (eccco) on loans" in capsys.readouterr().out
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["n_train"] == 400 and meta["n_test"] == 100
    mutability = dict(zip(meta["feature_names"], meta["mutability"]))
    assert mutability["age"] == "none" and mutability["education_years"] == "increase"
    assert main(argv) == 2  # a second run into the same folder is refused ...
    assert "--overwrite" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0  # ... unless asked to replace it
    assert len((out / "log.jsonl").read_text().splitlines()) == 2


def test_cli_csv_errors_are_clear(tmp_path, capsys):
    assert main(["train", "--csv", str(tmp_path / "nope.csv"), "--target", "y"]) == 2
    assert "not found" in capsys.readouterr().err
    loans(50).to_csv(tmp_path / "a.csv", index=False)
    assert main(["train", "--csv", str(tmp_path / "a.csv")]) == 2
    assert "needs --target COLUMN" in capsys.readouterr().err
    assert main(["train", "--csv", str(tmp_path / "a.csv"), "--target", "nope"]) == 2
    assert "target column 'nope' not found" in capsys.readouterr().err


# ------------------------------------------------------------ the csv dataset's options, as for named sets
def _csv(tmp_path, frame=None):
    path = tmp_path / "loans.csv"
    (loans() if frame is None else frame).to_csv(path, index=False)
    return path


def test_csv_run_records_how_its_table_was_read_and_train_config_reads_it_the_same_way(tmp_path, capsys):
    frame = loans()
    frame.loc[3, "income"] = np.nan
    csv = _csv(tmp_path, frame)
    argv = ["train", "--csv", str(csv), "--target", "approved", "--impute", "median", "--desired", "1",
            "--protected", "age", "--protect", "--epochs", "1", "--quiet", "--out", str(tmp_path / "a")]
    assert main(argv) == 0
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert config["dataset"] == "csv"
    assert config["dataset_options"] == {"path": str(csv.resolve()), "target": "approved", "impute": "median",
                                         "desired": "1", "protected": ["age"]}
    assert config["immutable"] == ["age"]  # --protect froze the named protected feature
    run = ct_plugin.load_run(tmp_path / "a")
    assert run.spec.desired == "1" and run.spec.protected == ["age"] and run.spec.name == "loans"
    config_file = str(tmp_path / "a" / "config.json")
    assert main(["train", "--config", config_file, "--quiet", "--out", str(tmp_path / "b")]) == 0
    again = ct_plugin.load_run(tmp_path / "b")
    np.testing.assert_array_equal(again.spec.X_test, run.spec.X_test)


def test_csv_dataset_options_are_checked_like_a_named_datasets(tmp_path, capsys):
    csv = _csv(tmp_path)
    base = ["train", "--csv", str(csv), "--target", "approved", "--epochs", "1", "--quiet"]
    assert main([*base, "--dataset-option", "foo=bar", "--out", str(tmp_path / "x")]) == 2
    assert "dataset 'csv': unknown option 'foo'; it accepts: path, target, test_csv" in capsys.readouterr().err
    assert main([*base, "--dataset-option", "impute=mean", "--out", str(tmp_path / "x")]) == 2
    assert "impute" in capsys.readouterr().err
    assert main([*base, "--protect", "--out", str(tmp_path / "x")]) == 2
    assert "names no protected features, so there is nothing to protect" in capsys.readouterr().err
    assert main([*base, "--desired", "maybe", "--out", str(tmp_path / "x")]) == 2
    assert "desired outcome 'maybe' is not a class of 'approved'; its classes: 0, 1" in capsys.readouterr().err
    assert main(["train", "--desired", "1", "--epochs", "1"]) == 2
    assert "--desired: only with --csv FILE" in capsys.readouterr().err
    frame = loans()
    frame.loc[3, "income"] = np.nan
    assert main(["train", "--csv", str(_csv(tmp_path, frame)), "--target", "approved", "--epochs", "1"]) == 2
    assert "--impute median" in capsys.readouterr().err


def test_csv_split_follows_its_own_seed_not_the_training_seed(tmp_path):
    csv = _csv(tmp_path)
    one = ct_plugin.load_dataset("csv", path=str(csv), target="approved", seed=1)
    two = ct_plugin.load_dataset("csv", path=str(csv), target="approved", seed=2)
    np.testing.assert_array_equal(one.X_test, two.X_test)
    other = ct_plugin.load_dataset("csv", path=str(csv), target="approved", split_seed=5)
    assert not np.array_equal(one.X_test, other.X_test)


def test_tune_on_a_csv_takes_trains_data_options_and_writes_them_into_chosen_json(tmp_path, capsys):
    csv = _csv(tmp_path)
    argv = ["tune", "--csv", str(csv), "--target", "approved", "--desired", "1", "--protected", "age",
            "--immutable", "age", "--categorical", "city", "--split-seed", "3", "--epochs", "2", "--seeds", "1",
            "--grid-tau", "0.5", "--grid-lambda-reg", "0.1", "--no-rescue", "--rounds", "2", "--n-factuals", "8",
            "--quiet", "--out", str(tmp_path / "tune")]
    assert main(argv) == 0
    chosen = json.loads((tmp_path / "tune" / "chosen.json").read_text())
    train = chosen["train"]
    assert train["dataset"] == "csv" and train["immutable"] == ["age"]
    assert train["dataset_options"] == {"path": str(csv.resolve()), "target": "approved", "desired": "1",
                                        "protected": ["age"], "categorical": ["city"], "split_seed": 3}
    assert "ct-plugin train --config" in capsys.readouterr().out


def test_desired_class_of_the_built_in_tables_and_of_a_dataframe():
    from ct_plugin.data.tabular import TABLES

    assert {name: info.desired for name, info in TABLES.items()} == {
        "adult": ">50K", "gmsc": "no delinquency", "california_housing": "above median", "credit_default": "no default"}
    for info in TABLES.values():
        assert info.desired in info.class_names
    spec = ct_plugin.from_dataframe(loans(), "approved", class_names=["rejected", "approved"], desired=1)
    assert spec.desired == "approved" and spec.desired_index == 1
    assert spec.class_index("rejected") == 0
    with pytest.raises(CTPluginError, match="has no class 'maybe'; its classes: rejected, approved"):
        spec.class_index("maybe")
    assert ct_plugin.from_dataframe(loans(), "approved").desired is None
