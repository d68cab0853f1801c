"""The import rules of docs/architecture.md, checked with import-linter (contracts in pyproject.toml).

``adapters/`` installs as ``ct_plugin.adapters`` (setuptools ``package-dir``), but on disk it sits
beside ``ct_plugin/``, where import-linter's graph builder does not look. The check therefore runs on
a copy of the product code laid out as it is installed: ``ct_plugin/`` with ``adapters/`` inside.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def installed_layout(folder: Path) -> Path:
    """A copy of ``ct_plugin/`` with ``adapters/`` at ``ct_plugin/adapters`` (as it is installed); returns its root."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "ct_plugin", folder / "ct_plugin", ignore=ignore)
    shutil.copytree(ROOT / "adapters", folder / "ct_plugin" / "adapters", ignore=ignore)
    return folder


def lint_imports(folder: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` with the project's contracts, importing ``ct_plugin`` from ``folder``."""
    script = Path(sys.executable).with_name("lint-imports")
    if not script.is_file():
        pytest.skip("import-linter is not installed (it is in the dev extra: pip install -e '.[dev]')")
    env = {"PATH": str(script.parent), "PYTHONPATH": str(folder)}
    return subprocess.run([str(script), str(ROOT / "pyproject.toml"), "--no-cache", "--no-logo"],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=300)


def test_imports_go_down_the_layers_without_cycles(tmp_path):
    result = lint_imports(installed_layout(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
    assert "Adapters use only the plugin interface" in result.stdout


def test_the_contracts_catch_an_upward_import_and_the_cycle_it_closes(tmp_path):
    folder = installed_layout(tmp_path)
    with (folder / "ct_plugin" / "data" / "split.py").open("a") as handle:
        handle.write("\nimport ct_plugin.training.train  # an upward import: data must not know training\n")
    result = lint_imports(folder)
    assert result.returncode != 0
    assert "ct_plugin.data.split -> ct_plugin.training.train" in result.stdout
    assert "Layers: imports only go down (see docs/architecture.md) BROKEN" in result.stdout
    assert "No import cycle, at any depth BROKEN" in result.stdout


def test_the_core_never_imports_a_host_library(tmp_path):
    folder = installed_layout(tmp_path)
    with (folder / "ct_plugin" / "evaluation" / "report.py").open("a") as handle:
        handle.write("\nimport dice_ml  # a host library outside the adapters\n")
    result = lint_imports(folder)
    assert result.returncode != 0
    assert "The core never imports the host libraries; only adapters do BROKEN" in result.stdout


def test_every_module_over_400_lines_is_listed_with_its_purpose():
    section = (ROOT / "docs" / "architecture.md").read_text().split("## Modules over 400 lines", 1)[1]
    long = [path.relative_to(ROOT).as_posix() for folder in ("ct_plugin", "adapters")
            for path in sorted((ROOT / folder).rglob("*.py")) if len(path.read_text().splitlines()) > 400]
    missing = [path for path in long if path not in section]
    assert not missing, f"docs/architecture.md does not say what these long modules hold: {missing}"
