"""The main job of `make demo`: train a baseline and a CT model on 2-D circles and compare them.

Prints accuracy and the quality of each model's own counterfactuals (validity, cost and
implausibility = mean distance to the real members of the target class), and writes
runs/demo/comparison.png with both models' decision regions and counterfactuals.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

import ct_plugin
from ct_plugin.constraints import SearchConstraints


def counterfactuals(model, spec, n=200):
    """Test-time ECCCo counterfactuals (tau 0.95, T 50) of the first n test rows toward the other class."""
    X = torch.as_tensor(spec.X_test[:n])
    with torch.no_grad():
        targets = 1 - model(X).argmax(dim=1)
    generator = ct_plugin.get_registry().build("generator", "eccco", lambda_energy=0.5)
    result = generator.search(model, X, targets, SearchConstraints.from_spec(spec), tau=0.95, max_steps=50, epsilon=0.3)
    return X, targets, result


HIGHER_IS_BETTER = ("test accuracy", "validity")
"""The other metrics (cost, implausibility) are better when lower."""


def summarise(model, spec):
    X, targets, result = counterfactuals(model, spec)
    X_train, y_train = torch.as_tensor(spec.X_train), torch.as_tensor(spec.y_train)
    cf = result.counterfactuals
    distances = torch.cat(
        [torch.cdist(cf[targets == k], X_train[y_train == k]).mean(dim=1) for k in range(spec.n_classes)]
    )
    with torch.no_grad():
        accuracy = (model(torch.as_tensor(spec.X_test)).argmax(1) == torch.as_tensor(spec.y_test)).float().mean()
    return {
        "test accuracy": float(accuracy),
        "validity": float(result.converged.float().mean()),
        "cost (L1)": float((cf - X).abs().sum(dim=1).mean()),
        "implausibility": float(distances.mean()),
    }


def plot(models, spec, path):
    fig, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 4.5))
    grid = np.stack(np.meshgrid(np.linspace(-2.5, 2.5, 200), np.linspace(-2.5, 2.5, 200)), -1).reshape(-1, 2)
    for ax, (name, model) in zip(axes, models.items()):
        with torch.no_grad():
            p = torch.softmax(model(torch.as_tensor(grid, dtype=torch.float32)), 1)[:, 1].numpy()
        ax.contourf(
            grid[:, 0].reshape(200, 200),
            grid[:, 1].reshape(200, 200),
            p.reshape(200, 200),
            levels=20,
            cmap="RdBu",
            alpha=0.6,
        )
        ax.scatter(spec.X_train[:400, 0], spec.X_train[:400, 1], c=spec.y_train[:400], cmap="RdBu", s=5, alpha=0.4)
        X, _, result = counterfactuals(model, spec, n=30)
        for a, b in zip(X.numpy(), result.counterfactuals.numpy()):
            ax.annotate("", xy=b, xytext=a, arrowprops={"arrowstyle": "->", "lw": 0.8})
        cf, valid = result.counterfactuals.numpy(), result.converged.numpy()
        ax.scatter(*cf[valid].T, marker="*", s=60, c="gold", edgecolor="k", label="valid counterfactual")
        ax.scatter(*cf[~valid].T, marker="X", s=50, c="red", edgecolor="k", label="invalid (did not reach tau)")
        ax.set_title(name)
        ax.set_xlabel(f"{spec.feature_names[0]} (standardised)")
        ax.set_ylabel(f"{spec.feature_names[1]} (standardised)")
        # below the plot, so that no point is hidden behind it
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2, fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="circles")
    parser.add_argument("--epochs", type=int, default=int(os.environ.get("EPOCHS", 30)),
                        help="training epochs (default 30, or $EPOCHS)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/demo")
    args = parser.parse_args()
    out = Path(args.out)
    spec = ct_plugin.load_dataset(args.dataset, seed=args.seed)
    print(spec.summary())
    models = {}
    for strategy in ("vanilla", "ct"):
        run_dir = out / f"{args.dataset}-{strategy}"
        if (run_dir / "model.pt").is_file():
            models[strategy] = ct_plugin.load_model(run_dir)
            print(f"{strategy}: reusing {run_dir}")
            continue
        print(f"training {strategy} for {args.epochs} epochs ...", end=" ", flush=True)
        result = ct_plugin.train(spec, strategy=strategy, epochs=args.epochs, seed=args.seed, out=run_dir, quiet=True)
        print(f"{sum(r['epoch_seconds'] for r in result.log):.1f} s -> {run_dir}")
        models[strategy] = result.model
    with ct_plugin.thread_scope():  # the library's thread rule for the searches below too
        rows = {name: summarise(model, spec) for name, model in models.items()}
    print(f"\n{'':<16}{'baseline':>12}{'CT':>12}{'change':>10}  better is")
    for key in rows["vanilla"]:
        a, b = rows["vanilla"][key], rows["ct"][key]
        change = f"{100 * (b - a) / abs(a):+.1f}%" if a else ""
        higher = key in HIGHER_IS_BETTER
        verdict = "same" if abs(b - a) < 5e-4 else ("CT better" if (b > a) == higher else "CT worse")
        print(f"{key:<16}{a:>12.3f}{b:>12.3f}{change:>10}  {'higher' if higher else 'lower':<7}({verdict})")
    figure = out / "comparison.png"
    plot({"baseline (vanilla)": models["vanilla"], "counterfactual training": models["ct"]}, spec, figure)
    print(f"\nfigure: {figure}")


if __name__ == "__main__":
    main()
