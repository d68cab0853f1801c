"""How fast is ``explain`` on the user's path? One person, ten thousand people, and the CLI's start-up.

Trains (or reuses) a vanilla and a CT model on adult, then measures, with the library's default
threads (nothing set here):

* one person in a process that has imported ``ct_plugin``, loading the run included
  (``ct_plugin.explain(run_dir, row)``): target under 1 s;
* 10,000 people the model turns down in one call (``ct_plugin.explain(run_dir, rows)``): target
  under 30 s on a 2-core machine;
* the CLI: ``ct-plugin --version``, and ``ct-plugin explain RUN --row JSON`` end to end (start-up,
  imports, loading and search; reported separately, not a target).

Each figure is the median of ``--repeats`` runs, printed beside its target::

    python benchmarks/explain_speed.py --data-dir DATA [--repeats 5] [--runs runs/explain-speed]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

import ct_plugin


def train_runs(data_dir: str, runs: Path, epochs: int) -> dict[str, Path]:
    """A vanilla and a CT run on adult (age immutable), reused when present."""
    dirs = {}
    for strategy in ("vanilla", "ct"):
        out = runs / f"adult-{strategy}"
        if not (out / "manifest.json").is_file():
            ct_plugin.train("adult", strategy=strategy, data_dir=data_dir, protect=True, epochs=epochs,
                            batch_size=1000, nce=1000, out=out, quiet=True, overwrite=True)
        dirs[strategy] = out
    return dirs


def people(run_dir: Path, count: int) -> tuple[dict, object]:
    """One person and ``count`` training rows the model turns down, in original units."""
    run = ct_plugin.load_run(run_dir)
    spec = run.spec
    with torch.no_grad():
        predicted = run.model(torch.as_tensor(spec.X_train)).argmax(1).numpy()
    rows = np.flatnonzero(predicted != spec.desired_index)[:count]
    frame = spec.decode(spec.X_train[rows])
    return frame.iloc[0].to_dict(), frame


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cli_seconds(argv: list[str], repeats: int) -> float:
    cli = Path(sys.executable).parent / "ct-plugin"
    return median_seconds(lambda: subprocess.run([str(cli), *argv], check=True, capture_output=True), repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--runs", default="runs/explain-speed")
    args = parser.parse_args()
    dirs = train_runs(args.data_dir, Path(args.runs), args.epochs)
    rows = []
    for kind, run_dir in dirs.items():
        one, many = people(run_dir, args.people)
        ct_plugin.explain(run_dir, one, progress=False)  # warm the imports once, as a process that imported it
        single = median_seconds(lambda run_dir=run_dir, one=one: ct_plugin.explain(run_dir, one, progress=False),
                                args.repeats)
        start = time.perf_counter()
        result = ct_plugin.explain(run_dir, many, progress=False)
        bulk = time.perf_counter() - start
        validity = float(result.counterfactuals.valid.mean())
        row = json.dumps({k: (v.item() if hasattr(v, "item") else v) for k, v in one.items()})
        cli = cli_seconds(["explain", str(run_dir), "--row", row, "--quiet"], max(1, args.repeats // 2))
        rows.append((kind, single, len(many), bulk, validity, cli))
    version = cli_seconds(["--version"], args.repeats)
    print(f"torch threads: {torch.get_num_threads()} (the library's default per call: see ct_plugin/threads.py)")
    print("| model | one person, run loaded (s) | target 1 s | people | all of them (s) | target 30 s | "
          "validity | CLI, one person (s) |")
    print("|---|---|---|---|---|---|---|---|")
    for kind, single, n, bulk, validity, cli in rows:
        print(f"| {kind} | {single:.3f} | {single / 1.0:.2f}x | {n} | {bulk:.1f} | {bulk / 30.0:.2f}x | "
              f"{validity:.3f} | {cli:.2f} |")
    print(f"`ct-plugin --version`: {version:.2f} s")


if __name__ == "__main__":
    main()
