"""`ct-plugin evaluate` on runs of a CSV that names no protected features: nothing is called protected."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ct_plugin.cli import main


@pytest.mark.filterwarnings("ignore:.*matured:RuntimeWarning")  # 2 epochs of CT on a tiny table
def test_csv_runs_with_nothing_to_freeze_get_plain_labels(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3)).round(3)
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    frame["label"] = (X[:, 0] + 0.5 * X[:, 1] + 0.3 * rng.normal(size=120) > 0).astype(int)
    csv = tmp_path / "tiny.csv"
    frame.to_csv(csv, index=False)
    data = ["--csv", str(csv), "--target", "label", "--epochs", "2", "--quiet"]
    assert main(["train", *data, "--strategy", "vanilla", "--out", str(tmp_path / "A")]) == 0
    assert main(["train", *data, "--nce", "40", "--out", str(tmp_path / "B")]) == 0
    out = tmp_path / "E"
    assert main(["evaluate", str(tmp_path / "A"), str(tmp_path / "B"), "--out", str(out), "--rounds", "2",
                 "--n-factuals", "10", "--lambda-energy", "1", "--epsilons", "0,0.1"]) == 0
    printed = capsys.readouterr().out
    report = (out / "evaluation.md").read_text()
    assert "protected" not in report.lower()
    assert "protected" not in printed.split("| metric |", 1)[1].lower()  # the summary printed by the command
    assert "| validity, cost search (" in report and "| cost (L1, valid CFs) |" in report
    assert "the dataset names no features to protect" in report  # the cost search says why
    assert "The dataset names no features to protect, so there is no attribution share" in report
    assert "e-" not in report.split("## Integrated gradients")[1].split("Evaluation wall time")[0]  # 3 digits
    assert not (out / "integrated_gradients.png").exists()  # no figure of a share that does not exist
    assert (out / "robust_accuracy.png").stat().st_size > 0
