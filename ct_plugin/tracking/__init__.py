"""Experiment tracking: MLflow and TensorBoard plugins on the lifecycle hooks.

Use from the command line (``ct-plugin train --track mlflow``, ``--track tensorboard``,
``--track-uri``) or from Python::

    from ct_plugin.tracking import tracking
    with tracking("mlflow", uri="runs/mlruns"):
        ct_plugin.train("moons", strategy="ct", epochs=20, out="runs/moons-ct")

A tracker is an ordinary plugin object (``hookimpl`` methods for ``ct_plugin_train_start``,
``ct_plugin_epoch_end``, ``ct_plugin_train_end`` and ``ct_plugin_evaluation_end``), registered
for the duration of the ``with`` block. Each needs its extra: without it, one clear error with
the install command.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ct_plugin.errors import CTPluginError
from ct_plugin.plugins.registry import register_plugin, unregister_plugin
from ct_plugin.tracking.uris import check_tracking_uri

TRACKERS: dict[str, str] = {
    "mlflow": "ct_plugin.tracking.mlflow_tracker:MLflowTracker",
    "tensorboard": "ct_plugin.tracking.tensorboard_tracker:TensorBoardTracker",
}


def make_tracker(name: str, uri: str | Path | None = None, experiment: str = "ct-plugin") -> Any:
    """Build the tracker ``name`` (``mlflow`` or ``tensorboard``); a missing extra raises with the install command.

    The tracking location is checked first (:func:`check_tracking_uri`): an unusable one fails at once,
    before any training, with a clear message.
    """
    if name not in TRACKERS:
        raise CTPluginError(f"unknown tracker {name!r}; choose from {', '.join(TRACKERS)}")
    check_tracking_uri(name, uri)
    module_name, class_name = TRACKERS[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)(uri=uri, experiment=experiment)


@contextlib.contextmanager
def tracking(name: str, uri: str | Path | None = None, experiment: str = "ct-plugin") -> Iterator[Any]:
    """Register a tracker plugin while the block runs; a run still open when it raises is marked FAILED."""
    tracker = make_tracker(name, uri, experiment)
    plugin_name = register_plugin(tracker, name=f"tracker-{name}-{id(tracker)}")
    failed = True
    try:
        yield tracker
        failed = False
    finally:
        tracker.close("FAILED" if failed else "FINISHED")
        unregister_plugin(plugin_name)


def add_tracking_arguments(parser: Any) -> None:
    """``--track``, ``--track-uri`` and ``--track-experiment`` (for ``train`` and ``evaluate``)."""
    group = parser.add_argument_group("experiment tracking")
    group.add_argument("--track", choices=sorted(TRACKERS),
                       help="log to MLflow or TensorBoard (needs ct-plugin[mlflow] / ct-plugin[tensorboard])")
    group.add_argument("--track-uri", metavar="URI_OR_DIR",
                       help="MLflow tracking URI or store folder / TensorBoard log dir "
                            "(default: mlruns/ or tensorboard/ inside the run or output directory)")
    group.add_argument("--track-experiment", default="ct-plugin", help="MLflow experiment name (default ct-plugin)")


def tracking_from_args(args: Any) -> contextlib.AbstractContextManager[Any]:
    """The tracking context the parsed ``--track`` flags ask for (a no-op context without ``--track``)."""
    name = getattr(args, "track", None)
    if not name:
        if getattr(args, "track_uri", None):
            raise CTPluginError("--track-uri needs --track mlflow or --track tensorboard (which tracker to log to)")
        return contextlib.nullcontext()
    return tracking(name, getattr(args, "track_uri", None), getattr(args, "track_experiment", None) or "ct-plugin")


__all__ = ["TRACKERS", "add_tracking_arguments", "make_tracker", "tracking", "tracking_from_args"]
