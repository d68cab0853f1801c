"""Feature attributions through captum: how much a baseline and a CT model lean on a protected feature.

Run: python examples/attributions.py [--epochs 20]

Integrated gradients come with captum's convergence delta (how far the Riemann sum is from
F(x) - F(baseline)); saliency, input x gradient, DeepLift and GradientSHAP are the same call.
"""

from __future__ import annotations

import argparse

import torch

import ct_plugin
from ct_plugin.evaluation.attribution import METHODS, attribute
from ct_plugin.evaluation.metrics import attribution_share, integrated_gradients


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    spec = ct_plugin.load_dataset("moons", seed=0, n_samples=400)  # protected feature: x1
    settings = {"epochs": args.epochs, "nce": 100, "batch_size": 50, "protect": True, "quiet": True}
    # each model back on the CPU, where the attributions below run (train's `auto` may have used a GPU)
    models = {strategy: ct_plugin.train(spec, strategy=strategy, **settings).model.cpu()
              for strategy in ("vanilla", "ct")}

    x = torch.as_tensor(spec.X_test[:200])
    baseline = torch.as_tensor(spec.X_train).mean(dim=0)
    protected = spec.protected_columns
    print(f"share of attribution mass on the protected feature {spec.protected} (uniform: {1 / spec.n_features:.2f})")
    print(f"{'method':<22}" + "".join(f"{name:>10}" for name in models))
    for method in METHODS:
        shares = []
        for model in models.values():
            with torch.no_grad():
                targets = 1 - model(x).argmax(dim=1)  # the class a counterfactual would aim for
            shares.append(attribution_share(attribute(method, model, x, targets, baseline), protected))
        print(f"{method:<22}" + "".join(f"{s:>10.3f}" for s in shares))
    for name, model in models.items():
        with torch.no_grad():
            targets = 1 - model(x).argmax(dim=1)
        _, delta = integrated_gradients(model, x, targets, baseline, steps=32, return_delta=True)
        print(f"{name}: mean |IG convergence delta| at 32 steps = {float(delta.abs().mean()):.2e}")


if __name__ == "__main__":
    main()
