"""`reproduce` and `compare` reuse an evaluation only for the same trained models, not merely the same settings."""

from __future__ import annotations

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
    reproduce_run.evaluate_job([run_dir] * 3, labels, PROTOCOLS, out)
    assert len(calls) == 2  # evaluated again
