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
    assert "counterfactual" in run.stdout and "test accuracy" in run.stdout
