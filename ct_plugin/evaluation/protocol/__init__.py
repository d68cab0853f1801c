"""Evaluation protocols over trained runs: ``paper`` (the default) and ``strict``.

``paper`` is the paper's protocol exactly as the reference's code runs it (docs/method.md;
:mod:`ct_plugin.evaluation.protocol.paper`). ``strict`` is this project's earlier, stricter protocol,
described below: every counterfactual counts (valid or not), factual rows are paired across
models, X+ are training rows, IP is Euclidean and IP* uses a median-heuristic kernel.

For every run (the first one is the reference, normally the vanilla baseline):

1. **Main setting**: test-time counterfactuals with a post-hoc generator (ECCCo by default) at
   ``tau`` 0.95 and ``T`` 50, once per ``lambda_energy`` of the grid, for factuals drawn from the
   test split (with replacement) and targets drawn uniformly from the classes other than the
   model's prediction; metrics validity, IP, IP*, redundancy, mean steps, seconds per
   counterfactual.
2. **Protected setting**: the same draws, ``tau`` 0.5, the protected features immutable;
   metrics validity and cost (of valid counterfactuals).
3. **Bootstrap**: ``rounds`` independent draws of ``n_factuals`` factuals/targets (the same
   draws for every run, so differences are paired). A round's figure is the average over the
   ``lambda_energy`` grid. Reported: the mean over rounds, the standard error (standard deviation
   of the per-round figure), the percentage reduction of each run vs the reference, and whether
   the 99% percentile interval of the per-round paired difference excludes 0.
4. **Robust accuracy** on the test split under FGSM and PGD over an epsilon grid.
5. **Integrated gradients** of the target-class logit at test factuals (baseline: the
   training mean): share of attribution mass on the protected features (per pixel row for
   image data).

The whole protocol is seeded: the same runs and config give the same tables.

The code lives by idea: the settings in :mod:`~ct_plugin.evaluation.protocol.config`, what both
protocols share (the :class:`Evaluation` record, run checks, class draws, search settings, summary
rows) in :mod:`~ct_plugin.evaluation.protocol.common`, the ``strict`` protocol in
:mod:`~ct_plugin.evaluation.protocol.strict` and the ``paper`` protocol in
:mod:`~ct_plugin.evaluation.protocol.paper`. This package's face lists the public names and
dispatches (:func:`evaluate_runs`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ct_plugin.evaluation.protocol.common import (
    METRIC_SETTING,
    Evaluation,
    accepts_lambda_energy,
    build_posthoc,
    check_same_dataset,
    frozen_features,
    load_runs,
    run_labels,
    search_specs,
    summary_records,
)
from ct_plugin.evaluation.protocol.config import (
    MAIN,
    MAIN_MUTABILITY,
    PAPER_GENERATOR_OPTIONS,
    PAPER_PRESET_GENERATORS,
    PROTECTED,
    PROTOCOLS,
    TABLE_METRICS,
    ProtocolConfig,
    replace_config,
)
from ct_plugin.evaluation.protocol.paper import DRAW_VERSION, evaluate_paper
from ct_plugin.evaluation.protocol.strict import bootstrap_interval, evaluate_strict, per_round, search_paths, summarise
from ct_plugin.runs.load import Run
from ct_plugin.torch_utils import placed_on

if TYPE_CHECKING:
    import torch

__all__ = [
    "DRAW_VERSION",
    "MAIN",
    "MAIN_MUTABILITY",
    "METRIC_SETTING",
    "PAPER_GENERATOR_OPTIONS",
    "PAPER_PRESET_GENERATORS",
    "PROTECTED",
    "PROTOCOLS",
    "TABLE_METRICS",
    "Evaluation",
    "ProtocolConfig",
    "accepts_lambda_energy",
    "bootstrap_interval",
    "build_posthoc",
    "check_same_dataset",
    "evaluate_paper",
    "evaluate_runs",
    "evaluate_strict",
    "frozen_features",
    "load_runs",
    "per_round",
    "replace_config",
    "run_labels",
    "search_paths",
    "search_specs",
    "summarise",
    "summary_records",
]


def evaluate_runs(
    runs: Sequence[Run], config: ProtocolConfig | None = None, labels: Sequence[str] | None = None,
    progress: bool = False, device: str | torch.device = "auto",
) -> Evaluation:
    """Run the configured protocol (``paper`` by default) on loaded runs of one dataset; the first is the reference.

    ``device``: where models, data, searches and metrics live (``auto``: CUDA when torch sees one;
    each run's model is moved there for the evaluation and back afterwards). The random draws are
    made on the CPU whatever the device, so an evaluation's factuals and targets do not depend on
    it; its figures may differ in the last digits between devices (float arithmetic).
    """
    config = (config or ProtocolConfig()).validate()
    runs = list(runs)
    check_same_dataset(runs)
    labels = list(labels) if labels is not None else run_labels(runs)
    with placed_on([run.model for run in runs], device):  # each model goes back where it was
        if config.protocol == "paper":
            return evaluate_paper(runs, config, labels, progress, device=device)
        return evaluate_strict(runs, config, labels, device=device)
