"""Run directories as untrusted input, outputs that stay where they were asked, failures said in one line.

Each test is one of the ways a received run, a planted link, a full disk or a bad setting went wrong
before (docs/security.md); each must end in one clear error (never a traceback, never a silent wrong
result) and leave every file outside its target untouched.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import ct_plugin
from ct_plugin import CTPluginError, RunDirectoryError
from ct_plugin.cli import main
from ct_plugin.jobs import folder_lock

SMALL = ["--dataset", "moons", "--dataset-option", "n_samples=300", "--strategy", "vanilla", "--epochs", "2",
         "--quiet"]


@pytest.fixture(scope="module")
def run_a(tmp_path_factory) -> Path:
    """A finished small moons run (the ``A`` of the issue's repro lines)."""
    out = tmp_path_factory.mktemp("runs") / "A"
    assert main(["train", *SMALL, "--out", str(out)]) == 0
    return out


@pytest.fixture
def copy_of(run_a, tmp_path):
    def copy(name: str = "copy") -> Path:
        target = tmp_path / name
        shutil.copytree(run_a, target)
        return target

    return copy


def edit_json(path: Path, **changes) -> None:
    payload = json.loads(path.read_text())
    payload.update(changes)
    path.write_text(json.dumps(payload))


# ------------------------------------------------------------------ writes stay put
def test_a_dataset_name_with_a_path_in_it_writes_under_evaluation_only(copy_of, tmp_path, monkeypatch, capsys):
    run = copy_of()
    for name in ("config.json", "dataset.json"):
        edit_json(run / name, **({"dataset": "../../escape"} if name == "config.json" else {"name": "../../escape"}))
    (run / "manifest.json").unlink()
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", str(run), str(run), "--rounds", "2", "--n-factuals", "5"]) == 0
    assert (tmp_path / "runs" / "evaluation" / "escape" / "summary.csv").is_file()
    assert not (tmp_path.parent / "escape").exists() and not Path("/escape").exists()


def test_a_planted_link_in_the_output_folder_is_replaced_not_followed(run_a, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    out = tmp_path / "eval"
    out.mkdir()
    (out / "summary.csv").symlink_to(victim)
    (out / "evaluation.md").write_text("a previous evaluation")
    assert main(["evaluate", str(run_a), str(run_a), "--rounds", "2", "--n-factuals", "5", "--out", str(out)]) == 0
    assert victim.read_text() == "keep me"
    assert not (out / "summary.csv").is_symlink()


def test_a_link_planted_as_the_lock_is_refused_not_written_through(copy_of, tmp_path, capsys):
    run = copy_of()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (run / ".lock").unlink(missing_ok=True)
    (run / ".lock").symlink_to(victim)
    assert main(["train", "--resume", "--out", str(run), "--epochs", "3", "--quiet"]) == 2
    assert "cannot be opened as a plain file" in capsys.readouterr().err
    assert victim.read_text() == "keep me"


def test_an_existing_folder_of_other_files_needs_overwrite(run_a, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    args = ["evaluate", str(run_a), str(run_a), "--rounds", "2", "--n-factuals", "5", "--out", str(out)]
    assert main(args) == 2
    assert "already holds files that are not a previous evaluation (thesis.tex)" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0
    assert (out / "thesis.tex").read_text() == "precious" and (out / "summary.csv").is_file()


@pytest.mark.parametrize("command", ["evaluate", "tune"])
def test_an_output_folder_that_is_a_file_is_one_clear_error(run_a, tmp_path, command, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    out = blocker / "below"
    argv = (["evaluate", str(run_a), str(run_a), "--rounds", "2", "--n-factuals", "5", "--out", str(out)]
            if command == "evaluate" else ["tune", "--dataset", "moons", "--out", str(out), "--quiet"])
    assert main(argv) == 2
    assert f"{blocker} is a file, not a folder" in capsys.readouterr().err


def test_a_full_disk_is_one_clear_error_naming_the_intact_checkpoint(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    assert main(["train", *SMALL, "--out", str(out)]) == 0
    import ct_plugin.atomic as atomic

    real = atomic.tempfile.mkstemp
    calls = {"n": 0}

    def full_disk(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] >= 4:  # the run's files and the first epoch's log and checkpoint go through, then the disk fills
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(atomic.tempfile, "mkstemp", full_disk)
    assert main(["train", "--resume", "--out", str(out), "--epochs", "5", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and f"the last good checkpoint {out / 'checkpoint.pt'} is intact" in err
    assert not list(out.glob(".*.tmp"))
    monkeypatch.setattr(atomic.tempfile, "mkstemp", real)
    assert ct_plugin.train(out=out, resume=True, quiet=True, epochs=5).log[-1]["epoch"] == 5


# ------------------------------------------------------------------ reading back
def test_a_huge_architecture_in_model_json_is_refused_before_allocating(copy_of):
    run = copy_of()
    edit_json(run / "model.json", options={"hidden": [1_000_000_000]})
    (run / "manifest.json").unlink()
    start = time.perf_counter()
    with pytest.raises(RunDirectoryError, match="do not fit the model model.json describes"):
        ct_plugin.load_run(run)
    assert time.perf_counter() - start < 10


@pytest.mark.parametrize(("name", "content", "culprit"), [
    ("config.json", '{"tau": 7, "dataset": "moons"}', "config.json: tau must be a number in \\(0, 1\\]"),
    ("config.json", "[1, 2]", "config.json must hold a JSON object, not list"),
    ("config.json", "{not json", "config.json is not valid JSON"),
    ("model.json", '{"architecture": "mlp"}', "model.json: field 'n_features' must be an integer"),
    ("model.json", '{"architecture": "nope", "n_features": 2, "n_classes": 2}', "architecture 'nope', which no"),
    ("model.json", '{"architecture": "mlp", "n_features": 2, "n_classes": 2, "options": {"hidden": "x"}}',
     "model.json cannot be built: model 'mlp': model option hidden must be"),
    ("dataset.json", '{"feature_names": "x1,x2"}', "dataset.json: field 'feature_names' must be a list of strings"),
    ("dataset.npz", "not a zip", "dataset.npz is not a readable .npz archive"),
    ("dataset.npz", "", "dataset.npz is not a readable .npz archive"),
    ("model.pt", "truncated", "model.pt cannot be read"),
    ("log.jsonl", '{"epoch": 1}\n{oops\n', "log.jsonl: line 2 is not valid JSON"),
    ("tracking.json", "[]", None),
])
def test_a_corrupted_run_file_is_named(copy_of, name, content, culprit, capsys):
    run = copy_of()
    (run / name).write_text(content)
    (run / "manifest.json").unlink()
    if "nope" in content:  # the run's own record names the architecture too: a plugin that is not installed
        edit_json(run / "config.json", model="nope")
    if culprit is None:  # tracking.json is read by the trackers: evaluate with --track reports it
        from ct_plugin.tracking.base import read_tracking

        with pytest.raises(RunDirectoryError, match="tracking.json must hold a JSON object"):
            read_tracking(run)
        return
    with pytest.raises(CTPluginError, match=culprit):
        ct_plugin.load_run(run)
    assert main(["evaluate", str(run), str(run), "--rounds", "2", "--n-factuals", "5", "--out",
                 str(run.parent / "out")]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_arrays_of_the_wrong_kind_or_with_nan_are_refused(copy_of):
    run = copy_of()
    with np.load(run / "dataset.npz") as arrays:
        data = dict(arrays)
    np.savez(run / "dataset.npz", **{**data, "X_train": data["X_train"].astype(str)})
    (run / "manifest.json").unlink()
    with pytest.raises(RunDirectoryError, match="X_train must be an array"):
        ct_plugin.load_run(run)
    nan = data["X_test"].copy()
    nan[0, 0] = np.nan
    np.savez(run / "dataset.npz", **{**data, "X_test": nan})
    with pytest.raises(RunDirectoryError, match="X_test holds NaN"):
        ct_plugin.load_run(run)


def test_the_manifest_names_a_changed_file_and_a_file_from_another_run(run_a, copy_of, tmp_path):
    run = copy_of()
    state = torch.load(run / "model.pt", weights_only=True)
    state = {k: v + 1 for k, v in state.items()}
    torch.save(state, run / "model.pt")
    with pytest.raises(RunDirectoryError, match="model.pt does not match the run's manifest"):
        ct_plugin.load_run(run)
    other = tmp_path / "other"
    assert main(["train", *SMALL, "--seed", "1", "--out", str(other)]) == 0
    mixed = copy_of("mixed")
    shutil.copyfile(other / "log.jsonl", mixed / "log.jsonl")
    with pytest.raises(RunDirectoryError, match="log.jsonl does not match the run's manifest"):
        ct_plugin.load_run(mixed)
    edit_json(mixed / "manifest.json", format_version=99)
    with pytest.raises(RunDirectoryError, match="written by a newer ct-plugin"):
        ct_plugin.load_run(mixed)


def test_a_model_with_nan_weights_is_not_scored(copy_of, capsys):
    run = copy_of()
    state = torch.load(run / "model.pt", weights_only=True)
    torch.save({k: torch.full_like(v, float("nan")) for k, v in state.items()}, run / "model.pt")
    (run / "manifest.json").unlink()
    argv = ["evaluate", str(run), str(run), "--protocol", "strict", "--rounds", "2", "--n-factuals", "5",
            "--out", str(run.parent / "nan-eval")]
    assert main(argv) == 2
    assert "has non-finite weights" in capsys.readouterr().err


# ------------------------------------------------------------------ nothing silent
def test_resume_with_nothing_to_resume_is_refused(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["train", "--resume", "--out", str(empty), "--quiet"]) == 2
    assert "nothing to resume" in capsys.readouterr().err
    assert not (empty / "config.json").exists()
    with pytest.raises(CTPluginError, match="nothing to resume"):
        ct_plugin.train(out=empty, resume=True, quiet=True)


def test_resume_with_both_checkpoints_gone_needs_restart(copy_of, capsys):
    run = copy_of()
    for name in ("checkpoint.pt", "checkpoint.prev.pt"):
        (run / name).unlink()
    assert main(["train", "--resume", "--out", str(run), "--epochs", "3", "--quiet"]) == 2
    assert "has no checkpoint left" in capsys.readouterr().err and "--restart" in capsys.readouterr().err + "--restart"
    assert main(["train", "--restart", "--out", str(run), "--epochs", "3", "--quiet"]) == 0
    assert [r["epoch"] for r in ct_plugin.load_run(run).log] == [1, 2, 3]


def test_two_tune_processes_on_one_folder(tmp_path, capsys):
    out = tmp_path / "tune"
    with folder_lock(out, "tuning into"):  # another process holds it (flock is per open file description)
        assert main(["tune", "--dataset", "moons", "--dataset-option", "n_samples=200", "--epochs", "1",
                     "--out", str(out), "--quiet"]) == 2
    assert "is tuning into" in capsys.readouterr().err


def test_csv_headers_and_unseen_levels(tmp_path, capsys):
    rows = pd.DataFrame({"a": range(40), "b": ["x", "y"] * 20, "y": [0, 1] * 20})
    rows.to_csv(tmp_path / "dup.csv", index=False, header=["a", "a", "y"])
    assert main(["train", "--csv", str(tmp_path / "dup.csv"), "--target", "y", "--epochs", "1", "--quiet"]) == 2
    assert "duplicate column names ['a']" in capsys.readouterr().err
    rows.to_csv(tmp_path / "train.csv", index=False)
    test = rows.head(10).assign(b="z")
    test.to_csv(tmp_path / "test.csv", index=False)
    argv = ["train", "--csv", str(tmp_path / "train.csv"), "--test-csv", str(tmp_path / "test.csv"), "--target", "y",
            "--epochs", "1", "--quiet"]
    assert main(argv) == 2
    assert "column 'b' of the test split holds level(s) ['z']" in capsys.readouterr().err
    spec = ct_plugin.from_dataframe(rows, "y")
    with pytest.raises(CTPluginError, match="column 'b' holds level\\(s\\) \\['z'\\] never seen in training"):
        spec.encode(test)
    clf = ct_plugin.CTClassifier(epochs=1, strategy="vanilla").fit(rows.drop(columns="y"), rows.y)
    assert len(clf.predict(test.drop(columns="y"))) == 10  # scikit-learn's convention: an all-zero one-hot group


def test_a_test_label_never_seen_in_training_is_named(tmp_path, capsys):
    pd.DataFrame({"a": range(40), "y": [0, 1] * 20}).to_csv(tmp_path / "train.csv", index=False)
    pd.DataFrame({"a": range(10), "y": [2] * 10}).to_csv(tmp_path / "test.csv", index=False)
    argv = ["train", "--csv", str(tmp_path / "train.csv"), "--test-csv", str(tmp_path / "test.csv"), "--target", "y",
            "--epochs", "1", "--quiet"]
    assert main(argv) == 2
    assert "the test split holds label(s) ['2'] of 'y' that the training rows never show" in capsys.readouterr().err


def test_estimator_names_a_bad_setting():
    with pytest.raises(ValueError, match="epochs must be an integer"):
        ct_plugin.CTClassifier(epochs="abc").fit(np.zeros((10, 2)), [0, 1] * 5)


@pytest.mark.parametrize(("argv", "message"), [
    (["tune", "--dataset", "moons", "--grid-tau", ""], "--grid-tau expects comma-separated floats"),
    (["train", *SMALL, "--track-uri", "runs/mlruns"], "--track-uri needs --track"),
    (["train", *SMALL, "--track", "tensorboard", "--track-uri", "http://example.org/x"],
     "TensorBoard writes event files to a local folder"),
    (["train", *SMALL, "--track", "mlflow", "--track-uri", "ftp://user:secret@example.org/x"],
     "unsupported MLflow tracking URI scheme 'ftp' in ftp://***@example.org/x"),
])
def test_bad_tracking_and_grid_settings_are_refused(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "secret" not in err
    assert not (tmp_path / "runs").exists()


def test_an_unreachable_mlflow_server_fails_within_seconds(tmp_path, capsys):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start = time.perf_counter()
    argv = ["train", *SMALL, "--out", str(tmp_path / "run"), "--track", "mlflow", "--track-uri",
            f"http://user:secret@127.0.0.1:{port}"]
    assert main(argv) == 2
    assert time.perf_counter() - start < 10
    err = capsys.readouterr().err
    assert "cannot reach the MLflow tracking server http://***@127.0.0.1" in err and "secret" not in err
    assert not (tmp_path / "run").exists()


def test_tune_grid_takes_numpy_values_and_numeric_strings():
    from ct_plugin.tuning.axes import validate_grid

    grid = validate_grid({"tau": np.array([0.5, 0.75]), "nce": [np.int64(10)], "lambda_reg": ["0.5"],
                          "lambda_div": [np.float32(0.25)]})
    assert grid == {"tau": [0.5, 0.75], "nce": [10], "lambda_reg": [0.5], "lambda_div": [0.25]}


def test_corrupted_tune_caches_are_redone_not_trusted(tmp_path):
    from ct_plugin.jobs import read_marker, write_marker

    folder = tmp_path / "cell"
    folder.mkdir()
    (folder / "result.json").write_text("[1, 2]")
    assert read_marker(folder, "result.json", "key") is None
    write_marker(folder, "tune_eval.json", "key", {"figures": {"ip": 1.0}})
    text = (folder / "tune_eval.json").read_text()
    (folder / "tune_eval.json").write_text(text[: len(text) // 2])
    assert read_marker(folder, "tune_eval.json", "key") is None
    write_marker(folder, "tune_eval.json", "other", {"figures": {}})
    assert read_marker(folder, "tune_eval.json", "key") is None


def test_files_outside_the_run_never_change(copy_of, tmp_path):
    """The whole round of a received run: load, evaluate, resume; nothing beside it is touched."""
    outside = tmp_path / "outside.txt"
    outside.write_text("untouched")
    stamp = os.stat(outside).st_mtime_ns
    run = copy_of()
    ct_plugin.load_run(run)
    assert main(["evaluate", str(run), str(run), "--rounds", "2", "--n-factuals", "5", "--out",
                 str(tmp_path / "eval")]) == 0
    assert main(["train", "--resume", "--out", str(run), "--epochs", "3", "--quiet"]) == 0
    assert outside.read_text() == "untouched" and os.stat(outside).st_mtime_ns == stamp
