"""ct-plugin: Counterfactual Training for PyTorch classifiers.

Public API::

    import ct_plugin
    spec = ct_plugin.load_dataset("moons", seed=0)
    result = ct_plugin.train(spec, strategy="ct", generator="eccco", epochs=50, out="runs/moons-ct")
    model = ct_plugin.load_model("runs/moons-ct")
    recourse = ct_plugin.explain("runs/moons-ct", {"x1": 0.5, "x2": 0.1}, target=1)   # one person's recourse
    clf = ct_plugin.CTClassifier(strategy="ct", epochs=50).fit(X, y)   # scikit-learn estimator
"""

from typing import TYPE_CHECKING, Any

from ct_plugin._version import __version__ as __version__

# Names are imported on first use (PEP 562): `import ct_plugin` and `ct-plugin --help` do not
# pay for torch, pandas and scikit-learn until something needs them.
_LAZY = {
    "TrainConfig": "ct_plugin.config",
    "SearchConstraints": "ct_plugin.constraints",
    "DatasetSpec": "ct_plugin.data.spec",
    "from_arrays": "ct_plugin.data.builder",
    "from_dataframe": "ct_plugin.data.builder",
    "load_dataset": "ct_plugin.data.load",
    "CTPluginError": "ct_plugin.errors",
    "MissingDependencyError": "ct_plugin.errors",
    "RunDirectoryError": "ct_plugin.errors",
    "UnknownNameError": "ct_plugin.errors",
    "CheckpointError": "ct_plugin.errors",
    "RunLockedError": "ct_plugin.errors",
    "TrainingDivergedError": "ct_plugin.errors",
    "InvalidSettingError": "ct_plugin.errors",
    "CounterfactualGenerator": "ct_plugin.generators.base",
    "SearchResult": "ct_plugin.generators.base",
    "hookimpl": "ct_plugin.plugins.hookspecs",
    "LossTerm": "ct_plugin.plugins.registry",
    "PluginItem": "ct_plugin.plugins.registry",
    "get_registry": "ct_plugin.plugins.registry",
    "register_plugin": "ct_plugin.plugins.registry",
    "unregister_plugin": "ct_plugin.plugins.registry",
    "Explanation": "ct_plugin.recourse",
    "explain": "ct_plugin.recourse",
    "Run": "ct_plugin.runs.load",
    "load_model": "ct_plugin.runs.load",
    "load_run": "ct_plugin.runs.load",
    "TrainingStrategy": "ct_plugin.training.strategies",
    "thread_scope": "ct_plugin.threads",
    "TrainResult": "ct_plugin.training.train",
    "train": "ct_plugin.training.train",
    "SelectionRule": "ct_plugin.tuning",
    "TuneResult": "ct_plugin.tuning",
    "tune": "ct_plugin.tuning",
    "tune_methods": "ct_plugin.compare.choose",
    # scikit-learn's estimator machinery, on first use only
    "CTClassifier": "ct_plugin.estimator",
}

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from ct_plugin.compare.choose import tune_methods
    from ct_plugin.config import TrainConfig
    from ct_plugin.constraints import SearchConstraints
    from ct_plugin.data.builder import from_arrays, from_dataframe
    from ct_plugin.data.load import load_dataset
    from ct_plugin.data.spec import DatasetSpec
    from ct_plugin.errors import (
        CheckpointError,
        CTPluginError,
        InvalidSettingError,
        MissingDependencyError,
        RunDirectoryError,
        RunLockedError,
        TrainingDivergedError,
        UnknownNameError,
    )
    from ct_plugin.estimator import CTClassifier
    from ct_plugin.generators.base import CounterfactualGenerator, SearchResult
    from ct_plugin.plugins.hookspecs import hookimpl
    from ct_plugin.plugins.registry import LossTerm, PluginItem, get_registry, register_plugin, unregister_plugin
    from ct_plugin.recourse import Explanation, explain
    from ct_plugin.runs.load import Run, load_model, load_run
    from ct_plugin.threads import thread_scope
    from ct_plugin.training.strategies import TrainingStrategy
    from ct_plugin.training.train import TrainResult, train
    from ct_plugin.tuning import SelectionRule, TuneResult, tune


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ct_plugin' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])



__all__ = [
    "CTClassifier",
    "CTPluginError",
    "CheckpointError",
    "CounterfactualGenerator",
    "DatasetSpec",
    "Explanation",
    "InvalidSettingError",
    "LossTerm",
    "MissingDependencyError",
    "PluginItem",
    "Run",
    "RunDirectoryError",
    "RunLockedError",
    "SearchConstraints",
    "SearchResult",
    "SelectionRule",
    "TrainConfig",
    "TrainResult",
    "TrainingDivergedError",
    "TrainingStrategy",
    "TuneResult",
    "UnknownNameError",
    "explain",
    "from_arrays",
    "from_dataframe",
    "get_registry",
    "hookimpl",
    "load_dataset",
    "load_model",
    "load_run",
    "register_plugin",
    "thread_scope",
    "train",
    "tune",
    "tune_methods",
    "unregister_plugin",
]
