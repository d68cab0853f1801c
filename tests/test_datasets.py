"""Dataset loaders and the DataFrame constructor: shapes, encodings, mutability, bounds, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import ct_plugin
from ct_plugin import CTPluginError, from_dataframe, load_dataset
from ct_plugin.data.tabular import TABLES


@pytest.mark.parametrize("name", ["linearly_separable", "overlapping", "circles", "moons"])
def test_synthetic_shapes_and_split(name):
    spec = load_dataset(name, n_samples=500, seed=3)
    assert spec.X_train.shape == (400, 2) and spec.X_test.shape == (100, 2)
    assert spec.X_train.dtype == np.float32 and spec.y_train.dtype == np.int64
    assert set(np.unique(spec.y_train)) == {0, 1}
    assert spec.mutability == ["both", "both"] and spec.protected == ["x1"]
    # standardised on the training split
    np.testing.assert_allclose(spec.X_train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(spec.X_train.std(axis=0), 1, atol=1e-4)
    # default bounds: [min(-2, z_min), max(2, z_max)]
    np.testing.assert_allclose(spec.lower, np.minimum(-2, spec.X_train.min(axis=0)), rtol=1e-6)
    np.testing.assert_allclose(spec.upper, np.maximum(2, spec.X_train.max(axis=0)), rtol=1e-6)


def test_split_is_deterministic_by_seed():
    a, b, c = (load_dataset("moons", n_samples=300, seed=s) for s in (1, 1, 2))
    np.testing.assert_array_equal(a.X_train, b.X_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.X_train, c.X_train)


def test_noise_and_size_are_configurable():
    quiet = load_dataset("moons", n_samples=200, noise=0.0)
    noisy = load_dataset("moons", n_samples=200, noise=0.5)
    assert len(quiet.y_train) + len(quiet.y_test) == 200
    assert quiet.options["noise"] == 0.0 and noisy.options["noise"] == 0.5
    with pytest.raises(CTPluginError, match="n_samples"):
        load_dataset("moons", n_samples=-5)
    with pytest.raises(CTPluginError, match="noise"):
        load_dataset("circles", noise=-1)


def test_digits_and_breast_cancer():
    digits = load_dataset("digits")
    assert digits.n_classes == 10 and digits.n_features == 64 and digits.image_shape == (8, 8)
    assert digits.X_train.min() >= -1 and digits.X_train.max() <= 1
    assert len(digits.protected) == 16  # top and bottom pixel rows
    restored = digits.decode(digits.X_test[:3]).to_numpy()
    assert restored.min() >= 0 and restored.max() <= 16
    cancer = load_dataset("breast_cancer")
    assert cancer.n_classes == 2 and cancer.n_features == 30


def test_adult_encoding(data_dir):
    spec = load_dataset("adult", data_dir=data_dir)
    assert len(spec.y_train) + len(spec.y_test) == 48832
    assert spec.n_features == 6 + 7 * 2
    assert spec.categorical["sex"] == ["Female", "Male"]
    group = spec.columns_of("sex")
    block = spec.X_train[:, group]
    assert set(np.unique(block)) == {0.0, 1.0} and np.all(block.sum(axis=1) == 1)
    assert spec.protected == ["age"] and spec.class_names == ["<=50K", ">50K"]
    protected = spec.with_mutability(protect=True, increase_only=["education-num"])
    assert protected.mutability[spec.columns_of("age")[0]] == "none"
    assert protected.mutability[spec.columns_of("education-num")[0]] == "increase"
    decoded = spec.decode(spec.X_test[:5])
    assert list(decoded.columns) == spec.raw_feature_names
    np.testing.assert_allclose(spec.encode(decoded), spec.X_test[:5], atol=1e-5)


def test_other_tables(data_dir):
    gmsc = load_dataset("gmsc", data_dir=data_dir)
    assert gmsc.n_features == 10 and gmsc.protected == ["age"]
    housing = load_dataset("california_housing", data_dir=data_dir)
    assert housing.categorical["ocean_proximity"] == ["<1H OCEAN", "INLAND", "ISLAND", "NEAR BAY", "NEAR OCEAN"]
    assert np.isfinite(housing.X_train).all()  # 207 missing total_bedrooms imputed
    assert abs(housing.y_train.mean() - 0.5) < 0.01  # binarised at the median
    credit = load_dataset("credit_default", data_dir=data_dir)
    assert "ID" not in credit.raw_feature_names and credit.protected == ["X5"]
    assert credit.n_features == 20 + 2 + 7 + 4


def test_max_rows_subsample(data_dir):
    spec = load_dataset("adult", data_dir=data_dir, max_rows=1000, seed=4)
    assert len(spec.y_train) + len(spec.y_test) == 1000


def test_missing_table_names_file_dir_and_origin(tmp_path):
    with pytest.raises(CTPluginError) as info:
        load_dataset("adult", data_dir=tmp_path)
    message = str(info.value)
    assert "adult.csv" in message and str(tmp_path) in message and "cf-data" in message


def test_table_without_target_column(tmp_path):
    pd.DataFrame({"age": [1, 2], "x": [3, 4]}).to_csv(tmp_path / TABLES["gmsc"].file, index=False)
    with pytest.raises(CTPluginError, match="no target column 'SeriousDlqin2yrs'"):
        load_dataset("gmsc", data_dir=tmp_path)


def test_unknown_names():
    with pytest.raises(CTPluginError, match="unknown dataset 'cifar10'; available datasets: adult"):
        load_dataset("cifar10")
    with pytest.raises(CTPluginError, match="unknown feature 'agee'.*valid names: x1, x2"):
        load_dataset("moons", n_samples=100, immutable=["agee"])


def frame(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "income": rng.normal(50, 10, n),
            "age": rng.integers(18, 80, n),
            "city": rng.choice(["a", "b", "c"], n),
            "approved": rng.integers(0, 2, n),
        }
    )


def test_from_dataframe_builds_spec():
    spec = from_dataframe(frame(), "approved", immutable=["age"], increase_only=["income"], bounds={"income": (0, 200)})
    assert spec.feature_names == ["income", "age", "city=a", "city=b", "city=c"]
    assert spec.mutability == ["increase", "none", "both", "both", "both"]
    assert spec.onehot_groups == [[2, 3, 4]]
    j = 0
    np.testing.assert_allclose(spec.lower[j] * spec.scale[j] + spec.mean[j], 0, atol=1e-4)
    np.testing.assert_allclose(spec.upper[j] * spec.scale[j] + spec.mean[j], 200, atol=1e-3)


@pytest.mark.parametrize(
    ("change", "kwargs", "message"),
    [
        (
            lambda f: f.assign(income=np.where(np.arange(len(f)) == 3, np.nan, f["income"])),
            {},
            r"missing values in feature columns: income \(1\)",
        ),
        (lambda f: f.assign(income=np.inf), {"impute": "median"}, "non-finite values"),
        (lambda f: f.drop(columns="approved"), {}, "target column 'approved' not found"),
        (lambda f: f.assign(approved=np.linspace(0, 1, len(f))), {}, "looks continuous"),
        (lambda f: f.assign(approved=1), {}, "single class"),
        (lambda f: f, {"immutable": ["salary"]}, "unknown feature 'salary'"),
        (lambda f: f, {"test_size": -0.2}, "test_size"),
        (lambda f: f, {"continuous": ["city"]}, "not numeric"),
        (lambda f: f, {"increase_only": ["city"]}, "categorical"),
    ],
)
def test_from_dataframe_bad_input(change, kwargs, message):
    with pytest.raises(CTPluginError, match=message):
        from_dataframe(change(frame()), "approved", **kwargs)


def test_from_dataframe_median_imputation():
    f = frame()
    f.loc[3, "income"] = np.nan
    spec = from_dataframe(f, "approved", impute="median")
    assert np.isfinite(spec.X_train).all() and np.isfinite(spec.X_test).all()


def test_string_labels_and_class_names():
    f = frame().assign(approved=lambda d: np.where(d["approved"] == 1, "yes", "no"))
    spec = from_dataframe(f, "approved")
    assert spec.class_names == ["no", "yes"]


def test_spec_save_load_roundtrip(tmp_path):
    spec = from_dataframe(frame(), "approved", immutable=["age"])
    spec.save(tmp_path)
    again = ct_plugin.DatasetSpec.load(tmp_path)
    assert again.metadata() == spec.metadata()
    np.testing.assert_array_equal(again.X_train, spec.X_train)
