"""MLflow and TensorBoard tracking against a real local MLflow file store and real event files, read back."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import torch

import ct_plugin
from ct_plugin.cli import main
from ct_plugin.plugins.hookspecs import hookimpl
from ct_plugin.runs.files import read_log
from ct_plugin.tracking import tracking

TINY = ["--dataset", "circles", "--dataset-option", "n_samples=200", "--epochs", "3", "--nce", "20",
        "--max-steps", "5", "--batch-size", "50", "--quiet"]
EVAL_TINY = ["--rounds", "2", "--n-factuals", "8", "--lambda-energy", "1", "--max-steps", "5",
             "--epsilons", "0,0.1", "--threads", "1"]


def _client(uri: str):
    pytest.importorskip("mlflow", reason="MLflow is not installed; pip install 'ct-plugin[mlflow]'")
    from mlflow.tracking import MlflowClient

    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return MlflowClient(tracking_uri=uri)


def _accumulator(logdir: Path):
    pytest.importorskip("tensorboard", reason="TensorBoard is not installed; pip install 'ct-plugin[tensorboard]'")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = sorted(logdir.glob("events.out.tfevents.*"))
    assert len(files) == 1, files
    accumulator = EventAccumulator(str(files[0]), size_guidance={"scalars": 0, "tensors": 0})
    accumulator.Reload()
    return accumulator


def _text(accumulator, tag: str) -> str:
    return accumulator.Tensors(f"{tag}/text_summary")[0].tensor_proto.string_val[0].decode()


def test_mlflow_train_and_evaluate_read_back_from_a_file_store(tmp_path):
    store = tmp_path / "store"
    vanilla, ct = tmp_path / "vanilla", tmp_path / "ct"
    assert main(["train", *TINY, "--strategy", "vanilla", "--out", str(vanilla),
                 "--track", "mlflow", "--track-uri", str(store)]) == 0
    assert main(["train", *TINY, "--strategy", "ct", "--generator-option", "step_size=0.1", "--out", str(ct),
                 "--track", "mlflow", "--track-uri", str(store), "--track-experiment", "circles"]) == 0
    info = json.loads((ct / "tracking.json").read_text())["mlflow"]
    client = _client(info["uri"])
    run = client.get_run(info["run_id"])
    assert run.info.status == "FINISHED" and run.info.run_name == "ct"
    assert client.get_experiment(run.info.experiment_id).name == "circles"
    # the resolved config, nested options dotted
    params = run.data.params
    assert params["strategy"] == "ct" and params["epochs"] == "3" and params["generator_options.step_size"] == "0.1"
    assert run.data.tags["ct_plugin.dataset"] == "circles"
    # every epoch record, at step = epoch
    log = read_log(ct)
    for key in ("yloss", "div", "adv", "test_accuracy", "mature", "epoch_seconds"):
        history = sorted(client.get_metric_history(info["run_id"], key), key=lambda m: m.step)
        assert [m.step for m in history] == [1, 2, 3]
        assert [m.value for m in history] == pytest.approx([r[key] for r in log])
    # the final model: a loadable run directory among the artifacts
    assert {a.path for a in client.list_artifacts(info["run_id"])} == {"config.json", "model"}
    downloaded = Path(client.download_artifacts(info["run_id"], "model", str(tmp_path / "download")))
    assert sorted(p.name for p in downloaded.iterdir()) == sorted(
        ["config.json", "dataset.json", "dataset.npz", "log.jsonl", "manifest.json", "model.json", "model.pt"])
    again, original = ct_plugin.load_run(downloaded), ct_plugin.load_run(ct)
    probe = torch.as_tensor(original.spec.X_test)
    torch.testing.assert_close(again.model(probe), original.model(probe))

    # evaluate: a new MLflow run in the reference run's store, tagged with the evaluated runs
    out = tmp_path / "eval"
    assert main(["evaluate", str(vanilla), str(ct), *EVAL_TINY, "--out", str(out), "--track", "mlflow"]) == 0
    evaluation = json.loads((out / "tracking.json").read_text())["mlflow"]
    assert evaluation["uri"] == info["uri"]
    eval_run = client.get_run(evaluation["run_id"])
    trained = [json.loads((d / "tracking.json").read_text())["mlflow"]["run_id"] for d in (vanilla, ct)]
    assert eval_run.data.tags["ct_plugin.evaluated_runs"] == ",".join(trained)
    assert eval_run.data.tags["ct_plugin.kind"] == "evaluate"
    import pandas as pd

    summary = pd.read_csv(out / "summary.csv")
    validity = summary[(summary.run == "ct") & (summary.metric == "validity")]["mean"].item()
    assert eval_run.data.metrics["ct.validity"] == pytest.approx(validity)
    comparison = pd.read_csv(out / "comparison.csv").dropna(subset=["reduction_pct"])
    assert len(comparison)  # every finite reduction is logged (a tiny run may leave validity's undefined)
    for row in comparison.itertuples(index=False):
        assert eval_run.data.metrics[f"{row.run}.{row.metric}.reduction_pct"] == pytest.approx(row.reduction_pct)
    assert "vanilla.ig_convergence_delta" in eval_run.data.metrics
    artifacts = {a.path for a in client.list_artifacts(evaluation["run_id"], "evaluation")}
    assert {"evaluation/summary.csv", "evaluation/comparison.csv", "evaluation/evaluation.md",
            "evaluation/attribution.csv"} <= artifacts


class _Kill:
    """Stops training after the first epoch, as a kill would (the checkpoint is already written)."""

    @hookimpl
    def ct_plugin_epoch_end(self, event):
        if event.epoch == 0:
            raise KeyboardInterrupt


def test_mlflow_run_is_marked_failed_on_a_kill_and_continued_on_resume(tmp_path):
    out = tmp_path / "run"
    ct_plugin.register_plugin(_Kill(), name="kill")
    try:
        assert main(["train", *TINY, "--out", str(out), "--track", "mlflow"]) == 130
    finally:
        ct_plugin.unregister_plugin("kill")
    info = json.loads((out / "tracking.json").read_text())["mlflow"]
    assert info["uri"] == (out / "mlruns").resolve().as_uri()  # default store: inside the run directory
    client = _client(info["uri"])
    assert client.get_run(info["run_id"]).info.status == "FAILED"
    assert main(["train", "--resume", "--out", str(out), "--quiet", "--track", "mlflow"]) == 0
    assert json.loads((out / "tracking.json").read_text())["mlflow"]["run_id"] == info["run_id"]
    run = client.get_run(info["run_id"])
    assert run.info.status == "FINISHED"
    history = client.get_metric_history(info["run_id"], "yloss")
    assert sorted(m.step for m in history) == [1, 2, 3]


def test_tensorboard_event_files_read_back(tmp_path):
    vanilla, ct = tmp_path / "vanilla", tmp_path / "ct"
    assert main(["train", *TINY, "--strategy", "vanilla", "--out", str(vanilla), "--track", "tensorboard"]) == 0
    assert main(["train", *TINY, "--strategy", "ct", "--out", str(ct), "--track", "tensorboard"]) == 0
    accumulator = _accumulator(ct / "tensorboard")
    log = read_log(ct)
    for key in ("yloss", "div", "test_accuracy", "mature"):
        events = accumulator.Scalars(f"train/{key}")
        assert [e.step for e in events] == [1, 2, 3]
        assert [e.value for e in events] == pytest.approx([r[key] for r in log], rel=1e-6)
    config = json.loads(_text(accumulator, "config").strip("`").removeprefix("json\n"))
    assert config["strategy"] == "ct" and config["epochs"] == 3
    assert "model.pt" in _text(accumulator, "model")
    assert accumulator.Graph() is not None  # the final model's graph

    out = tmp_path / "eval"
    assert main(["evaluate", str(vanilla), str(ct), *EVAL_TINY, "--out", str(out), "--track", "tensorboard"]) == 0
    accumulator = _accumulator(out / "tensorboard")
    import pandas as pd

    summary = pd.read_csv(out / "summary.csv")
    validity = summary[(summary.run == "ct") & (summary.metric == "validity")]["mean"].item()
    assert accumulator.Scalars("evaluation/ct/validity")[0].value == pytest.approx(validity, rel=1e-6)
    assert "validity" in _text(accumulator, "evaluation/summary")


def test_python_api_tracks_a_run_without_a_run_directory(tmp_path):
    store = tmp_path / "mlruns"
    with tracking("mlflow", uri=store) as tracker:
        ct_plugin.train("circles", strategy="vanilla", epochs=2, quiet=True, dataset_options={"n_samples": 200})
    client = _client(store.resolve().as_uri())
    (run_id,) = tracker.run_ids
    assert client.get_run(run_id).info.status == "FINISHED"
    assert [a.path for a in client.list_artifacts(run_id, "model")] == ["model/model.pt"]
    assert len(client.get_metric_history(run_id, "train_accuracy")) == 2


@pytest.mark.parametrize(("tracker", "module"), [("mlflow", "mlflow"), ("tensorboard", "tensorboard")])
def test_missing_extra_names_the_install_command(tmp_path, monkeypatch, capsys, tracker, module):
    monkeypatch.setitem(sys.modules, module, None)  # as if the extra were not installed
    assert main(["train", *TINY, "--out", str(tmp_path / "run"), "--track", tracker]) == 2
    error = capsys.readouterr().err
    assert f"pip install 'ct-plugin[{tracker}]'" in error
    assert not (tmp_path / "run" / "checkpoint.pt").exists()  # refused before training
