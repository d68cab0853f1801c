"""TensorBoard tracking through the lifecycle hooks (extra ``ct-plugin[tensorboard]``).

Writes one event file per training run, by ``torch.utils.tensorboard.SummaryWriter``:

* every numeric field of every epoch record as the scalar ``train/<field>`` at ``step = epoch``;
* the resolved config as the text ``config`` (a JSON block) at step 0;
* the final model as its graph (``add_graph``) and the text ``model`` naming the state-dict
  file and the architecture;
* for ``ct-plugin evaluate``: the headline figures as scalars ``evaluation/<run>/<metric>`` and
  each table as Markdown text ``evaluation/<table>``, in the evaluation's own log directory.

Log directory: ``uri`` if given, else ``<run dir>/tensorboard`` (``./runs/tensorboard`` for a run
without a directory, ``<out>/tensorboard`` for an evaluation). Open it with ``tensorboard --logdir ...``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch

from ct_plugin.errors import MissingDependencyError
from ct_plugin.evaluation.report import markdown_table
from ct_plugin.plugins.events import EpochEvent, EvaluationEvent, TrainEndEvent, TrainStartEvent
from ct_plugin.plugins.hookspecs import hookimpl
from ct_plugin.tracking.base import evaluation_figures, numeric_items, write_tracking

INSTALL = "pip install 'ct-plugin[tensorboard]'"


def _summary_writer() -> Any:
    try:
        import tensorboard  # noqa: F401  (torch's writer needs it; import it first for a clear message)
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise MissingDependencyError("TensorBoard (--track tensorboard)", INSTALL) from exc
    return SummaryWriter


def _markdown(frame: Any) -> str:
    return markdown_table(frame)


class TensorBoardTracker:
    """A plugin object writing training and evaluation runs as TensorBoard event files."""

    name = "tensorboard"

    def __init__(self, uri: str | Path | None = None, experiment: str = "ct-plugin"):
        self.SummaryWriter = _summary_writer()
        self.logdir = Path(uri) if uri is not None else None
        self.experiment = experiment
        self.writer: Any = None
        self.logdirs: list[Path] = []

    def _open(self, logdir: Path) -> None:
        logdir.mkdir(parents=True, exist_ok=True)
        self.writer = self.SummaryWriter(log_dir=str(logdir))
        self.logdirs.append(logdir)

    def close(self, status: str = "FINISHED") -> None:
        """Flush and close the event file."""
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()
        self.writer = None

    @hookimpl
    def ct_plugin_train_start(self, event: TrainStartEvent) -> None:
        logdir = self.logdir or (Path(event.run_dir) if event.run_dir is not None else Path("runs")) / "tensorboard"
        self._open(logdir)
        text = json.dumps(event.config.to_dict(), indent=2)
        self.writer.add_text("config", "```json\n" + text + "\n```", global_step=event.start_epoch)
        write_tracking(event.run_dir, self.name, {"logdir": str(logdir.resolve())})

    @hookimpl
    def ct_plugin_epoch_end(self, event: EpochEvent) -> None:
        if self.writer is None:
            return
        for key, value in numeric_items(event.record).items():
            self.writer.add_scalar(f"train/{key}", value, global_step=event.epoch + 1)

    @hookimpl
    def ct_plugin_train_end(self, event: TrainEndEvent) -> None:
        if self.writer is None:
            return
        model = event.model
        was_training = model.training
        model.eval()
        try:
            device = next(iter(model.parameters())).device if any(True for _ in model.parameters()) else "cpu"
            with warnings.catch_warnings():
                # add_graph traces with torch.jit.trace, which torch >= 2.10 marks deprecated
                warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.jit")
                self.writer.add_graph(model, torch.zeros(1, event.spec.n_features, device=device))
        finally:
            model.train(was_training)
        where = str(Path(event.run_dir).resolve() / "model.pt") if event.run_dir is not None else "(no run dir)"
        self.writer.add_text(
            "model", f"state dict: `{where}`; {type(model).__name__} with "
            f"{sum(p.numel() for p in model.parameters())} parameters; {len(event.log)} epochs",
            global_step=len(event.log),
        )
        self.close()

    @hookimpl
    def ct_plugin_evaluation_end(self, event: EvaluationEvent) -> None:
        self._open(self.logdir or Path(event.out) / "tensorboard")
        for key, value in evaluation_figures(event.tables).items():
            self.writer.add_scalar(f"evaluation/{key}", value, global_step=0)
        for name, table in event.tables.items():
            if table is not None and len(table):
                self.writer.add_text(f"evaluation/{name}", _markdown(table), global_step=0)
        write_tracking(Path(event.out), self.name, {"logdir": str(self.logdirs[-1].resolve())})
        self.close()
