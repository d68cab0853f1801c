"""ct-plugin: Counterfactual Training for PyTorch classifiers.

Public API::

    import ct_plugin
    spec = ct_plugin.load_dataset("moons", seed=0)
    result = ct_plugin.train(spec, strategy="ct", generator="eccco", epochs=50, out="runs/moons-ct")
    model = ct_plugin.load_model("runs/moons-ct")
"""

from ct_plugin.config import TrainConfig
from ct_plugin.constraints import SearchConstraints
from ct_plugin.data.spec import DatasetSpec, from_arrays, from_dataframe
from ct_plugin.datasets import load_dataset
from ct_plugin.errors import (
    CheckpointError,
    CTPluginError,
    MissingDependencyError,
    RunDirectoryError,
    RunLockedError,
    TrainingDivergedError,
    UnknownNameError,
)
from ct_plugin.generators.base import CounterfactualGenerator, SearchResult
from ct_plugin.hookspecs import hookimpl
from ct_plugin.registry import PluginItem, get_registry, register_plugin, unregister_plugin
from ct_plugin.rundir import Run, load_model, load_run
from ct_plugin.strategies import TrainingStrategy
from ct_plugin.trainer import TrainResult, train
from ct_plugin.validation import InvalidSettingError

__version__ = "0.1.0"

__all__ = [
    "CTPluginError",
    "CheckpointError",
    "CounterfactualGenerator",
    "DatasetSpec",
    "InvalidSettingError",
    "MissingDependencyError",
    "PluginItem",
    "Run",
    "RunDirectoryError",
    "RunLockedError",
    "SearchConstraints",
    "SearchResult",
    "TrainConfig",
    "TrainResult",
    "TrainingDivergedError",
    "TrainingStrategy",
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
    "unregister_plugin",
]
