"""The plugin registry: built-ins, third-party plugins (run time and entry point), duplicates."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import ct_plugin
from ct_plugin import CTPluginError, PluginItem, hookimpl
from ct_plugin.generators.gradient import GenericGenerator
from ct_plugin.training.strategies import TrainingStrategy


def test_builtins_are_registered_from_the_entry_point():
    registry = ct_plugin.get_registry()
    assert {"generic", "eccco", "revise"} <= set(registry.names("generator"))
    assert {"vanilla", "ct", "energy", "adversarial"} <= set(registry.names("strategy"))
    assert {"mlp", "logreg", "cnn"} <= set(registry.names("model"))
    expected = {
        "moons",
        "circles",
        "linearly_separable",
        "overlapping",
        "digits",
        "breast_cancer",
        "adult",
        "gmsc",
        "california_housing",
        "credit_default",
    }
    assert expected <= set(registry.names("dataset"))
    assert registry.get("generator", "eccco").plugin == "builtin"
    sources = dict(ct_plugin.plugins.registry.plugin_sources())
    assert sources["builtin"].startswith("entry point of ct-plugin")


class LazyGenerator(GenericGenerator):
    """A third party's generator: Generic with a huge step."""

    name = "lazy"


class ThirdPartyPlugin:
    @hookimpl
    def ct_plugin_generators(self):
        return [PluginItem("lazy", lambda **kw: LazyGenerator(step_size=2.0, **kw), "third-party generator")]

    @hookimpl
    def ct_plugin_strategies(self):
        return [PluginItem("div-only", lambda config=None: TrainingStrategy("div-only", frozenset({"div"})))]


@pytest.fixture
def third_party():
    ct_plugin.register_plugin(ThirdPartyPlugin(), name="third-party")
    yield
    ct_plugin.unregister_plugin("third-party")


def test_runtime_plugin_generator_and_strategy_usable_from_api(third_party):
    registry = ct_plugin.get_registry()
    assert registry.get("generator", "lazy").plugin == "third-party"
    result = ct_plugin.train(
        "moons", strategy="div-only", generator="lazy", epochs=2, nce=50, quiet=True, dataset_options={"n_samples": 200}
    )
    assert set(result.log[-1]) >= {"yloss", "div"} and "adv" not in result.log[-1]


def test_runtime_plugin_usable_from_cli(third_party, capsys):
    from ct_plugin.cli import main

    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "lazy" in out and "third-party" in out and "div-only" in out
    code = main(
        [
            "train",
            "--dataset",
            "moons",
            "--dataset-option",
            "n_samples=200",
            "--strategy",
            "div-only",
            "--generator",
            "lazy",
            "--epochs",
            "1",
            "--nce",
            "20",
            "--quiet",
        ]
    )
    assert code == 0 and "trained div-only (lazy) on moons" in capsys.readouterr().out


def test_duplicate_names_are_rejected_clearly():
    class Clash:
        @hookimpl
        def ct_plugin_generators(self):
            return [PluginItem("eccco", GenericGenerator)]

    with pytest.raises(
        CTPluginError, match="generator 'eccco' is registered twice: by plugin 'builtin' and by plugin 'clash'"
    ):
        ct_plugin.register_plugin(Clash(), name="clash")
    assert "clash" not in dict(ct_plugin.plugins.registry.plugin_sources())
    assert ct_plugin.get_registry().get("generator", "eccco").plugin == "builtin"


def test_unknown_and_unavailable_names():
    registry = ct_plugin.get_registry()
    with pytest.raises(CTPluginError, match="unknown generator 'wachter'; available generators: .*eccco"):
        registry.get("generator", "wachter")

    class Missing:
        @hookimpl
        def ct_plugin_generators(self):
            return [PluginItem("needs-x", GenericGenerator, available=False, reason="pip install x")]

    ct_plugin.register_plugin(Missing(), name="missing")
    try:
        with pytest.raises(CTPluginError, match="generator 'needs-x' .* unavailable: pip install x"):
            ct_plugin.train("moons", generator="needs-x", epochs=1, quiet=True, dataset_options={"n_samples": 100})
    finally:
        ct_plugin.unregister_plugin("missing")


def test_entry_point_plugin_installed_as_a_distribution(tmp_path):
    """A real third-party distribution (dist-info with an entry point) on sys.path is picked up."""
    (tmp_path / "tiny_ct_plugin.py").write_text(
        textwrap.dedent("""
        from ct_plugin import PluginItem, hookimpl
        from ct_plugin.generators.gradient import GenericGenerator

        @hookimpl
        def ct_plugin_generators():
            return [PluginItem("tiny", GenericGenerator, "from an installed distribution")]
    """)
    )
    dist = tmp_path / "tiny_ct_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tiny-ct-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[ct_plugin]\ntiny = tiny_ct_plugin\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "ct_plugin.cli", "plugins", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    payload = json.loads(out)
    tiny = [g for g in payload["generator"] if g["name"] == "tiny"]
    assert tiny and tiny[0]["plugin"] == "tiny"
    assert {"name": "tiny", "source": "entry point of tiny-ct-plugin 0.1"} in payload["plugins"]
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "ct_plugin.cli",
            "train",
            "--dataset",
            "moons",
            "--dataset-option",
            "n_samples=100",
            "--generator",
            "tiny",
            "--epochs",
            "1",
            "--nce",
            "10",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert run.returncode == 0, run.stderr
    assert "trained ct (tiny)" in run.stdout


def test_plugin_returning_garbage_is_named():
    class Broken:
        @hookimpl
        def ct_plugin_models(self):
            return [torch.nn.Linear]

    with pytest.raises(CTPluginError, match="plugin 'broken' returned type from its model hook"):
        ct_plugin.register_plugin(Broken(), name="broken")


def test_plugin_file_paths_exist():
    assert Path(ct_plugin.__file__).parent.name == "ct_plugin"
    import ct_plugin.adapters.carla.plugin as carla_plugin

    assert Path(carla_plugin.__file__).parent.parent.name == "adapters"  # the adapters/ folder, mapped
