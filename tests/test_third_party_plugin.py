"""A third party's plugin package (examples/third_party_strategy), installed and run with no change to the core.

The package is installed with pip into a folder of its own (``--target``, no dependencies: ct-plugin is
already here) and put on ``PYTHONPATH`` of fresh ``python -m ct_plugin.cli`` processes, so ct-plugin finds
it exactly as a user's ``pip install`` would: through the ``ct_plugin`` entry-point group of its metadata.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "examples" / "third_party_strategy"
SMALL = ["--dataset", "moons", "--dataset-option", "n_samples=300", "--epochs", "3", "--nce", "50", "--lr", "0.01",
         "--quiet"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The example package installed into a folder of its own; returns the folder."""
    target = tmp_path_factory.mktemp("third-party")
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
               "--target", str(target), str(PACKAGE)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (target / "ct_smooth_example" / "plugin.py").is_file()
    return target


def cli(args: list[str], plugin_dir: Path | None, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m ct_plugin.cli ARGS`` in a fresh process, with the plugin's folder on the path (or without)."""
    env = {**os.environ, "CT_PLUGIN_PROGRESS": "0"}
    paths = [str(plugin_dir)] if plugin_dir else []
    env["PYTHONPATH"] = os.pathsep.join([*paths, str(REPO)])
    return subprocess.run([sys.executable, "-m", "ct_plugin.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def test_the_plugin_registers_through_its_entry_point(installed, tmp_path):
    done = cli(["plugins", "--json"], installed, tmp_path)
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    sources = {row["name"]: row["source"] for row in listing["plugins"]}
    assert sources["smooth_example"] == "entry point of ct-smooth-example 0.1.0"
    term = next(row for row in listing["loss_term"] if row["name"] == "smooth")
    assert term["plugin"] == "smooth_example" and term["weight_setting"] == "lambda_smooth"
    assert term["default_weight"] == 0.1 and term["uses_counterfactuals"] is False
    assert "two-step" in {row["name"] for row in listing["update_schedule"]}
    assert "least-confident" in {row["name"] for row in listing["factual_selector"]}
    assert "smooth-ct" in {row["name"] for row in listing["strategy"]}
    train_help = cli(["train", "--help"], installed, tmp_path).stdout
    assert "--lambda-smooth" in train_help and "plugin smooth_example" in train_help


def test_its_strategy_trains_from_the_cli_with_its_own_schedule_and_selector(installed, tmp_path):
    done = cli(["train", *SMALL, "--strategy", "smooth-ct", "--lambda-smooth", "0.3", "--out", "plugged"],
               installed, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "smooth=" in done.stdout  # the epoch line shows the plugin's term
    run = tmp_path / "plugged"
    config = json.loads((run / "config.json").read_text())
    assert config["strategy"] == "smooth-ct" and config["term_weights"] == {"smooth": 0.3}
    last = json.loads((run / "log.jsonl").read_text().splitlines()[-1])
    assert {"yloss", "div", "reg", "adv", "smooth"} <= set(last) and last["smooth"] > 0
    # the same strategy with the joint schedule trains another model: the two-step schedule was in use
    done = cli(["train", *SMALL, "--strategy", "smooth-ct", "--lambda-smooth", "0.3", "--update-schedule", "joint",
                "--out", "joint"], installed, tmp_path)
    assert done.returncode == 0, done.stderr
    a = torch.load(run / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "joint" / "model.pt", weights_only=True)
    assert not all(torch.equal(a[k], b[k]) for k in a)


def test_its_term_works_with_a_builtin_strategy_and_is_refused_without_the_plugin(installed, tmp_path):
    done = cli(["train", *SMALL, "--strategy", "vanilla", "--lambda-smooth", "0.3", "--out", "vanilla"],
               installed, tmp_path)
    assert done.returncode == 0, done.stderr
    last = json.loads((tmp_path / "vanilla" / "log.jsonl").read_text().splitlines()[-1])
    assert last["smooth"] > 0 and "div" not in last and last["ct_on"] is False
    done = cli(["train", *SMALL, "--strategy", "smooth-ct", "--out", "missing"], None, tmp_path)
    assert done.returncode == 2 and "unknown strategy 'smooth-ct'" in done.stderr
    done = cli(["train", *SMALL, "--lambda-smooth", "0.3", "--out", "missing"], None, tmp_path)
    assert done.returncode == 2 and "unrecognized arguments: --lambda-smooth" in done.stderr


@pytest.mark.slow
def test_tune_tunes_the_plugin_terms_weight(installed, tmp_path):
    done = cli(["tune", "--dataset", "moons", "--dataset-option", "n_samples=400", "--grid-lambda-smooth", "0.1,0.3",
                "--grid-tau", "0.5", "--epochs", "3", "--nce", "40", "--lr", "0.01", "--seeds", "1", "--rounds", "2",
                "--n-factuals", "10", "--out", "tune", "--quiet"], installed, tmp_path)
    assert done.returncode == 0, done.stderr
    table = (tmp_path / "tune" / "tune.csv").read_text().splitlines()
    assert "lambda_smooth" in table[0].split(",") and len(table) == 3  # two configurations
    chosen = json.loads((tmp_path / "tune" / "chosen.json").read_text())
    assert chosen["tune"]["overrides"]["lambda_smooth"] in (0.1, 0.3)
    assert chosen["tune"]["ct_train"]["term_weights"]["smooth"] == chosen["tune"]["overrides"]["lambda_smooth"]
