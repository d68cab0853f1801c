"""`ct-plugin evaluate` / `ct-plugin reproduce`: outputs, bad input, and a slow quick reproduction."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

import ct_plugin
from ct_plugin.cli import main
from ct_plugin.errors import CTPluginError
from ct_plugin.evaluation.protocol import ProtocolConfig, evaluate_runs, load_runs
from tests.realdata import real_data_dir


def _train(out: Path, dataset: str = "circles", strategy: str = "vanilla", seed: int = 0) -> Path:
    ct_plugin.train(None, dataset=dataset, strategy=strategy, out=out, quiet=True, epochs=2, nce=40,
                    seed=seed, dataset_options={"n_samples": 300}, protect=strategy == "ct")
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return {
            "baseline": _train(root / "baseline"),
            "ct": _train(root / "ct", strategy="ct"),
            "moons": _train(root / "moons", dataset="moons"),
            "other_split": _train(root / "other_split", seed=1),
        }
    finally:
        torch.set_num_threads(threads)


FAST = ["--rounds", "3", "--n-factuals", "10", "--lambda-energy", "1", "--epsilons", "0,0.1"]


def test_evaluate_writes_tables_and_figures(runs, tmp_path, capsys):
    out = tmp_path / "eval"
    argv = ["evaluate", str(runs["baseline"]), str(runs["ct"]), "--out", str(out), "--posthoc-option", "step_size=0.2"]
    assert main([*argv, *FAST]) == 0
    for name in ("rounds.csv", "summary.csv", "comparison.csv", "robustness.csv", "attribution.csv",
                 "evaluation.md", "robust_accuracy.png", "integrated_gradients.png", "decision_regions.png"):
        assert (out / name).stat().st_size > 0, name
    comparison = pd.read_csv(out / "comparison.csv")
    assert set(comparison.metric) >= {"ip", "ip_star", "cost", "validity"}
    rounds = pd.read_csv(out / "rounds.csv")
    assert set(rounds.setting) == {"main", "protected"}
    assert len(rounds) == 2 * 2 * 3  # runs x settings x rounds (one lambda)
    printed = capsys.readouterr().out
    assert "IP (mean L1 to X+, valid CFs)" in printed  # the paper protocol is the default
    report = (out / "evaluation.md").read_text()
    assert "protocol: `paper`" in report and "protected search (cost): tau 0.5; frozen: x1" in report
    assert "main search (validity, IP, IP*): tau 0.95; nothing frozen" in report
    strict = tmp_path / "strict"
    assert main([*argv[:-2], "--protocol", "strict", "--out", str(strict), *FAST]) == 0
    assert "IP (mean L2 to X+)" in capsys.readouterr().out
    assert "protocol: `strict`" in (strict / "evaluation.md").read_text()


def test_evaluation_is_deterministic(runs):
    loaded = load_runs([runs["baseline"], runs["ct"]])
    config = ProtocolConfig(rounds=2, n_factuals=8, lambda_energies=(1.0,), epsilons=(0.0, 0.1), ig_rows=20)
    for protocol, columns in (("paper", ["validity", "ip", "ip_star", "ip_star_0.5", "cost"]),
                              ("strict", ["validity", "ip", "ip_star", "redundancy", "cost"])):
        config.protocol = protocol
        a = evaluate_runs(loaded, config)
        b = evaluate_runs(loaded, config)
        pd.testing.assert_frame_equal(a.rounds[columns], b.rounds[columns])


def test_a_model_compared_with_itself_shows_no_difference(runs):
    # what reproduce reports where tune recommends vanilla: the "CT" model is the baseline itself
    loaded = load_runs([runs["baseline"], runs["baseline"], runs["baseline"]])
    config = ProtocolConfig(rounds=3, n_factuals=8, lambda_energies=(1.0,), epsilons=(0.0,), ig_rows=20)
    comparison = evaluate_runs(loaded, config, labels=["baseline", "ct_free", "ct_protected"]).comparison
    assert set(comparison.run) == {"ct_free", "ct_protected"}
    measured = comparison[comparison.metric.isin(["ip", "ip_star", "cost"])].dropna(subset=["reduction_pct"])
    assert len(measured) and (measured.reduction_pct == 0).all() and not measured.significant.any()


def test_runs_on_different_datasets_are_refused(runs, capsys):
    assert main(["evaluate", str(runs["baseline"]), str(runs["moons"]), *FAST]) == 2
    err = capsys.readouterr().err
    assert "different datasets" in err and "'circles'" in err and "'moons'" in err


def test_runs_on_different_splits_are_refused(runs):
    with pytest.raises(CTPluginError, match="different splits"):
        load_runs([runs["baseline"], runs["other_split"]])


def test_incomplete_run_dir_is_refused(runs, tmp_path, capsys):
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "dataset.json", "dataset.npz", "model.json"):
        (broken / name).write_bytes((runs["baseline"] / name).read_bytes())
    assert main(["evaluate", str(runs["baseline"]), str(broken), *FAST]) == 2
    err = capsys.readouterr().err
    assert "incomplete" in err and "model.pt" in err
    assert main(["evaluate", str(tmp_path / "nowhere"), *FAST]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_bad_protocol_settings_are_refused(runs, capsys):
    assert main(["evaluate", str(runs["baseline"]), "--rounds", "1"]) == 2
    assert "rounds must be at least 2" in capsys.readouterr().err
    assert main(["evaluate", str(runs["baseline"]), "--lambda-energy", "one"]) == 2
    assert "comma-separated numbers" in capsys.readouterr().err
    assert main(["evaluate", str(runs["baseline"]), "--posthoc", "nope", *FAST]) == 2
    assert "unknown generator 'nope'" in capsys.readouterr().err
    assert main(["evaluate", str(runs["baseline"]), "--posthoc-option", "step_size", *FAST]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    assert main(["evaluate", str(runs["baseline"]), "--posthoc-option", "colour=red", *FAST]) == 2
    assert "unknown option 'colour'" in capsys.readouterr().err
    assert main(["evaluate", str(runs["baseline"]), "--posthoc", "nope", *FAST]) == 2
    assert "unknown generator 'nope'" in capsys.readouterr().err


def test_reproduce_refuses_unknown_dataset_and_missing_tables(tmp_path, capsys, monkeypatch):
    assert main(["reproduce", "--datasets", "iris", "--out", str(tmp_path)]) == 2
    assert "unknown dataset(s) ['iris']" in capsys.readouterr().err
    assert main(["reproduce", "--settings", "tuned", "--out", str(tmp_path)]) == 2
    assert "--settings takes a comma-separated subset of paper, tune" in capsys.readouterr().err
    assert main(["reproduce", "--seeds", "0", "--out", str(tmp_path)]) == 2
    assert "--seeds must be at least 1" in capsys.readouterr().err
    monkeypatch.delenv("CT_PLUGIN_DATA", raising=False)
    assert main(["reproduce", "--datasets", "adult", "--data-dir", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "dataset file 'adult.csv' not found; searched" in capsys.readouterr().err


@pytest.mark.slow
def test_quick_reproduction_on_circles(tmp_path):
    out, runs_dir = tmp_path / "out", tmp_path / "runs"
    argv = ["reproduce", "--quick", "--datasets", "circles", "--out", str(out), "--runs-dir", str(runs_dir),
            "--workers", "1", "--quiet"]
    assert main(argv) == 0
    expected = [
        "results.md", "figures/robust_accuracy.png", "figures/integrated_gradients.png", "results/settings.json",
        "results/table_tune_paper.csv", "results/table_paper_paper.csv", "results/table_tune_strict.csv",
        *(f"results/circles/{folder}/{name}"
          for folder in ("paper-seed0/paper", "tune-seed0/paper", "tune-seed0/strict")
          for name in ("rounds.csv", "summary.csv", "comparison.csv", "evaluation.md", "decision_regions.png")),
    ]
    for name in expected:
        path = out / name
        assert path.is_file() and path.stat().st_size > 0, name
    text = (out / "results.md").read_text()
    assert "ct-plugin reproduce --datasets circles --quick" in text
    for section in ("Paper protocol, settings chosen by `tune`", "Paper protocol, the paper's Table C.1 settings",
                    "Strict protocol", "What `tune` chose", "Targets"):
        assert section in text, section
    comparison = pd.read_csv(out / "results/circles/paper-seed0/paper/comparison.csv")
    assert {"ct_free", "ct_protected"} == set(comparison.run)
    # the same command again reuses every run and gives the same table
    before = (out / "results/table_tune_paper.csv").read_text()
    assert main(argv) == 0
    assert (out / "results/table_tune_paper.csv").read_text() == before


@pytest.mark.dice
def test_evaluate_with_dice_as_posthoc_explainer(runs, tmp_path, capsys):
    pytest.importorskip("dice_ml", reason="dice-ml is not installed (pip install 'ct-plugin[dice]')")
    out = tmp_path / "eval-dice"
    argv = ["evaluate", str(runs["baseline"]), str(runs["ct"]), "--out", str(out), "--posthoc", "dice-random",
            "--rounds", "2", "--n-factuals", "4", "--epsilons", "0,0.1"]
    assert main(argv) == 0, capsys.readouterr().err
    rounds = pd.read_csv(out / "rounds.csv")
    assert len(rounds) > 0 and rounds["validity"].notna().all()
    assert (out / "evaluation.md").stat().st_size > 0


@pytest.mark.slow
def test_quick_reproduction_on_mnist_faces_the_papers_mnist_row(tmp_path):
    real_data_dir("mnist/mnist_5k.csv.gz")  # skips, naming the places searched, without the MNIST subset
    out = tmp_path / "out"
    argv = ["reproduce", "--quick", "--datasets", "mnist", "--settings", "paper", "--out", str(out), "--runs-dir",
            str(tmp_path / "runs"), "--workers", "1", "--quiet"]
    assert main(argv) == 0
    text = (out / "results.md").read_text()
    assert "| mnist | 6.36* | -70.31 | -35.11* |" in text  # the paper's MNIST row beside ours
    assert "mnist: the 5,000-image MNIST subset split 4,000 / 1,000" in text  # the data difference, stated
    assert (out / "results/mnist/paper-seed0/paper/counterfactual_images.png").is_file()
