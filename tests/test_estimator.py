"""CTClassifier: scikit-learn's own estimator checks, DataFrames, Pipeline, DiCE's sklearn backend."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import ct_plugin
from ct_plugin import CTClassifier
from ct_plugin.data.builder import from_dataframe

# small and quick, yet accurate enough for check_classifiers_train (> 0.83 on sklearn's blobs)
QUICK = {"epochs": 10, "nce": 16, "lr": 0.01, "train_options": {"max_steps": 5}}


def expected_failed_checks(estimator) -> dict[str, str]:
    """Checks of scikit-learn's suite that cannot apply to CTClassifier, with the reason.

    None at present: every check runs and passes. (sklearn itself skips ``check_array_api_input``
    unless SCIPY_ARRAY_API=1; CTClassifier converts inputs to numpy/torch and does not claim
    array-API support, so its tags leave ``array_api_support`` False.)
    """
    return {}


@parametrize_with_checks([CTClassifier(**QUICK)], expected_failed_checks=expected_failed_checks)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def loan_frame(n: int = 240, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    income = rng.normal(50, 15, n)
    debt = rng.normal(20, 8, n)
    city = rng.choice(["north", "south", "east"], n)
    age = rng.integers(20, 70, n).astype(float)
    score = (income - 2 * debt) / 10 + (city == "north") * 0.5 + rng.normal(0, 0.3, n)
    return pd.DataFrame({"income": income, "debt": debt, "city": city, "age": age,
                         "approved": np.where(score > 0.5, "yes", "no")})


def test_dataframe_with_categoricals_and_string_labels():
    frame = loan_frame()
    X, y = frame.drop(columns="approved"), frame["approved"]
    clf = CTClassifier(immutable=["age"], increase_only=["income"], protected=["age"], **QUICK).fit(X, y)
    assert clf.classes_.tolist() == ["no", "yes"]
    assert clf.feature_names_in_.tolist() == ["income", "debt", "city", "age"]
    assert clf.spec_.categorical == {"city": ["east", "north", "south"]}
    assert clf.spec_.mutability[clf.spec_.feature_names.index("age")] == "none"
    assert clf.spec_.mutability[clf.spec_.feature_names.index("income")] == "increase"
    assert len(clf.log_) == QUICK["epochs"] and clf.log_[-1]["ct_on"]
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert clf.score(X, y) > 0.8
    assert set(clf.predict(X.iloc[:5])) <= {"no", "yes"}
    # the columns are found by name, whatever their order
    np.testing.assert_allclose(clf.predict_proba(X[X.columns[::-1]]), proba)
    assert clf.encode(X).shape == (len(X), clf.spec_.n_features)
    with pytest.raises(ValueError, match="lacks the columns.*city"):
        clf.predict(X.drop(columns="city"))


def test_fit_is_the_trainer_on_the_same_spec():
    frame = loan_frame()
    X, y = frame.drop(columns="approved"), frame["approved"]
    clf = CTClassifier(**QUICK).fit(X, y)
    labelled = X.assign(__ct_target__=np.unique(y, return_inverse=True)[1])
    spec = from_dataframe(labelled, "__ct_target__", test_size=0.0, class_names=["no", "yes"], name="CTClassifier")
    result = ct_plugin.train(spec, "mlp", config=clf.config_, quiet=True)
    for a, b in zip(clf.model_.state_dict().values(), result.model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
    assert [r["yloss"] for r in clf.log_] == pytest.approx([r["yloss"] for r in result.log])


def test_params_clone_and_validation_split():
    clf = CTClassifier(strategy="vanilla", hidden=(8, 8), validation_fraction=0.25, epochs=3)
    params = clf.get_params()
    assert params["strategy"] == "vanilla" and params["hidden"] == (8, 8)
    twin = clone(clf).set_params(epochs=2, random_state=3)
    assert twin.epochs == 2 and twin.random_state == 3 and clf.epochs == 3
    frame = loan_frame()
    twin.fit(frame.drop(columns="approved"), frame["approved"])
    assert len(twin.spec_.X_test) == pytest.approx(0.25 * len(frame), abs=2)
    assert np.isfinite(twin.log_[-1]["test_accuracy"])
    assert twin.config_.model_options == {"hidden": [8, 8]}


def test_bad_settings_are_clear_value_errors():
    X, y = np.random.default_rng(0).normal(size=(20, 2)), np.arange(20) % 2
    with pytest.raises(ValueError, match="unknown strategy 'magic'"):
        CTClassifier(strategy="magic", epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="validation_fraction"):
        CTClassifier(validation_fraction=1.5).fit(X, y)
    with pytest.raises(ValueError, match="epochs"):
        CTClassifier(epochs=0).fit(X, y)
    with pytest.raises(ValueError, match="unknown config key"):
        CTClassifier(train_options={"nonsense": 1}).fit(X, y)
    with pytest.raises(ValueError, match="column index 5"):
        CTClassifier(immutable=[5], epochs=1).fit(X, y)


def _pipeline() -> Pipeline:
    encode = ColumnTransformer([
        ("numeric", StandardScaler(), ["income", "debt", "age"]),
        ("city", OneHotEncoder(sparse_output=False), ["city"]),
    ])
    return Pipeline([("encode", encode), ("ct", CTClassifier(**QUICK))])


def test_inside_a_pipeline():
    frame = loan_frame()
    X, y = frame.drop(columns="approved"), frame["approved"]
    pipe = _pipeline().fit(X, y)
    assert pipe.score(X, y) > 0.8
    assert pipe.named_steps["ct"].n_features_in_ == 6
    assert pipe.predict_proba(X).shape == (len(X), 2)


@pytest.mark.dice
def test_handed_to_dice_sklearn_backend():
    dice_ml = pytest.importorskip("dice_ml", reason="dice-ml is not installed; pip install 'ct-plugin[dice]'")
    frame = loan_frame()
    X, y = frame.drop(columns="approved"), (frame["approved"] == "yes").astype(int)
    pipe = _pipeline().fit(X, y)
    data = dice_ml.Data(dataframe=X.assign(approved=y), continuous_features=["income", "debt", "age"],
                        outcome_name="approved")
    model = dice_ml.Model(model=pipe, backend="sklearn")
    explainer = dice_ml.Dice(data, model, method="random")
    query = X[pipe.predict(X) == 0].iloc[:2]
    result = explainer.generate_counterfactuals(query, total_CFs=2, desired_class="opposite",
                                                features_to_vary=["income", "debt", "city"], random_seed=0)
    for example, (_, row) in zip(result.cf_examples_list, query.iterrows(), strict=True):
        cfs = example.final_cfs_df
        assert len(cfs) >= 1
        assert (pipe.predict(cfs[X.columns]) == 1).all()
        assert (cfs["age"].to_numpy(dtype=float) == pytest.approx(row["age"]))  # not in features_to_vary
