"""MLflow experiment tracking through the lifecycle hooks (extra ``ct-plugin[mlflow]``).

One MLflow run per training run: the resolved config as parameters (nested keys dotted) and as
the artifact ``config.json``, every epoch record as metrics at ``step = epoch``, and at the end
the run directory's model files under the artifact folder ``model/`` (``model.pt``,
``model.json``, ``config.json``, ``dataset.json``, ``dataset.npz``: a directory
``ct_plugin.load_run`` reads). ``ct-plugin evaluate`` opens a *new* MLflow run in the same
experiment (an evaluation compares several training runs, so it belongs to none of them alone),
tagged with the training runs' MLflow ids, with the headline figures as metrics and every table
and figure as artifacts under ``evaluation/``.

The store is a local file store: ``uri`` if given, else ``<run dir>/mlruns`` (``./runs/mlruns`` for a
run without a directory; for ``evaluate``: the store the reference run was logged to, else
``<out>/mlruns``). Nothing is sent over the
network unless you pass a server ``uri`` yourself (or a ``sqlite:///...`` URI, which needs
SQLAlchemy and Alembic: ``pip install mlflow`` instead of the skinny client).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from ct_plugin.errors import CTPluginError, MissingDependencyError
from ct_plugin.plugins.events import EpochEvent, EvaluationEvent, TrainEndEvent, TrainStartEvent
from ct_plugin.plugins.hookspecs import hookimpl
from ct_plugin.runs.files import MANIFEST, MANIFEST_FILES
from ct_plugin.tracking.base import (
    evaluation_figures,
    flatten,
    numeric_items,
    param_text,
    read_tracking,
    write_tracking,
)
from ct_plugin.tracking.uris import redact

INSTALL = "pip install 'ct-plugin[mlflow]'"
MODEL_FILES = (*MANIFEST_FILES, MANIFEST)
"""The files of a finished run logged as the artifact folder ``model/`` (a loadable run directory)."""


def _mlflow() -> Any:
    try:
        import mlflow
        import mlflow.entities
        import mlflow.tracking
    except ImportError as exc:
        raise MissingDependencyError("MLflow (--track mlflow)", INSTALL) from exc
    return mlflow


def store_uri(location: str | Path) -> str:
    """A tracking URI for ``location``: URIs with a scheme pass through, paths become ``file:`` URIs."""
    text = str(location)
    if "://" in text or text.startswith("file:"):
        return text
    return Path(text).expanduser().resolve().as_uri()


class MLflowTracker:
    """A plugin object logging training and evaluation runs to MLflow (see the module docstring)."""

    name = "mlflow"

    def __init__(self, uri: str | Path | None = None, experiment: str = "ct-plugin"):
        # fail fast instead of MLflow's minutes of retries against a server that does not answer (a set value wins)
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
        self.mlflow = _mlflow()
        self.uri = store_uri(uri) if uri is not None else None
        self.experiment = experiment
        self.client: Any = None
        self.run_id: str | None = None
        self.run_ids: list[str] = []

    # --------------------------------------------------------------- helpers
    def _open(self, uri: str, run_name: str, tags: dict[str, str], resume_id: str | None = None) -> str:
        try:
            return self._open_run(uri, run_name, tags, resume_id)
        except CTPluginError:
            raise
        except Exception as exc:  # MLflow's own errors (an HTTP 404, a bad store): one clear message
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CTPluginError(f"MLflow tracking at {redact(uri)} failed: {detail[:300]}") from None

    def _open_run(self, uri: str, run_name: str, tags: dict[str, str], resume_id: str | None) -> str:
        if uri.startswith("file:"):
            # MLflow >= 3.x keeps the file store in maintenance mode and refuses it unless opted in;
            # it needs no database packages, which is why ct-plugin uses it (a set value wins)
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.client = self.mlflow.tracking.MlflowClient(tracking_uri=uri)
        if resume_id is not None:
            self.client.update_run(resume_id, status="RUNNING")
            self.run_id = resume_id
        else:
            found = self.client.get_experiment_by_name(self.experiment)
            experiment_id = found.experiment_id if found is not None else self.client.create_experiment(self.experiment)
            run = self.client.create_run(experiment_id, run_name=run_name, tags=tags)
            self.run_id = run.info.run_id
        self.run_ids.append(self.run_id)
        return self.run_id

    def _log_metrics(self, values: dict[str, float], step: int) -> None:
        Metric = self.mlflow.entities.Metric
        now = int(time.time() * 1000)
        metrics = [Metric(key, value, now, step) for key, value in values.items()]
        for start in range(0, len(metrics), 1000):  # MLflow's batch limit
            self.client.log_batch(self.run_id, metrics=metrics[start : start + 1000])

    def _log_params(self, values: dict[str, Any]) -> None:
        Param = self.mlflow.entities.Param
        params = [Param(key, param_text(value)[:6000]) for key, value in values.items()]
        for start in range(0, len(params), 100):
            self.client.log_batch(self.run_id, params=params[start : start + 100])

    def close(self, status: str = "FINISHED") -> None:
        """End the open MLflow run (``FAILED`` when training raised)."""
        if self.client is not None and self.run_id is not None:
            self.client.set_terminated(self.run_id, status=status)
        self.run_id = None

    # ----------------------------------------------------------------- hooks
    @hookimpl
    def ct_plugin_train_start(self, event: TrainStartEvent) -> None:
        config = event.config.to_dict()
        uri = self.uri or store_uri((event.run_dir or Path("runs")) / "mlruns")
        previous = read_tracking(event.run_dir).get(self.name, {})
        resume_id = previous.get("run_id") if event.start_epoch > 0 and previous.get("uri") == uri else None
        name = event.run_dir.name if event.run_dir is not None else f"{config['strategy']}-{event.spec.name}"
        tags = {"ct_plugin.dataset": event.spec.name, "ct_plugin.strategy": config["strategy"],
                "ct_plugin.generator": config["generator"], "ct_plugin.kind": "train"}
        if event.run_dir is not None:
            tags["ct_plugin.run_dir"] = str(Path(event.run_dir).resolve())
        run_id = self._open(uri, name, tags, resume_id)
        if resume_id is None:
            self._log_params(flatten(config))
            self.client.log_dict(run_id, config, "config.json")
        write_tracking(event.run_dir, self.name, {"uri": uri, "run_id": run_id, "experiment": self.experiment})

    @hookimpl
    def ct_plugin_epoch_end(self, event: EpochEvent) -> None:
        if self.run_id is not None:
            self._log_metrics(numeric_items(event.record), step=event.epoch + 1)

    @hookimpl
    def ct_plugin_train_end(self, event: TrainEndEvent) -> None:
        if self.run_id is None:
            return
        if event.run_dir is not None:
            for name in MODEL_FILES:
                path = Path(event.run_dir) / name
                if path.is_file():
                    self.client.log_artifact(self.run_id, str(path), artifact_path="model")
        else:
            with tempfile.TemporaryDirectory() as tmp:
                torch.save(event.model.state_dict(), Path(tmp) / "model.pt")
                self.client.log_artifact(self.run_id, str(Path(tmp) / "model.pt"), artifact_path="model")
        self.close()

    @hookimpl
    def ct_plugin_evaluation_end(self, event: EvaluationEvent) -> None:
        trained = [read_tracking(d).get(self.name, {}) for d in event.run_dirs]
        uri = self.uri or trained[0].get("uri") or store_uri(Path(event.out) / "mlruns")
        tags = {"ct_plugin.dataset": event.dataset, "ct_plugin.kind": "evaluate",
                "ct_plugin.evaluated_runs": ",".join(t.get("run_id", "") for t in trained),
                "ct_plugin.evaluated_run_dirs": ",".join(str(Path(d).resolve()) for d in event.run_dirs)}
        run_id = self._open(uri, f"evaluate-{event.dataset}", tags)
        self._log_params({"runs": event.labels, "reference": event.labels[0], "out": str(event.out)})
        self._log_metrics(evaluation_figures(event.tables, sep="."), step=0)
        for path in event.files:
            if Path(path).is_file():
                self.client.log_artifact(run_id, str(path), artifact_path="evaluation")
        write_tracking(Path(event.out), self.name, {"uri": uri, "run_id": run_id, "experiment": self.experiment})
        self.close()
