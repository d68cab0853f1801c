"""Counterfactual training as a scikit-learn estimator: a DataFrame, a Pipeline, and DiCE's sklearn backend.

Run: python examples/sklearn_estimator.py [--epochs 20]
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from ct_plugin import CTClassifier


def make_loans(n: int = 1000, seed: int = 0) -> pd.DataFrame:
    """A made-up loan table: approval depends on income, debt and the city."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "income": rng.normal(50, 15, n).round(1),
        "debt": rng.gamma(2.0, 5.0, n).round(1),
        "age": rng.integers(18, 80, n).astype(float),
        "city": rng.choice(["north", "south", "east"], n),
    })
    score = 0.08 * frame["income"] - 0.15 * frame["debt"] + 0.5 * (frame["city"] == "north")
    frame["approved"] = (score + rng.normal(0, 0.5, n) > score.median()).astype(int)
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()

    frame = make_loans()
    X, y = frame.drop(columns="approved"), frame["approved"]
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    settings = {"epochs": args.epochs, "nce": 200, "lr": 0.005, "batch_size": 50}

    # 1. the estimator on a DataFrame: categorical columns become one-hot groups, mutability by name
    clf = CTClassifier(strategy="ct", immutable=["age"], **settings).fit(X_train, y_train)
    print(f"CTClassifier on the DataFrame: test accuracy {clf.score(X_test, y_test):.3f}, "
          f"{clf.log_[-1]['mature']:.0%} mature counterfactuals in the last epoch")

    # 2. inside a scikit-learn Pipeline with its own encoding
    encode = ColumnTransformer([
        ("numeric", StandardScaler(), ["income", "debt", "age"]),
        ("city", OneHotEncoder(sparse_output=False), ["city"]),
    ])
    pipe = Pipeline([("encode", encode), ("ct", CTClassifier(**settings))]).fit(X_train, y_train)
    print(f"Pipeline(ColumnTransformer, CTClassifier): test accuracy {pipe.score(X_test, y_test):.3f}")

    # 3. handed to DiCE's sklearn backend
    try:
        import dice_ml
    except ImportError:
        print("dice-ml is not installed (pip install 'ct-plugin[dice]'): skipping the DiCE part")
        return
    data = dice_ml.Data(dataframe=X_train.assign(approved=y_train), continuous_features=["income", "debt", "age"],
                        outcome_name="approved")
    explainer = dice_ml.Dice(data, dice_ml.Model(model=pipe, backend="sklearn"), method="random")
    query = X_test[pipe.predict(X_test) == 0].iloc[:1]
    result = explainer.generate_counterfactuals(query, total_CFs=2, desired_class="opposite",
                                                features_to_vary=["income", "debt", "city"], random_seed=0)
    counterfactuals = result.cf_examples_list[0].final_cfs_df
    print("\na rejected applicant:")
    print(query.to_string(index=False))
    approved = pipe.predict(counterfactuals[X.columns]).tolist()
    print(f"DiCE counterfactuals for the CT pipeline (the pipeline predicts approved = {approved}):")
    print(counterfactuals.to_string(index=False))


if __name__ == "__main__":
    main()
