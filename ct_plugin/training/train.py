""":func:`train`: wires a dataset, a model, a strategy and a generator into counterfactual training.

Per epoch, the strategy decides which terms are on. When counterfactual terms are on,
``nce`` factuals are drawn from the training set, their targets drawn uniformly from the
classes other than the model's prediction, and one observed sample x+ of each target class
drawn; the generator searches their counterfactuals (one batched search per epoch, or per
batch with ``search_every="batch"``), and the results are spread over the epoch's batches.

The pieces: :mod:`ct_plugin.training.setup` resolves the config, the dataset spec, the model and
the generator (and the settings of a run to resume); :mod:`ct_plugin.training.loop` holds the
:class:`~ct_plugin.training.loop.Trainer` that runs the epochs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ct_plugin.config import TrainConfig
from ct_plugin.data.spec import DatasetSpec
from ct_plugin.errors import CTPluginError
from ct_plugin.runs.checkpoint import run_lock
from ct_plugin.runs.files import clear_run_dir
from ct_plugin.threads import thread_scope
from ct_plugin.training.loop import Trainer
from ct_plugin.training.setup import (
    check_terms_fit,
    resolve_config,
    resolve_model,
    resolve_spec,
    resumed_settings,
    validate_spec,
)


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    model: torch.nn.Module
    log: list[dict[str, Any]]
    spec: DatasetSpec
    config: TrainConfig
    run_dir: Path | None


def train(
    data: DatasetSpec | str | None = None,
    model: torch.nn.Module | str | None = None,
    *,
    strategy: str | None = None,
    generator: str | None = None,
    config: TrainConfig | dict[str, Any] | None = None,
    out: str | Path | None = None,
    resume: bool | str = False,
    quiet: bool = False,
    threads: int | None = None,
    overwrite: bool = False,
    **overrides: Any,
) -> TrainResult:
    """Train a classifier with a registered strategy (default: full counterfactual training).

    Args:
        data: a :class:`DatasetSpec` (e.g. from :func:`ct_plugin.from_dataframe`) or a registered
            dataset name; default ``config.dataset``.
        model: any ``torch.nn.Module`` mapping encoded features to K logits, or a registered
            architecture name; default ``config.model`` (an MLP with one hidden layer of 32).
        strategy: ``vanilla``, ``ct``, ``energy``, ``adversarial`` or a plugin's.
        generator: in-training counterfactual generator (``eccco``, ``generic``, ``revise`` or a plugin's).
        config: a :class:`TrainConfig` or dict; keyword ``overrides`` (e.g. ``epochs=20``) win.
        out: run directory to write (config, dataset spec, weights, per-epoch log, checkpoints).
        resume: continue the run in ``out`` from its last checkpoint (``"previous"``: from the one
            before, ``checkpoint.prev.pt``). Its stored config is used; keyword ``overrides`` may change
            optimisation and CT settings (e.g. a smaller ``lr`` after a divergence), not its data or model.
            A run with finished epochs but no checkpoint left is refused; ``"restart"`` trains it again
            from its first epoch with its stored settings. With nothing stored yet (killed before its
            first file), ``config`` must give the run's settings.
        quiet: no progress bar.
        threads: torch CPU threads for this run (restored afterwards); default: the count you set
            (``OMP_NUM_THREADS``, ``torch.set_num_threads``), else one decided from the model's size
            and the batch and search sizes (:mod:`ct_plugin.threads`).
        overwrite: replace a run already in ``out`` instead of refusing.

    Returns:
        :class:`TrainResult` with the trained model (train mode off), the per-epoch log, the
        spec and the resolved config.
    """
    if resume not in (True, False, "previous", "restart"):
        raise CTPluginError(f"resume must be True, False, 'previous' or 'restart', got {resume!r}")
    out_path = Path(out) if out is not None else None
    if resume:
        if out_path is None:
            raise CTPluginError("resume needs the run directory (out=...)")
        config, overrides, data = resumed_settings(out_path, config, data, strategy, generator, overrides)
        strategy, generator = overrides.pop("strategy", None), overrides.pop("generator", None)
    cfg = resolve_config(config, strategy=strategy, generator=generator, **overrides)
    if isinstance(data, DatasetSpec):
        cfg = cfg.replace(dataset=data.name)
    elif isinstance(data, str):
        cfg = cfg.replace(dataset=data)
    if isinstance(model, str):  # a registered architecture by name: the run's config.json names it too
        cfg = cfg.replace(model=model)
    spec = resolve_spec(data, cfg)
    validate_spec(spec)
    check_terms_fit(spec, cfg)
    module, description = resolve_model(model, spec, cfg)
    if not resume and out_path is not None and (out_path / "checkpoint.pt").is_file():
        if not overwrite:
            raise CTPluginError(
                f"{out_path} already holds a run; pass resume=True (--resume) to continue it, "
                "overwrite=True (--overwrite) to replace it, or choose another --out"
            )
        clear_run_dir(out_path)
    rows = max(cfg.batch_size, cfg.nce if cfg.strategy != "vanilla" else 0)
    with thread_scope(threads, module, rows), run_lock(out_path):
        trainer = Trainer(spec, module, description, cfg, out_path, quiet)
        if resume:
            trainer.restore(previous=resume == "previous", restart=resume == "restart")
        trainer.write_safely("the run's files", trainer.write_run_files)
        log = trainer.run()
    trainer.model.eval()
    return TrainResult(trainer.model, log, spec, cfg, out_path)
