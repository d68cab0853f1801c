"""The jobs of `reproduce` and `compare`: an evaluation is reused only for the same trained models (not merely the
same settings), and a training's warnings go into its run's marker, not between the progress lines."""

from __future__ import annotations

import json
import warnings

import torch

import ct_plugin
from ct_plugin.reproduce import run as reproduce_run
from ct_plugin.runs.files import WEIGHTS, weights_digest, write_manifest

PROTOCOLS = {"paper": {"protocol": "paper", "rounds": 2, "n_factuals": 10, "lambda_energies": [1.0],
                       "attack_rows": 40, "ig_rows": 10, "epsilons": [0.0]}}
OPTIONS = {"model": "mlp", "epochs": 2, "batch_size": 64, "strategy": "vanilla", "seed": 0}


def test_an_evaluation_is_reused_only_for_the_same_weights(tmp_path, monkeypatch):
    spec = ct_plugin.load_dataset("moons", n_samples=300)
    run_dir = str(tmp_path / "runs" / "baseline")
    reproduce_run.train_job(spec, OPTIONS, run_dir)
    calls = []
    evaluate_runs = reproduce_run.evaluate_runs

    def counting(*args, **kwargs):
        calls.append(1)
        return evaluate_runs(*args, **kwargs)

    monkeypatch.setattr(reproduce_run, "evaluate_runs", counting)
    out = str(tmp_path / "out")
    labels = ["baseline", "ct_free", "ct_protected"]
    first = reproduce_run.evaluate_job([run_dir] * 3, labels, PROTOCOLS, out)
    again = reproduce_run.evaluate_job([run_dir] * 3, labels, PROTOCOLS, out)
    assert len(calls) == 1  # the same models: reused
    assert first["paper"]["summary"].equals(again["paper"]["summary"])

    # the same settings trained by other code (or taken from another runs folder): other weights
    digest = weights_digest(run_dir)
    state = torch.load(f"{run_dir}/{WEIGHTS}", weights_only=True)
    torch.save({k: v + 0.5 for k, v in state.items()}, f"{run_dir}/{WEIGHTS}")
    write_manifest(tmp_path / "runs" / "baseline")
    assert weights_digest(run_dir) != digest
    from_manifest = weights_digest(run_dir)
    (tmp_path / "runs" / "baseline" / "manifest.json").unlink()  # a run older than manifests: read from the file
    assert weights_digest(run_dir) == from_manifest
    reproduce_run.evaluate_job([run_dir] * 3, labels, PROTOCOLS, out)
    assert len(calls) == 2  # evaluated again


def test_training_warnings_go_into_the_runs_marker(tmp_path):
    spec = ct_plugin.load_dataset("moons", n_samples=300)
    # one search step towards tau 0.99: the in-training counterfactuals never mature, which train warns about
    options = {"model": "mlp", "epochs": 2, "batch_size": 64, "strategy": "ct", "seed": 0, "nce": 50,
               "max_steps": 1, "tau": 0.99}
    run_dir = str(tmp_path / "run")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, _, reused = reproduce_run.train_job(spec, options, run_dir)
    assert not reused and not caught  # nothing printed between the progress lines
    listed = json.loads((tmp_path / "run" / reproduce_run.MARKER).read_text())[reproduce_run.WARNINGS]
    assert any("matured" in message for message in listed), listed
    assert reproduce_run.warned_runs([run_dir]) == [run_dir]
    line = reproduce_run.trained_summary([(run_dir, 1.0, False)], 1.0)
    assert line.startswith("trained 1 runs, reused 0") and "1 warned in training" in line and run_dir in line
