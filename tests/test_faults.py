"""Fault handling: corrupted checkpoints, the previous checkpoint, the run lock, resuming after a divergence."""

from __future__ import annotations

import json

import pytest
import torch

import ct_plugin
from ct_plugin.cli import main
from ct_plugin.errors import CheckpointError, RunDirectoryError, RunLockedError, TrainingDivergedError
from ct_plugin.runs.checkpoint import run_lock

TINY = {"strategy": "ct", "nce": 20, "quiet": True, "batch_size": 40, "dataset_options": {"n_samples": 200}}


def _weights(run_dir):
    return torch.load(run_dir / "model.pt", weights_only=True)


def test_checkpoint_rotation_keeps_the_previous_epoch(tmp_path):
    ct_plugin.train("moons", epochs=3, out=tmp_path / "r", **TINY)
    current = torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=True)
    previous = torch.load(tmp_path / "r" / "checkpoint.prev.pt", weights_only=True)
    assert (current["epoch"], previous["epoch"]) == (3, 2)
    assert not list((tmp_path / "r").glob("*.tmp"))


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupted_checkpoint_names_the_intact_previous_one(tmp_path, capsys, damage):
    run = tmp_path / "r"
    ct_plugin.train("moons", epochs=3, out=run, **TINY)
    reference = _weights(run)
    path = run / "checkpoint.pt"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3] if damage == "truncate" else b"not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match="truncated or corrupted .*checkpoint.prev.pt is intact") as info:
        ct_plugin.train(out=run, resume=True, quiet=True)
    assert info.value.previous == str(run / "checkpoint.prev.pt")
    assert main(["train", "--resume", "--out", str(run), "--quiet"]) == 2
    assert "--resume-from-previous" in capsys.readouterr().err
    # the previous checkpoint (epoch 2) continues to the same final weights: training is deterministic
    assert main(["train", "--resume-from-previous", "--out", str(run), "--quiet"]) == 0
    assert all(torch.equal(reference[k], v) for k, v in _weights(run).items())


def test_corrupted_checkpoint_without_an_older_one(tmp_path):
    run = tmp_path / "r"
    ct_plugin.train("moons", epochs=1, out=run, **TINY)
    (run / "checkpoint.pt").write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match="no intact older checkpoint exists"):
        ct_plugin.train(out=run, resume=True, quiet=True)


def test_a_second_process_training_into_the_same_directory_is_refused(tmp_path):
    run = tmp_path / "r"
    with run_lock(run), pytest.raises(RunLockedError, match=r"another process \(pid \d+\) is training into"):
        ct_plugin.train("moons", epochs=1, out=run, **TINY)
    ct_plugin.train("moons", epochs=1, out=run, **TINY)  # the lock is gone with its holder


def test_divergence_keeps_the_last_good_checkpoint_and_resume_continues_with_other_settings(tmp_path, capsys):
    run = tmp_path / "r"
    ct_plugin.train("moons", epochs=2, out=run, **TINY)
    with pytest.warns(UserWarning, match="lr=1e\\+06"), pytest.raises(TrainingDivergedError) as info:
        ct_plugin.train(out=run, resume=True, quiet=True, epochs=4, lr=1e6)
    assert info.value.epoch == 3 and info.value.suspect == "lr"
    assert f"the last good checkpoint is {run / 'checkpoint.pt'}" in str(info.value)
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 2 and all(torch.isfinite(v).all() for v in state["model"].values())
    assert main(["train", "--resume", "--out", str(run), "--epochs", "4", "--lr", "0.002", "--quiet"]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["lr"] == 0.002 and config["epochs"] == 4
    assert [r["epoch"] for r in ct_plugin.load_run(run).log] == [1, 2, 3, 4]


def test_resume_refuses_to_change_the_data_or_the_model(tmp_path):
    run = tmp_path / "r"
    ct_plugin.train("moons", epochs=1, out=run, **TINY)
    with pytest.raises(ct_plugin.CTPluginError, match="cannot change model_options when resuming"):
        ct_plugin.train(out=run, resume=True, quiet=True, model_options={"hidden": [4]})


def test_loading_a_run_whose_files_disagree_says_which(tmp_path):
    run = tmp_path / "r"
    ct_plugin.train("moons", epochs=1, out=run, **TINY)
    model = json.loads((run / "model.json").read_text())
    (run / "model.json").write_text(json.dumps({**model, "n_classes": 3}))
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "dataset": "circles", "immutable": ["x2"]}))
    with pytest.raises(RunDirectoryError) as info:
        ct_plugin.load_run(run)
    message = str(info.value)
    assert "config.json names dataset 'circles', dataset.json 'moons'" in message
    assert "model.json expects 3 classes, dataset.json has 2" in message
    assert "config.json lists immutable ['x2'], which dataset.json does not restrict that way" in message


def test_a_rare_skipped_update_is_only_warned():
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    X[0] = [1e3, 0.0]  # after standardising, the only row beyond 8 standard deviations
    y = (X[:, 1] > 0).astype(int)
    spec = ct_plugin.from_arrays(X, y, name="outlier")

    class NanOnOutlier(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(2, 2)

        def forward(self, x):
            out = self.linear(x)
            return torch.where((x.abs() > 8).any(dim=1, keepdim=True), torch.full_like(out, float("nan")), out)

    with pytest.warns(RuntimeWarning, match="non-finite loss term"):
        result = ct_plugin.train(spec, NanOnOutlier(), strategy="vanilla", epochs=2, batch_size=10, quiet=True)
    in_train = int((torch.as_tensor(spec.X_train).abs() > 8).any(dim=1).sum())
    assert [r["skipped_batches"] for r in result.log] == [in_train] * 2  # 1 of 16 batches: training goes on
