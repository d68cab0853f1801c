"""The CARLA plugin module: registration without importing CARLA, install command, missing-CARLA messages.

These tests need no CARLA installed.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

import ct_plugin
from ct_plugin.adapters.carla import compat, install, plugin
from ct_plugin.errors import CTPluginError

TORCH = {f"carla-{m}" for m, _ in plugin.TORCH_METHODS}
UNSUPPORTED = {"carla-feature-tweak", "carla-focus", "carla-cem", "carla-causal-recourse"}


def test_importing_the_plugin_and_listing_never_imports_carla():
    code = (
        "import sys, ct_plugin\n"
        "names = ct_plugin.get_registry().names('generator')\n"
        "assert 'carla-wachter' in names, names\n"
        "assert 'carla' not in sys.modules\n"
        "print('OK')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


def test_every_method_is_registered():
    names = set(ct_plugin.get_registry().names("generator"))
    assert names >= TORCH | UNSUPPORTED
    for item in ct_plugin.get_registry().items("generator"):
        if item.name in UNSUPPORTED:
            assert not item.available and item.reason


def test_without_carla_every_item_gives_the_install_command(monkeypatch):
    monkeypatch.setattr(compat, "carla_version", lambda: None)
    items = {item.name: item for item in plugin.ct_plugin_generators()}
    assert set(items) == TORCH | UNSUPPORTED
    for name in TORCH:
        assert not items[name].available
        assert plugin.INSTALL_COMMAND in items[name].reason
    monkeypatch.setattr(compat, "_carla", None)
    with pytest.raises(CTPluginError, match=r"python -m ct_plugin\.adapters\.carla\.install"):
        compat.import_carla()


def test_wrong_carla_version_is_refused(monkeypatch):
    monkeypatch.setattr(compat, "carla_version", lambda: "0.0.4")
    ok, reason = plugin.carla_available()
    assert not ok and "supports 0.0.5" in reason


def test_install_commands():
    commands = install.pip_commands("python3")
    assert commands[-1][-2:] == ["--no-deps", "carla-recourse==0.0.5"]
    assert not any("tensorflow" in part for command in commands for part in command)
    pinned = install.pip_commands("python3", constraint="constraints.txt", quiet=True)
    assert all(c[c.index("-c") : c.index("-c") + 2] == ["-c", "constraints.txt"] and "--quiet" in c for c in pinned)
    result = subprocess.run(
        [sys.executable, "-m", "ct_plugin.adapters.carla.install", "--dry-run"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "--no-deps carla-recourse==0.0.5" in result.stdout.replace("'", "")


def test_cli_has_benchmark_and_carla_install():
    from ct_plugin.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["carla", "install", "--dry-run"])
    assert args.func(args) == 0
    args = parser.parse_args(["benchmark", "RUN", "--out", "x", "--methods", "carla-wachter"])
    assert args.runs == ["RUN"] and args.n_factuals == 20


def test_actionable_recourse_leaves_no_stray_tests_package():
    import importlib.metadata
    from pathlib import Path

    try:
        dist = importlib.metadata.distribution("actionable-recourse")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("actionable-recourse is not installed")
    stray = [f for f in dist.files or [] if f.parts and f.parts[0] == "tests" and Path(f.locate()).exists()]
    assert not stray, "actionable-recourse's top-level 'tests' package shadows the project's tests package"
