"""Counterfactual training on your own table: a DataFrame, your own torch module, mutability by name,
then recourse for rejected applicants with ``ct_plugin.explain``.

Run: python examples/own_dataframe.py [--epochs 30] [--out runs/loans-ct]
     python examples/own_dataframe.py --write-csv loans.csv   # only write the made-up table (for `train --csv`)

Integer columns (education_years, age) stay integers: the search keeps them inside their observed
range and ``spec.decode`` rounds them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import ct_plugin


def make_loans(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    """A made-up loan table: approval depends on income, debt, education and (a little) age."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "income": rng.normal(50, 15, n).round(1),
            "debt": rng.gamma(2.0, 5.0, n).round(1),
            "education_years": rng.integers(8, 21, n),
            "age": rng.integers(18, 80, n),
            "city": rng.choice(["north", "south", "east"], n),
        }
    )
    score = 0.08 * frame["income"] - 0.15 * frame["debt"] + 0.2 * frame["education_years"] + 0.01 * frame["age"]
    frame["approved"] = np.where(score + rng.normal(0, 0.8, n) > score.median(), "yes", "no")
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", default=None, help="optional run directory")
    parser.add_argument("--write-csv", metavar="PATH", help="write the made-up loan table to PATH and stop")
    args = parser.parse_args()

    frame = make_loans()
    if args.write_csv:
        Path(args.write_csv).parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(args.write_csv, index=False)
        print(f"wrote {len(frame)} rows to {args.write_csv} (label column: approved, yes or no)")
        return
    spec = ct_plugin.from_dataframe(
        frame,
        target="approved",
        desired="yes",  # the favourable outcome ("approved" is "yes"): the target of recourse
        categorical=["city"],
        immutable=["age", "city"],
        increase_only=["education_years"],
        decrease_only=["debt"],
        bounds={"debt": (0.0, 100.0), "income": (0.0, 200.0)},
    )
    print(spec.summary())
    model = torch.nn.Sequential(torch.nn.Linear(spec.n_features, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))
    result = ct_plugin.train(spec, model, strategy="ct", epochs=args.epochs, batch_size=64, nce=300, out=args.out)
    last = result.log[-1]
    print(f"test accuracy {last['test_accuracy']:.3f}, mature counterfactuals {last['mature']:.2f}")

    # recourse for the first three applicants the model rejects, in original units: the changed features,
    # p(approved) before and after, cost and plausibility (the explain defaults: docs/recourse_defaults.md)
    explanation = ct_plugin.explain((result.model, spec), rejected=3, progress=False)
    print(explanation.to_markdown())

if __name__ == "__main__":
    main()
