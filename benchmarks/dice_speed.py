"""Seconds per counterfactual of DiCE's methods next to our batched generators, measured in one run.

Usage (from the repository root, with dice-ml installed: ``pip install 'ct-plugin[dice]'``)::

    python benchmarks/dice_speed.py                       # moons, 50 factuals
    python benchmarks/dice_speed.py --dataset adult --n 50

One small MLP is trained (vanilla) on the dataset; the same test factuals and targets
(a class other than the predicted one) go to every generator: ``generic`` and ``eccco``
(one batched tensor search each) and ``dice-random``, ``dice-genetic``, ``dice-kdtree``,
``dice-gradient`` (DiCE loops over queries in Python). Each generator is fitted once and
warmed up on two factuals (untimed), then its search is timed over all factuals (best of
three for the batched ones, which take milliseconds); the table gives seconds per counterfactual,
the ratio to ``generic`` and to ``eccco`` from the same run, and the share of factuals
whose counterfactual reached tau. This is a script, not a timed test: figures depend on
the machine.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import torch

import ct_plugin
from ct_plugin.constraints import SearchConstraints

BATCHED = ("generic", "eccco")
DICE = ("dice-random", "dice-genetic", "dice-kdtree", "dice-gradient")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="moons", help="registered dataset name (default moons)")
    parser.add_argument("--data-dir", default=None, help="folder with the real tables (adult, ...)")
    parser.add_argument("--max-rows", type=int, default=5000, help="rows read from a real table")
    parser.add_argument("--n", type=int, default=50, help="factuals per generator (default 50)")
    parser.add_argument("--tau", type=float, default=0.75, help="decision threshold (training default 0.75)")
    parser.add_argument("--max-steps", type=int, default=30, help="steps T of the batched searches")
    parser.add_argument("--epochs", type=int, default=20, help="epochs of the vanilla model")
    parser.add_argument("--generators", default=",".join(BATCHED + DICE), help="comma-separated names")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def load_spec(args: argparse.Namespace) -> ct_plugin.DatasetSpec:
    options: dict = {}
    if args.data_dir is not None:
        options["data_dir"] = args.data_dir
    if args.dataset in ("adult", "gmsc", "california_housing", "credit_default"):
        options["max_rows"] = args.max_rows
    return ct_plugin.load_dataset(args.dataset, seed=args.seed, **options)


def time_generator(name, spec, model, factuals, targets, constraints, args) -> dict:
    """Fit once, warm up on two factuals (untimed), then time the search over all factuals.

    Batched generators take milliseconds, so their figure is the best of three runs.
    """
    generator = ct_plugin.get_registry().build("generator", name)
    generator.fit(spec, "cpu")

    def run(x, t):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return generator.search(
                model, x, t, constraints, tau=args.tau, max_steps=args.max_steps, epsilon=0.3,
                rng=torch.Generator().manual_seed(args.seed),
            )

    run(factuals[:2], targets[:2])
    times = []
    for _ in range(3 if name in BATCHED else 1):
        start = time.perf_counter()
        result = run(factuals, targets)
        times.append(time.perf_counter() - start)
    seconds = min(times)
    return {
        "name": name,
        "per_cf": seconds / len(factuals),
        "converged": float(result.converged.float().mean()),
        "violations": int(constraints.violations(result.counterfactuals, factuals).sum()),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    spec = load_spec(args)
    trained = ct_plugin.train(spec, strategy="vanilla", epochs=args.epochs, seed=args.seed, quiet=True)
    model = trained.model.eval()
    n = min(args.n, len(spec.X_test))
    factuals = torch.as_tensor(spec.X_test[:n])
    with torch.no_grad():
        predicted = model(factuals).argmax(dim=1)
    targets = (predicted + 1) % spec.n_classes
    constraints = SearchConstraints.from_spec(spec)
    print(f"{spec.summary()}; test accuracy {trained.log[-1]['test_accuracy']:.3f}")
    print(f"{n} factuals, tau {args.tau}, T {args.max_steps} (batched searches), threads {args.threads}")

    rows = []
    registry = ct_plugin.get_registry()
    for name in [g.strip() for g in args.generators.split(",") if g.strip()]:
        item = next((i for i in registry.items("generator") if i.name == name), None)
        if item is None or not item.available:
            why = "not registered" if item is None else item.reason
            print(f"skipping {name}: {why}")
            continue
        rows.append(time_generator(name, spec, model, factuals, targets, constraints, args))

    base = {row["name"]: row["per_cf"] for row in rows if row["name"] in BATCHED}
    header = f"{'generator':<15}{'s/CF':>10}{'ms/CF':>10}"
    header += "".join(f"{'x ' + b:>12}" for b in base) + f"{'reached tau':>13}{'violations':>12}"
    print(header)
    for row in rows:
        line = f"{row['name']:<15}{row['per_cf']:>10.2e}{1000 * row['per_cf']:>10.2f}"
        line += "".join(f"{row['per_cf'] / base[b]:>12.1f}" for b in base)
        line += f"{row['converged']:>13.2f}{row['violations']:>12d}"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
