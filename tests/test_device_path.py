"""`--device` on every command that computes: what it reaches, what it refuses, and what it does not change.

The CUDA comparison at the end runs only where torch sees a GPU (CI has none); everything else runs
on the CPU device named explicitly, which takes the same code path (tensors placed on a resolved
device, draws made on the CPU).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import ct_plugin
from ct_plugin.cli import main
from ct_plugin.errors import CTPluginError
from ct_plugin.evaluation.protocol import ProtocolConfig, evaluate_runs, load_runs
from ct_plugin.grid import make_cell_id
from ct_plugin.reproduce.plan import Plan
from ct_plugin.reproduce.run import train_job

COMMANDS = ("train", "tune", "evaluate", "explain", "reproduce", "compare")
NO_CUDA = "device 'cuda' was requested but torch reports no CUDA device; use --device cpu"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("device")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = {}
        for strategy in ("vanilla", "ct"):
            out[strategy] = root / strategy
            ct_plugin.train(None, dataset="circles", strategy=strategy, out=out[strategy], quiet=True, epochs=2,
                            nce=40, dataset_options={"n_samples": 300}, protect=strategy == "ct", device="cpu")
        return out
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_computing_command_takes_device(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    assert "--device" in text, f"`ct-plugin {command}` has no --device"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
@pytest.mark.parametrize("argv", [
    ["evaluate", "{vanilla}", "{ct}", "--device", "cuda"],
    ["explain", "{vanilla}", "--rejected", "1", "--device", "cuda", "--target-class", "1"],
    ["tune", "--dataset", "circles", "--device", "cuda", "--out", "{tmp}/tune"],
    ["reproduce", "--quick", "--datasets", "circles", "--device", "cuda", "--out", "{tmp}/r", "--runs-dir", "{tmp}/rr"],
    ["compare", "--quick", "--datasets", "circles", "--device", "cuda", "--out", "{tmp}/c", "--runs-dir", "{tmp}/cc"],
])
def test_cuda_without_a_gpu_is_refused_before_any_work(argv, runs, tmp_path, capsys):
    argv = [a.format(tmp=tmp_path, **runs) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [f"ct-plugin: error: {NO_CUDA}"], err
    assert not any(tmp_path.iterdir()), "work was done before the device was refused"


def test_a_device_that_does_not_exist_is_named(runs, capsys):
    assert main(["evaluate", str(runs["vanilla"]), str(runs["ct"]), "--device", "gpu"]) == 2
    assert "invalid device 'gpu'; use auto, cpu or cuda[:index]" in capsys.readouterr().err


def test_evaluation_on_a_named_device_matches_the_default(runs):
    loaded = load_runs([runs["vanilla"], runs["ct"]])
    for protocol in ("paper", "strict"):
        config = ProtocolConfig(protocol=protocol, rounds=2, n_factuals=8, lambda_energies=(1.0,),
                                epsilons=(0.0, 0.1), ig_rows=20)
        a = evaluate_runs(loaded, config, device="cpu")
        b = evaluate_runs(load_runs([runs["vanilla"], runs["ct"]]), config)  # auto: CUDA where torch sees one
        columns = [c for c in a.rounds.columns if c != "seconds_per_cf"]
        # the same rows are judged either way; on a GPU only float arithmetic differs
        exact = not torch.cuda.is_available()
        pd.testing.assert_frame_equal(a.rounds[columns], b.rounds[columns], check_exact=exact,
                                      **({} if exact else {"rtol": 1e-3, "atol": 1e-4}))
        assert a.examples["ct"]["counterfactuals"].dtype == np.float32  # came back as numpy


def test_explain_on_a_named_device(runs):
    result = ct_plugin.explain(runs["ct"], rejected=3, target=1, progress=False, device="cpu")
    assert len(result.counterfactuals) == 3 and result.counterfactuals.valid.all()
    with pytest.raises(CTPluginError, match="invalid device 'tpu'"):
        ct_plugin.explain(runs["ct"], rejected=1, target=1, progress=False, device="tpu")


def test_where_a_run_trained_is_not_part_of_what_it_is(tmp_path):
    config = {"epochs": 3, "device": "auto"}
    assert make_cell_id("d", "ct", "eccco", {}, 0, config) == make_cell_id("d", "ct", "eccco", {}, 0,
                                                                             {**config, "device": "cuda:1"})
    spec = ct_plugin.load_dataset("circles", n_samples=200)
    options = {"strategy": "vanilla", "epochs": 1}
    _, _, reused = train_job(spec, options, str(tmp_path / "run"), device="cpu")
    assert not reused
    assert train_job(spec, options, str(tmp_path / "run"), device="auto")[2], "a run trained on cpu was retrained"


def test_a_plan_keeps_its_device_and_refuses_a_missing_one():
    assert Plan.for_mode(True, device="cpu").device == "cpu"
    assert Plan.for_mode(False).device == "auto"
    with pytest.raises(CTPluginError, match="invalid device"):
        Plan.for_mode(True, device="quantum")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine (CI has none)")
def test_evaluation_on_the_gpu_matches_the_cpu(runs):
    config = ProtocolConfig(rounds=3, n_factuals=10, lambda_energies=(1.0,), epsilons=(0.0, 0.1), ig_rows=20)
    cpu = evaluate_runs(load_runs([runs["vanilla"], runs["ct"]]), config, device="cpu")
    loaded = load_runs([runs["vanilla"], runs["ct"]])
    gpu = evaluate_runs(loaded, config, device="cuda")
    # the caller's models go back where they were: CPU tensors still feed them afterwards
    assert all(next(run.model.parameters()).device.type == "cpu" for run in loaded)
    explained = ct_plugin.explain(loaded[1], rejected=2, target=1, progress=False, device="cuda")
    assert len(explained.counterfactuals) == 2 and next(loaded[1].model.parameters()).device.type == "cpu"
    for column in ("validity", "ip", "cost"):
        np.testing.assert_allclose(gpu.rounds[column], cpu.rounds[column], rtol=1e-3, atol=1e-4)
