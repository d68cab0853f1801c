"""The DiCE plugin without DiCE: lazy import, registration, the missing-dependency message, option checks.

These tests do not need dice-ml: absence is simulated by making the import machinery
report it missing (``importlib.util.find_spec`` / ``sys.modules``), never by faking DiCE.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pluggy
import pytest

from ct_plugin.adapters.dice import plugin as dice_plugin
from ct_plugin.adapters.dice.generator import METHODS, DiceGenerator
from ct_plugin.errors import CTPluginError, MissingDependencyError
from ct_plugin.plugins import hookspecs
from ct_plugin.plugins.registry import Registry

INSTALL = "pip install 'ct-plugin[dice]'"
NAMES = [f"dice-{m}" for m in METHODS]


def _registry_with_dice_plugin() -> Registry:
    """A registry holding only the DiCE plugin (the process-wide one stays untouched)."""
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    manager.register(dice_plugin, name="dice")
    return Registry(manager)


def _hide_dice(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args, **kwargs):
        if name == "dice_ml" or name.startswith("dice_ml."):
            return None
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    monkeypatch.setitem(sys.modules, "dice_ml", None)  # `import dice_ml` now raises ImportError


def test_importing_the_plugin_and_the_registry_does_not_import_dice_ml():
    code = (
        "import sys, ct_plugin.adapters.dice.plugin, ct_plugin.adapters.dice.generator\n"
        "from ct_plugin.plugins.registry import get_registry\n"
        "names = get_registry().names('generator')\n"
        "assert 'dice-random' in names, names\n"
        "assert 'dice_ml' not in sys.modules, 'dice_ml was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_all_four_methods_are_registered_from_the_entry_point():
    from ct_plugin.plugins.registry import get_registry

    registry = get_registry()
    for name in NAMES:
        item = next(i for i in registry.items("generator") if i.name == name)
        assert item.plugin == "dice"
        assert item.extra["provides_path"] is False


def test_missing_dice_ml_gives_unavailable_items_with_the_install_command(monkeypatch):
    _hide_dice(monkeypatch)
    available, reason = dice_plugin.dice_status()
    assert not available and INSTALL in reason
    items = dice_plugin.dice_items()
    assert [i.name for i in items] == NAMES
    assert all(not i.available and INSTALL in i.reason and "dice-ml" in i.reason for i in items)

    registry = _registry_with_dice_plugin()
    assert registry.names("generator") == sorted(NAMES)
    assert registry.names("generator", available_only=True) == []
    with pytest.raises(CTPluginError, match=r"dice-genetic.*unavailable.*pip install 'ct-plugin\[dice\]'"):
        registry.build("generator", "dice-genetic")


def test_fitting_without_dice_ml_raises_missing_dependency(monkeypatch):
    from ct_plugin.data.synthetic import make_synthetic

    spec = make_synthetic("moons", n_samples=100)
    _hide_dice(monkeypatch)
    generator = DiceGenerator("random")  # the constructor only stores parameters
    with pytest.raises(MissingDependencyError) as info:
        generator.fit(spec)
    assert info.value.install == INSTALL
    assert INSTALL in str(info.value)


def test_with_dice_ml_installed_the_items_are_available():
    pytest.importorskip("dice_ml", reason="dice-ml not installed (pip install 'ct-plugin[dice]')")
    assert all(i.available and i.reason == "" for i in dice_plugin.dice_items())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "annealing"}, "unknown DiCE method 'annealing'"),
        ({"method": "random", "total_cfs": 0}, "total_cfs must be a positive integer"),
        ({"method": "random", "max_data_rows": 3}, "max_data_rows must be an integer >= 10"),
        ({"method": "random", "desired_class": 0}, "desired_class are set by the adapter"),
        ({"method": "random", "permitted_range": {}}, "permitted_range are set by the adapter"),
    ],
)
def test_bad_constructor_arguments_name_the_culprit(kwargs, message):
    with pytest.raises(CTPluginError, match=message):
        DiceGenerator(**kwargs)


def test_estimated_seconds_is_linear_and_method_specific():
    random_gen, gradient_gen = DiceGenerator("random"), DiceGenerator("gradient")
    assert random_gen.estimated_seconds(0) == 0
    assert random_gen.estimated_seconds(200) == pytest.approx(2 * random_gen.estimated_seconds(100))
    assert gradient_gen.estimated_seconds(100) > random_gen.estimated_seconds(100)
    assert gradient_gen.name == "dice-gradient" and gradient_gen.provides_path is False
