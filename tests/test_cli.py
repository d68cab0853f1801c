"""The ct-plugin command line: plugins, datasets, train (help, tiny run, bad input)."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import pytest

from ct_plugin.cli import format_warning, main


def test_plugins_lists_items_with_their_plugin(capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "eccco" in out and "(builtin)" in out and "strategies:" in out and "entry point of ct-plugin" in out


def test_datasets_lists_sizes(capsys, data_dir):
    assert main(["datasets", "moons", "adult", "--data-dir", str(data_dir), "-v"]) == 0
    out = capsys.readouterr().out
    assert "moons: 3000 train / 750 test rows" in out
    assert "adult: 39066 train / 9766 test rows, 20 encoded features" in out
    assert "categorical sex: Female, Male" in out


def test_datasets_missing_file_is_reported(capsys, tmp_path):
    assert main(["datasets", "gmsc", "--data-dir", str(tmp_path)]) == 0
    assert "not available: dataset file 'gmsc.csv' not found" in capsys.readouterr().out


def test_train_help_explains_the_options():
    out = subprocess.run(
        [sys.executable, "-m", "ct_plugin.cli", "train", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for flag in ("--dataset", "--strategy", "--generator", "--immutable", "--nce", "--tau", "--resume", "--config"):
        assert flag in out


def test_tiny_train_run_writes_a_run_directory(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--dataset",
            "moons",
            "--dataset-option",
            "n_samples=200",
            "--epochs",
            "2",
            "--nce",
            "40",
            "--immutable",
            "x1",
            "--hidden",
            "16,16",
            "--quiet",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "trained ct (eccco) on moons: 2 epochs" in printed and str(out) in printed
    config = json.loads((out / "config.json").read_text())
    assert config["immutable"] == ["x1"] and config["model_options"] == {"hidden": [16, 16]}
    spec = json.loads((out / "dataset.json").read_text())
    assert spec["mutability"] == ["none", "both"]


def test_config_file_with_cli_override(tmp_path, capsys):
    config = tmp_path / "ct.toml"
    config.write_text(
        '[train]\ndataset = "circles"\nepochs = 1\nnce = 30\nlambda_div = 0.7\n'
        "[train.dataset_options]\nn_samples = 200\n"
    )
    assert main(["train", "--config", str(config), "--lambda-div", "0.9", "--quiet", "--out", str(tmp_path / "r")]) == 0
    saved = json.loads((tmp_path / "r" / "config.json").read_text())
    assert saved["dataset"] == "circles" and saved["lambda_div"] == 0.9 and saved["nce"] == 30


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--dataset", "cifar10"], "unknown dataset 'cifar10'; available datasets:"),
        (["train", "--immutable", "age"], "unknown feature 'age' in dataset 'moons'; valid names: x1, x2"),
        (["train", "--epochs", "-2"], "epochs must be an integer in [1, 1000000], got -2"),
        (["train", "--strategy", "magic"], "unknown strategy 'magic'"),
        (["train", "--dataset-option", "n_samples"], "--dataset-option expects KEY=VALUE"),
        (["train", "--hidden", "a,b"], "--hidden expects comma-separated integers"),
        (["train", "--config", "missing.toml"], "config file missing.toml does not exist"),
        (["train", "--resume"], "--resume needs --out"),
    ],
)
def test_bad_input_gives_one_clear_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_the_command_line_shows_ct_plugins_warnings_in_one_line_and_restores_pythons_format():
    ours = format_warning(RuntimeWarning("ct on moons: only 0% matured"), RuntimeWarning,
                          "/site-packages/ct_plugin/training/loop.py", 216, "warnings.warn(...)")
    assert ours == "ct-plugin: warning: ct on moons: only 0% matured\n"
    theirs = format_warning(UserWarning("deprecated"), UserWarning, "/site-packages/torch/nn/x.py", 3, "x = 1")
    assert theirs.startswith("/site-packages/torch/nn/x.py:3: UserWarning: deprecated")
    before = warnings.formatwarning
    assert main(["datasets"]) == 0
    assert warnings.formatwarning is before
