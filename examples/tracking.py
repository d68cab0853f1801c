"""Experiment tracking: a baseline and a CT run logged to MLflow (local file store) and TensorBoard, read back.

Run: python examples/tracking.py [--out runs/tracking-demo] [--epochs 5]

The same from the command line:
  ct-plugin train --dataset circles --strategy ct --epochs 5 --out runs/ct --track mlflow --track-uri runs/mlruns
  ct-plugin evaluate runs/vanilla runs/ct --track mlflow          # a new MLflow run in the same store
  ct-plugin train --dataset circles --out runs/ct-tb --track tensorboard; tensorboard --logdir runs/ct-tb/tensorboard
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import ct_plugin
from ct_plugin.tracking import tracking


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", help="folder for the runs and the stores (default: a temporary folder)")
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="ct-tracking-"))
    store = out / "mlruns"
    settings = {"epochs": args.epochs, "nce": 100, "max_steps": 10, "batch_size": 50, "lr": 0.01, "quiet": True,
                "dataset_options": {"n_samples": 600}}

    # MLflow: one tracking store for both runs (the default would be <run dir>/mlruns)
    with tracking("mlflow", uri=store, experiment="circles") as tracker:
        ct_plugin.train("circles", strategy="vanilla", out=out / "vanilla", **settings)
        ct_plugin.train("circles", strategy="ct", out=out / "ct", **settings)

    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 asks for an opt-in to file stores
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=store.resolve().as_uri())
    print(f"MLflow store {store} (open it with: mlflow ui --backend-store-uri {store.resolve().as_uri()})")
    for run_id in tracker.run_ids:
        run = client.get_run(run_id)
        accuracy = [round(m.value, 3) for m in sorted(client.get_metric_history(run_id, "test_accuracy"),
                                                       key=lambda m: m.step)]
        artifacts = [a.path for a in client.list_artifacts(run_id, "model")]
        print(f"  run {run.info.run_name}: strategy={run.data.params['strategy']}, "
              f"test_accuracy per epoch {accuracy}, {len(artifacts)} model artifacts")

    # TensorBoard: an event file inside the run directory
    with tracking("tensorboard"):
        ct_plugin.train("circles", strategy="ct", out=out / "ct-tensorboard", **settings)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logdir = out / "ct-tensorboard" / "tensorboard"
    accumulator = EventAccumulator(str(logdir))
    accumulator.Reload()
    divergence = [round(e.value, 3) for e in accumulator.Scalars("train/div")]
    print(f"TensorBoard log dir {logdir}: {len(accumulator.Tags()['scalars'])} scalar series, train/div {divergence}")


if __name__ == "__main__":
    main()
