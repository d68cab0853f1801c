"""Data as the reference builds it: raw-scale synthetic sets, class balancing, validation splits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ct_plugin.cli.common import key_values as _key_values
from ct_plugin.data.builder import from_arrays, from_dataframe
from ct_plugin.data.load import load_dataset
from ct_plugin.data.reference import reference_difference, reference_options
from ct_plugin.data.spec import DatasetSpec
from ct_plugin.data.synthetic import make_synthetic
from ct_plugin.data.tabular import REFERENCE_BALANCED, TABLES, load_table
from ct_plugin.errors import CTPluginError

# numpy.random.default_rng(42).uniform(-10, 10, size=(2, 2)), written out
SEED42_CENTRES = np.array([[5.479121, -1.222431], [7.171958, 3.947361]])


# ------------------------------------------------------------- synthetic, reference style
@pytest.mark.parametrize("kind", ["linearly_separable", "overlapping", "circles", "moons"])
def test_reference_style_sizes_and_raw_scale(kind):
    spec = load_dataset(kind, style="reference")
    assert (len(spec.y_train), len(spec.y_test)) == (3000, 900)
    assert np.bincount(spec.y_train).tolist() == [1500, 1500]
    assert np.bincount(spec.y_test).tolist() == [450, 450]
    assert spec.mean.tolist() == [0.0, 0.0] and spec.scale.tolist() == [1.0, 1.0]
    decoded = spec.decode(spec.X_train[:5]).to_numpy()
    np.testing.assert_allclose(decoded, spec.X_train[:5], rtol=0, atol=1e-6)
    assert spec.options["style"] == "reference" and spec.options["n_validation"] == 600


def test_reference_blobs_centres_are_the_seeded_uniform_draw():
    for kind, std in (("linearly_separable", 0.5), ("overlapping", 2.0)):
        spec = make_synthetic(kind, style="reference")
        np.testing.assert_allclose(spec.options["centres"], SEED42_CENTRES, atol=1e-6)
        assert spec.options["centre_seed"] == 42 and spec.options["noise"] == std
        for cls in (0, 1):
            rows = spec.X_train[spec.y_train == cls]
            # 1500 draws: the mean is within 4 standard errors of the centre, the std within 10%
            assert np.all(np.abs(rows.mean(axis=0) - SEED42_CENTRES[cls]) < 4 * std / np.sqrt(1500))
            np.testing.assert_allclose(rows.std(axis=0), std, rtol=0.1)
    distance = np.linalg.norm(SEED42_CENTRES[0] - SEED42_CENTRES[1])
    assert distance == pytest.approx(5.44, abs=0.01)
    # not standardised: the training mean is the midpoint of the raw centres
    spec = make_synthetic("linearly_separable", style="reference")
    np.testing.assert_allclose(spec.X_train.mean(axis=0), SEED42_CENTRES.mean(axis=0), atol=0.05)


def test_reference_blobs_accept_pinned_centres():
    spec = make_synthetic("overlapping", style="reference", centres=[[-5.0, 0.0], [5.0, 0.0]])
    assert spec.options["centres"] == [[-5.0, 0.0], [5.0, 0.0]] and "centre_seed" not in spec.options
    np.testing.assert_allclose(spec.X_train[spec.y_train == 1].mean(axis=0), [5.0, 0.0], atol=0.25)
    with pytest.raises(CTPluginError, match="centres must be two finite"):
        make_synthetic("overlapping", style="reference", centres=[[0.0, 0.0]])
    with pytest.raises(CTPluginError, match="not both"):
        make_synthetic("overlapping", style="reference", centres=[[0, 0], [1, 1]], centre_seed=1)


def test_reference_circles_are_a_tiny_blob_inside_a_unit_ring():
    spec = make_synthetic("circles", style="reference")
    radius = np.linalg.norm(spec.X_train, axis=1)
    inner, ring = radius[spec.y_train == 0], radius[spec.y_train == 1]
    # inner: radius 0.01 plus 2-D noise 0.15, whose mean norm is 0.15 * sqrt(pi / 2) = 0.188
    assert inner.mean() == pytest.approx(0.15 * np.sqrt(np.pi / 2), abs=0.02)
    assert ring.mean() == pytest.approx(1.0, abs=0.02)
    assert np.quantile(inner, 0.99) < np.quantile(ring, 0.01) + 0.3


def test_reference_moons_have_the_mljbase_offset():
    spec = make_synthetic("moons", style="reference")
    upper, lower = spec.X_train[spec.y_train == 0], spec.X_train[spec.y_train == 1]
    # a unit half circle has mean (0, 2/pi); the second moon is mirrored and shifted by (1.0, 0.3)
    np.testing.assert_allclose(upper.mean(axis=0), [0.0, 2 / np.pi], atol=0.04)
    np.testing.assert_allclose(lower.mean(axis=0), [1.0, 0.3 - 2 / np.pi], atol=0.04)
    assert spec.options["noise"] == 0.1


def test_raw_scale_bounds_are_mean_plus_minus_two_sd_in_raw_units():
    rng = np.random.default_rng(3)
    X = np.column_stack([rng.normal(50.0, 4.0, 400), rng.uniform(-1.0, 1.0, 400)])
    spec = from_arrays(X, np.arange(400) % 2, name="raw", standardise=False)
    raw = spec.X_train.astype(np.float64)
    mu, sd = raw.mean(axis=0), raw.std(axis=0)
    np.testing.assert_allclose(spec.lower, np.minimum(mu - 2 * sd, raw.min(axis=0)), rtol=1e-5)
    np.testing.assert_allclose(spec.upper, np.maximum(mu + 2 * sd, raw.max(axis=0)), rtol=1e-5)
    assert spec.X_train[:, 0].mean() == pytest.approx(50.0, abs=1.0)


def test_standardised_style_stays_the_default():
    spec = load_dataset("moons")
    assert (len(spec.y_train), len(spec.y_test)) == (3000, 750)
    np.testing.assert_allclose(spec.X_train.mean(axis=0), 0.0, atol=1e-5)
    assert "style" not in spec.options


def test_style_through_the_dataset_option_parser():
    options = _key_values(["style=reference", "n_validation=0"], "--dataset-option")
    spec = load_dataset("circles", **options)
    assert options == {"style": "reference", "n_validation": 0}
    assert (len(spec.y_train), len(spec.y_test)) == (3600, 900)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"style": "julia"}, "unknown synthetic style"),
        ({"centre_seed": 1}, "style='reference' only"),
        ({"style": "reference", "n_validation": -1}, "n_validation must be"),
        ({"style": "reference", "n_samples": 100}, "cannot carve 600"),
    ],
)
def test_synthetic_bad_options(kwargs, message):
    with pytest.raises(CTPluginError, match=message):
        make_synthetic("linearly_separable", **kwargs)


def test_centre_options_refused_for_circles_and_moons():
    for kind in ("circles", "moons"):
        with pytest.raises(CTPluginError, match="blob sets"):
            make_synthetic(kind, style="reference", centre_seed=3)


# ---------------------------------------------------------------------------- balancing
def _imbalanced_frame(n_major: int = 300, n_minor: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = n_major + n_minor
    return pd.DataFrame(
        {
            "row_id": np.arange(n, dtype=float),
            "colour": rng.choice(["red", "blue"], n),
            "label": ["yes"] * n_major + ["no"] * n_minor,
        }
    )


def _row_ids(spec: DatasetSpec) -> set[int]:
    frames = [spec.decode(spec.X_train), spec.decode(spec.X_test)]
    return {int(round(v)) for frame in frames for v in frame["row_id"]}


def test_balance_undersamples_to_the_minority_count_and_keeps_every_minority_row():
    frame = _imbalanced_frame()
    spec = from_dataframe(frame, "label", balance=True, seed=5)
    counts = np.bincount(np.concatenate([spec.y_train, spec.y_test]))
    assert counts.tolist() == [40, 40]
    ids = _row_ids(spec)
    assert set(range(300, 340)) <= ids  # the 40 "no" rows are rows 300..339
    assert len(ids) == 80 and spec.options["balance"] is True


def test_balance_is_seeded():
    frame = _imbalanced_frame()
    first = _row_ids(from_dataframe(frame, "label", balance=True, seed=5))
    again = _row_ids(from_dataframe(frame, "label", balance=True, seed=5))
    other = _row_ids(from_dataframe(frame, "label", balance=True, seed=6))
    assert first == again and first != other


def test_balance_off_keeps_every_row_and_bad_flag_is_refused():
    frame = _imbalanced_frame()
    spec = from_dataframe(frame, "label")
    assert len(spec.y_train) + len(spec.y_test) == 340 and "balance" not in spec.options
    with pytest.raises(CTPluginError, match="balance must be True or False"):
        from_dataframe(frame, "label", balance="yes")
    with pytest.raises(CTPluginError, match="balancing leaves 2 rows"):
        from_dataframe(_imbalanced_frame(n_major=30, n_minor=1), "label", balance=True)


def test_balance_real_tables(data_dir):
    assert REFERENCE_BALANCED == ("gmsc", "california_housing", "credit_default")
    plain = load_table("gmsc", data_dir)
    spec = load_table("gmsc", data_dir, balance=True)
    minority = int(np.bincount(np.concatenate([plain.y_train, plain.y_test])).min())
    counts = np.bincount(np.concatenate([spec.y_train, spec.y_test]))
    assert counts.tolist() == [minority, minority] == [1955, 1955]
    assert spec.options["balance"] is True and plain.options["balance"] is False
    credit = load_table("credit_default", data_dir, balance=True)
    # 13,272 rows: the size of the reference's balanced Credit default
    assert len(credit.y_train) + len(credit.y_test) == 13272
    with pytest.raises(CTPluginError, match="balance must be true or false"):
        load_table("gmsc", data_dir, balance="1")


def test_balance_through_the_dataset_option_parser(data_dir):
    options = _key_values(["balance=true"], "--dataset-option")
    spec = load_dataset("credit_default", data_dir=data_dir, **options)
    assert np.bincount(spec.y_train).tolist() == [5309, 5309]


def test_sklearn_california_features_are_derived_from_the_census_columns(data_dir):
    census = pd.read_csv(data_dir / "california_housing.csv")
    spec = load_table("california_housing", data_dir, features="sklearn")
    assert spec.feature_names == ["MedInc", "HouseAge", "AveRooms", "AveBedrms", "Population", "AveOccup",
                                  "Latitude", "Longitude"]
    assert spec.protected == ["HouseAge"] and spec.options["features"] == "sklearn"
    assert len(spec.y_train) + len(spec.y_test) == len(census) == 20640  # the missing bedrooms are imputed
    decoded = spec.decode(np.concatenate([spec.X_train, spec.X_test]))
    # the first census row (Near Bay: 880 rooms, 129 bedrooms, 322 people, 126 households) as scikit-learn has it
    first = decoded[np.isclose(decoded.Latitude, 37.88) & np.isclose(decoded.Longitude, -122.23)
                    & np.isclose(decoded.MedInc, 8.3252)].iloc[0]
    assert first.AveRooms == pytest.approx(880 / 126, rel=1e-5)
    assert first.AveBedrms == pytest.approx(129 / 126, rel=1e-5)
    assert first.AveOccup == pytest.approx(322 / 126, rel=1e-5)
    assert first.HouseAge == pytest.approx(41.0, rel=1e-5)
    with pytest.raises(CTPluginError, match="adult has no feature set 'sklearn'"):
        load_table("adult", data_dir, features="sklearn")


def test_reference_options_and_differences():
    assert reference_options("circles") == {"style": "reference"}
    assert reference_options("gmsc") == {"balance": True}
    assert reference_options("california_housing") == {"balance": True, "features": "sklearn"}
    assert reference_options("adult") == {}
    assert "108 columns, 32,561 rows" in reference_difference("adult")
    assert "20 encoded columns" in TABLES["adult"].reference_difference
    assert reference_difference("credit_default") == ""
    assert "balance=True" in reference_difference("credit_default", balance=False)
    assert "5.44 apart" in reference_difference("overlapping")
    assert reference_difference("circles") == ""


# ----------------------------------------------------------------------- validation split
def _id_spec(n: int = 500, minority_share: float = 0.3, seed: int = 0) -> DatasetSpec:
    labels = (np.arange(n) < int(n * minority_share)).astype(int)
    X = np.column_stack([np.arange(n, dtype=float), np.random.default_rng(1).normal(size=n)])
    return from_arrays(X, labels, name="ids", seed=seed, options={"seed": seed})


def _ids(spec: DatasetSpec, X: np.ndarray) -> set[int]:
    return {int(round(v)) for v in spec.decode(X)["x1"]}


def test_validation_split_sizes_and_stratification():
    spec = _id_spec()
    n_train = len(spec.y_train)
    carved = spec.validation_split(seed=3)
    assert len(carved.y_test) == round(0.2 * n_train) == 80
    assert len(carved.y_train) == n_train - 80
    assert np.bincount(carved.y_test).tolist() == [56, 24]  # 70/30 like the 280/120 training rows
    assert len(spec.validation_split(50).y_test) == 50
    assert len(spec.validation_split(0.25).y_test) == 100


def test_validation_split_default_is_a_fifth_capped_at_5000():
    spec = _id_spec(n=8000)
    assert len(spec.validation_split().y_test) == round(0.2 * len(spec.y_train))
    assert len(_id_spec(n=40000).validation_split().y_test) == 5000


def test_validation_split_is_disjoint_from_the_test_rows_and_keeps_the_standardiser():
    spec = _id_spec()
    carved = spec.validation_split(seed=3)
    train, val, test = (_ids(spec, X) for X in (carved.X_train, carved.X_test, spec.X_test))
    assert not train & val and not (train | val) & test
    assert train | val == _ids(spec, spec.X_train)
    for attr in ("mean", "scale", "lower", "upper"):
        np.testing.assert_array_equal(getattr(carved, attr), getattr(spec, attr))
    assert carved.name == spec.name
    assert carved.options["validation_of"] == {"seed": 0}
    assert (carved.options["validation_size"], carved.options["validation_seed"]) == (80, 3)
    assert _ids(spec, spec.validation_split(seed=3).X_test) == val
    assert _ids(spec, spec.validation_split(seed=4).X_test) != val


@pytest.mark.parametrize(
    "size, message",
    [(400, "cannot carve 400"), (1000, "cannot carve 1000"), (0, "at least 1 row"), (1.5, "strictly between")],
)
def test_validation_split_refuses_impossible_sizes(size, message):
    with pytest.raises(CTPluginError, match=message):
        _id_spec().validation_split(size)


def test_validation_split_refuses_a_too_small_class():
    spec = _id_spec(n=40, minority_share=0.1)  # 3 training rows of class 1
    with pytest.raises(CTPluginError, match="class 1 has 3 training rows"):
        spec.validation_split(8)
    with pytest.raises(CTPluginError, match="validation size must be"):
        spec.validation_split(True)
