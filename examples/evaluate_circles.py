"""Train a vanilla and a CT model on circles, then compare them with the paper's protocol.

Run: python examples/evaluate_circles.py   (about a minute on a laptop CPU)
The same from the shell:
    ct-plugin train --dataset circles --strategy vanilla --epochs 30 --out runs/example/baseline
    ct-plugin train --dataset circles --strategy ct --protect --epochs 30 --out runs/example/ct
    ct-plugin evaluate runs/example/baseline runs/example/ct --rounds 20 --out runs/example/eval
"""

from __future__ import annotations

from pathlib import Path

import torch

import ct_plugin
from ct_plugin.evaluation.metrics import MetricContext
from ct_plugin.evaluation.protocol import ProtocolConfig, evaluate_runs
from ct_plugin.evaluation.report import summary_markdown, write_evaluation

torch.set_num_threads(1)
root = Path("runs/example")
for name, strategy in (("baseline", "vanilla"), ("ct", "ct")):
    if not (root / name / "model.pt").is_file():
        # CT with the protected feature x1 immutable: its counterfactuals learn to avoid x1
        ct_plugin.train(None, dataset="circles", strategy=strategy, epochs=30, protect=strategy == "ct",
                        out=root / name, quiet=True)

runs = [ct_plugin.load_run(root / "baseline"), ct_plugin.load_run(root / "ct")]
evaluation = evaluate_runs(runs, ProtocolConfig(rounds=20, n_factuals=50))
print(summary_markdown(evaluation))
files = write_evaluation(evaluation, root / "eval")
print(f"wrote {len(files)} files to {root / 'eval'}")

# any single metric, by name, on a counterfactual set of your own
registry = ct_plugin.get_registry()
spec = runs[1].spec
model = runs[1].model
factuals = torch.as_tensor(spec.X_test[:50])
targets = 1 - model(factuals).argmax(dim=1)
generator = registry.build("generator", "eccco", lambda_energy=1.0)
result = generator.search(model, factuals, targets, ct_plugin.SearchConstraints.from_spec(spec),
                          tau=0.95, max_steps=50, epsilon=0.0)
samples_of = {c: torch.as_tensor(spec.X_train[spec.y_train == c]) for c in range(spec.n_classes)}
context = MetricContext(model, factuals, targets, result.counterfactuals, samples_of=samples_of,
                        steps=result.steps)
for name in ("validity", "cost", "ip", "ip_star", "redundancy", "mean_steps"):
    print(f"{name:>12}: {registry.build('metric', name)(context):.4f}")
