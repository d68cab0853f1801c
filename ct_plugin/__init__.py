"""ct-plugin: Counterfactual Training for PyTorch classifiers.

Public API::

    import ct_plugin
    spec = ct_plugin.load_dataset("moons", seed=0)
    result = ct_plugin.train(spec, strategy="ct", generator="eccco", epochs=50, out="runs/moons-ct")
    model = ct_plugin.load_model("runs/moons-ct")
    clf = ct_plugin.CTClassifier(strategy="ct", epochs=50).fit(X, y)   # scikit-learn estimator
"""

from ct_plugin.config import TrainConfig
from ct_plugin.constraints import SearchConstraints
from ct_plugin.data.spec import DatasetSpec, from_arrays, from_dataframe
from ct_plugin.datasets import load_dataset
from ct_plugin.errors import CTPluginError, MissingDependencyError, RunDirectoryError, UnknownNameError
from ct_plugin.generators.base import CounterfactualGenerator, SearchResult
from ct_plugin.hookspecs import hookimpl
from ct_plugin.registry import PluginItem, get_registry, register_plugin, unregister_plugin
from ct_plugin.rundir import Run, load_model, load_run
from ct_plugin.strategies import TrainingStrategy
from ct_plugin.trainer import TrainResult, train
from ct_plugin.tuning import SelectionRule, TuneResult, tune

__version__ = "0.1.0"


def __getattr__(name: str):
    # CTClassifier pulls in scikit-learn's estimator machinery: import it on first use only
    if name == "CTClassifier":
        from ct_plugin.estimator import CTClassifier

        return CTClassifier
    raise AttributeError(f"module 'ct_plugin' has no attribute {name!r}")


__all__ = [
    "CTClassifier",
    "CTPluginError",
    "CounterfactualGenerator",
    "DatasetSpec",
    "MissingDependencyError",
    "PluginItem",
    "Run",
    "RunDirectoryError",
    "SearchConstraints",
    "SearchResult",
    "SelectionRule",
    "TrainConfig",
    "TrainResult",
    "TrainingStrategy",
    "TuneResult",
    "UnknownNameError",
    "from_arrays",
    "from_dataframe",
    "get_registry",
    "hookimpl",
    "load_dataset",
    "load_model",
    "load_run",
    "register_plugin",
    "train",
    "tune",
    "unregister_plugin",
]
