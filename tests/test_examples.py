"""The examples a newcomer copies from must run."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_own_dataframe_example_runs():
    run = subprocess.run(
        [sys.executable, str(REPO / "examples" / "own_dataframe.py"), "--epochs", "3"],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "test accuracy" in run.stdout and "| feature | now | generic |" in run.stdout
    assert "frozen: age (immutable in the run), city (immutable in the run)" in run.stdout
    assert "*p(yes)*" in run.stdout


def _run_example(name: str, *args: str) -> str:
    run = subprocess.run([sys.executable, str(REPO / "examples" / name), *args],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_sklearn_estimator_example_runs():
    out = _run_example("sklearn_estimator.py", "--epochs", "2")
    assert "CTClassifier on the DataFrame: test accuracy" in out
    assert "Pipeline(ColumnTransformer, CTClassifier): test accuracy" in out
    assert "DiCE counterfactuals for the CT pipeline" in out or "dice-ml is not installed" in out


def test_tracking_example_runs(tmp_path):
    out = _run_example("tracking.py", "--epochs", "2", "--out", str(tmp_path))
    assert "run vanilla: strategy=vanilla, test_accuracy per epoch [" in out
    assert "run ct: strategy=ct" in out and "7 model artifacts" in out  # the run files and their manifest
    assert "TensorBoard log dir" in out and (tmp_path / "ct-tensorboard" / "tensorboard").is_dir()


def test_attributions_example_runs():
    out = _run_example("attributions.py", "--epochs", "2")
    for method in ("integrated_gradients", "saliency", "input_x_gradient", "deeplift", "gradient_shap"):
        assert method in out
    assert "mean |IG convergence delta|" in out
