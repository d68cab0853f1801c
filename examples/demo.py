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
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

import ct_plugin
from ct_plugin.constraints import SearchConstraints

GENERATOR = "eccco"
"""The test-time generator of the comparison (the figure's title says so)."""
LAMBDA_ENERGY = 0.5
TAU = 0.95
"""Decision threshold of the test-time search: a counterfactual is valid once p(target) reaches it."""
MAX_STEPS = 50


def counterfactuals(model, spec, n=200):
    """Test-time ECCCo counterfactuals (tau TAU, T MAX_STEPS) of the first n test rows toward the other class."""
    X = torch.as_tensor(spec.X_test[:n])
    with torch.no_grad():
        targets = 1 - model(X).argmax(dim=1)
    generator = ct_plugin.get_registry().build("generator", GENERATOR, lambda_energy=LAMBDA_ENERGY)
    result = generator.search(model, X, targets, SearchConstraints.from_spec(spec), tau=TAU, max_steps=MAX_STEPS,
                              epsilon=0.3)
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


REGION_COLOURS = ("#d6604d", "#4393c3")
"""Colours of the class 0 and class 1 training samples (from the RdBu colour map of the regions)."""


def figure(models, spec, n_arrows=30):
    """Decision regions, training samples and test-time counterfactuals of each model, with a key of everything drawn.

    Returns the matplotlib Figure; the title states the generator and tau of the search.
    """
    fig, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 5.2), squeeze=False)
    grid = np.stack(np.meshgrid(np.linspace(-2.5, 2.5, 200), np.linspace(-2.5, 2.5, 200)), -1).reshape(-1, 2)
    names = spec.class_names
    for ax, (name, model) in zip(axes.flat, models.items()):
        with torch.no_grad():
            p = torch.softmax(model(torch.as_tensor(grid, dtype=torch.float32)), 1)[:, 1].numpy()
        gx, gy, p = grid[:, 0].reshape(200, 200), grid[:, 1].reshape(200, 200), p.reshape(200, 200)
        # red where the model predicts class 0, blue where class 1; the deeper, the more confident
        ax.contourf(gx, gy, p, levels=20, cmap="RdBu", alpha=0.6)
        ax.contour(gx, gy, p, levels=[0.5], colors="k", linewidths=1.0)
        for cls, colour in enumerate(REGION_COLOURS):
            own = spec.y_train[:400] == cls
            ax.scatter(spec.X_train[:400][own, 0], spec.X_train[:400][own, 1], color=colour, s=5, alpha=0.5)
        X, _, result = counterfactuals(model, spec, n=n_arrows)
        for a, b in zip(X.numpy(), result.counterfactuals.numpy()):
            ax.annotate("", xy=b, xytext=a, arrowprops={"arrowstyle": "->", "lw": 0.8})
        cf, valid = result.counterfactuals.numpy(), result.converged.numpy()
        ax.scatter(*cf[valid].T, marker="*", s=60, c="gold", edgecolor="k")
        ax.scatter(*cf[~valid].T, marker="X", s=50, c="red", edgecolor="k")
        ax.set_title(f"{name}: {int(valid.sum())} of {len(valid)} valid", fontsize=10)
        ax.set_xlabel(f"{spec.feature_names[0]} (standardised)")
        ax.set_ylabel(f"{spec.feature_names[1]} (standardised)")
    regions = plt.get_cmap("RdBu")
    key = [
        Patch(color=regions(0.1), alpha=0.6, label=f"predicted class {names[0]} (deeper = more confident)"),
        Patch(color=regions(0.9), alpha=0.6, label=f"predicted class {names[1]} (deeper = more confident)"),
        Line2D([], [], color="k", lw=1.0, label="decision boundary (p = 0.5)"),
        Line2D([], [], ls="", marker="o", ms=4, color=REGION_COLOURS[0], label=f"training sample, class {names[0]}"),
        Line2D([], [], ls="", marker="o", ms=4, color=REGION_COLOURS[1], label=f"training sample, class {names[1]}"),
        Line2D([], [], color="k", lw=0.8, marker=">", ms=4, label="search: test row -> counterfactual"),
        Line2D([], [], ls="", marker="*", ms=10, mfc="gold", mec="k", label=f"valid counterfactual (p >= tau {TAU})"),
        Line2D([], [], ls="", marker="X", ms=8, mfc="red", mec="k", label=f"invalid (did not reach tau {TAU})"),
    ]
    # below the panels, so that no point is hidden behind it
    fig.legend(handles=key, loc="lower center", ncol=3, fontsize="small", bbox_to_anchor=(0.5, 0.0))
    fig.suptitle(f"Test-time counterfactuals toward the other class: {GENERATOR} (lambda_energy {LAMBDA_ENERGY}), "
                 f"tau {TAU}, T {MAX_STEPS} steps, first {n_arrows} test rows")
    fig.tight_layout(rect=(0, 0.13, 1, 1))
    return fig


def plot(models, spec, path):
    """Write :func:`figure` as a PNG to ``path``."""
    fig = figure(models, spec)
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
        models[strategy] = result.model.cpu()  # trained where `auto` put it (a GPU, say); searched below on the CPU
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
