"""``ct_plugin.tune``: the paper's per-table tuning of CT, on any dataset (a name or a DatasetSpec).

1. A validation split is carved out of the training rows (stratified, seeded,
   ``min(5000, round(0.2 n_train))`` rows); the test split is never read.
2. A vanilla baseline and one CT run per grid point (default tau {0.5, 0.75, 0.9} x lambda_reg
   {0.1, 0.25, 0.5}), each once per training seed (default 2, :mod:`~ct_plugin.tuning.seeds`),
   train on the remaining training rows, through the grid machinery
   (:mod:`ct_plugin.grid`: local processes or Ray, one run directory per cell, one thread per
   worker). A re-run skips finished cells and resumes interrupted ones from their checkpoint.
3. Each CT run is compared with the baseline by ``evaluate_runs`` on factuals drawn from the
   validation rows (a fast protocol setting, :data:`~ct_plugin.tuning.judging.TUNE_PROTOCOL`;
   results are cached per cell, keyed by the protocol settings); each seed's CT run against the
   same seed's baseline, the criteria averaged over the seeds.
4. :mod:`ct_plugin.tuning.selection` picks the configuration. While none passes, rescue stages
   train more: stage 2 the least-violating configurations with weaker divergence and adversarial
   weights (:func:`~ct_plugin.tuning.rescue.weaker_terms_points`), stage 3 lambda_reg below the
   grid's smallest value (:func:`~ct_plugin.tuning.rescue.rescue_points`; last, as a weaker ridge
   makes recourse costlier); the rule picks from all stages.
   ``OUT/chosen.json`` is a config file
   for ``ct-plugin train --config``, ``OUT/tune.csv``/``tune.md`` the table and ``OUT/tune.png``
   the figure. When no configuration passes and lowers validation IP significantly (the
   protocol's interval), ``chosen.json`` trains vanilla (CT is not recommended there;
   ``always_ct`` writes the best CT configuration instead).
5. When the vanilla baseline itself cannot be measured (accuracy no better than the majority
   class, validity below ``rule.min_baseline_validity`` or no valid counterfactuals: too few
   epochs), nothing is recommended: no rescue stage runs, the tables and the figure say why, and
   no ``chosen.json`` is written (a stale one from an earlier run in ``out`` is removed), so that
   ``ct-plugin train --config OUT/chosen.json`` cannot train a choice that was never made.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ct_plugin.atomic import atomic_write
from ct_plugin.config import TrainConfig
from ct_plugin.data.load import load_dataset
from ct_plugin.data.spec import DatasetSpec
from ct_plugin.errors import CTPluginError
from ct_plugin.grid import CT_ONLY_SETTINGS, Cell, adopt_finished_cells, make_cell_id, read_result, run_cells
from ct_plugin.jobs import folder_lock
from ct_plugin.plugins.registry import get_registry
from ct_plugin.progress import progress_bar
from ct_plugin.torch_utils import resolve_device
from ct_plugin.training.setup import build_generator, check_term_weights
from ct_plugin.tuning import report
from ct_plugin.tuning.axes import grid_points, overrides_of, validate_grid
from ct_plugin.tuning.criteria import Config, CorrectRows, criteria_table, validation_accuracy, validity_searches
from ct_plugin.tuning.judging import evaluate_cells, protocol_config
from ct_plugin.tuning.rescue import fill_axes, rescue_stages
from ct_plugin.tuning.result import TuneResult
from ct_plugin.tuning.seeds import DEFAULT_TUNE_SEEDS, mean_of, seed_list
from ct_plugin.tuning.selection import (
    SelectionRule,
    apply_rule,
    baseline_problems,
    choose,
    resolution_warning,
    unmeasured,
)
from ct_plugin.tuning.split import spec_digest, validation_split

#: settings tune sets itself (not accepted as training options)
RESERVED = frozenset({"dataset", "strategy", "init_from"})


# ---------------------------------------------------------------- preparation
def _resolve_data(
    data: DatasetSpec | str, data_dir: str | None, dataset_options: Mapping[str, Any], seed: int
) -> tuple[DatasetSpec, dict[str, Any]]:
    """The full spec and the TrainConfig data settings that rebuild it by name (if registered)."""
    if isinstance(data, DatasetSpec):
        return data, {"dataset": data.name}
    if not isinstance(data, str):
        raise CTPluginError(f"tune expects a dataset name or a DatasetSpec, got {type(data).__name__}")
    if data_dir is not None:
        data_dir = str(Path(data_dir).resolve())
    spec = load_dataset(data, data_dir=data_dir, seed=seed, **dict(dataset_options))
    return spec, {"dataset": data, "data_dir": data_dir, "dataset_options": dict(dataset_options)}


def _base_config(train_options: Mapping[str, Any], data_settings: Mapping[str, Any]) -> TrainConfig:
    reserved = sorted(set(train_options) & RESERVED)
    if reserved:
        raise CTPluginError(f"tune sets {reserved} itself; do not pass them as training options")
    known = {f.name for f in dataclasses.fields(TrainConfig)} | {t.weight_setting for t in get_registry().loss_terms()}
    unknown = sorted(set(train_options) - known)
    if unknown:
        raise CTPluginError(f"unknown training option(s) {unknown}; valid: {', '.join(sorted(known - RESERVED))}")
    config = TrainConfig.from_dict({**train_options, **data_settings, "strategy": "ct"}).validate()
    check_term_weights(config)
    return config


def _check_generator(config: TrainConfig) -> None:
    """Fail before any training on an unknown generator or option name."""
    build_generator(config.generator, config.generator_options)


def _cells(
    base: TrainConfig, points: list[dict[str, Any]], spec: DatasetSpec, spec_dir: Path, seeds: list[int],
    device: str = "auto",
) -> tuple[list[Cell], list[Config]]:
    """The vanilla cells and each grid point's CT cells, one per seed, on the saved validation spec and ``device``."""
    digest = spec_digest(spec)
    cell_config = base.replace(dataset=spec.name, data_dir=None, dataset_options={})
    defaults = TrainConfig().to_dict()

    def cell(strategy: str, generator: str, params: dict[str, Any], config: dict[str, Any], seed: int) -> Cell:
        config = {**config, "seed": seed, "device": device}
        cell_id = make_cell_id(spec.name, strategy, generator, params, seed, {**config, "_data": digest})
        return Cell(cell_id, spec.name, strategy, generator, seed, params, config, {"enabled": False},
                    str(spec_dir.resolve()))

    vanilla = cell_config.replace(strategy="vanilla").to_dict()
    vanilla.update({k: defaults[k] for k in CT_ONLY_SETTINGS})  # the baseline ignores them
    configs = []
    for point in points:
        config = cell_config.replace(**overrides_of(point, base.generator_options)).validate()
        _check_generator(config)
        configs.append((point, [cell(config.strategy, config.generator, point, config.to_dict(), s) for s in seeds]))
    return [cell("vanilla", "none", {}, vanilla, s) for s in seeds], configs


def _save_validation_spec(spec: DatasetSpec, directory: Path) -> None:
    marker = directory / "digest.txt"
    digest = spec_digest(spec)
    if marker.is_file() and marker.read_text().strip() == digest:
        return
    spec.save(directory)
    atomic_write(marker, digest + "\n")


# ---------------------------------------------------------------- training
def _train_cells(
    cells: Sequence[Cell], out: Path, executor: str, workers: int | None, address: str | None, progress: bool,
    reuse_from: Sequence[str | Path] = (),
) -> dict[str, dict[str, Any]]:
    adopt_finished_cells(cells, out, reuse_from)
    done = {c.cell_id: row for c in cells if (row := read_result(out, c)) is not None}
    todo = [c for c in cells if c.cell_id not in done]
    bar = progress_bar(len(cells), "tune: training", initial=len(done), quiet=not progress, unit="run")

    def tick(row: dict[str, Any], i: int, n: int) -> None:
        bar.update(1)
        bar.set_postfix_str(f"{row.get('cell', '')[:40]}: {row.get('status')}")

    try:
        rows = run_cells(todo, out, executor, workers, address, tick)
    finally:
        bar.close()
    return {**done, **{row["cell"]: row for row in rows}}


def tune(
    data: DatasetSpec | str,
    *,
    out: str | Path,
    grid: Mapping[str, Sequence[Any]] | None = None,
    executor: str = "local",
    workers: int | None = None,
    address: str | None = None,
    validation_size: int | None = None,
    validation_seed: int = 0,
    protocol: Mapping[str, Any] | None = None,
    rule: SelectionRule | None = None,
    data_dir: str | Path | None = None,
    dataset_options: Mapping[str, Any] | None = None,
    progress: bool = True,
    rescue: bool = True,
    always_ct: bool = False,
    seeds: int = DEFAULT_TUNE_SEEDS,
    device: str = "auto",
    reuse_cells_from: Sequence[str | Path] = (),
    **train_options: Any,
) -> TuneResult:
    """Tune CT's hyperparameters on a validation split carved from the training rows (the paper's way).

    Args:
        data: a registered dataset name or a :class:`DatasetSpec` (e.g. from :func:`ct_plugin.from_dataframe`).
        out: output folder; a re-run with the same settings reuses finished cells.
        grid: axis -> values; default ``{"tau": [0.5, 0.75, 0.9], "lambda_reg": [0.1, 0.25, 0.5]}``.
            Axes: tau, lambda_reg, lambda_div, lambda_adv, epsilon, burnin, nce, max_steps, and the
            generator options step_size, lambda_energy, lambda_cost.
        executor, workers, address: how cells run (:mod:`ct_plugin.grid`): ``local`` with ``workers``
            processes (default: the cores this process may use, at most one per cell; one on a GPU), or ``ray``
            (``address`` joins a cluster). Each cell trains with one thread.
        validation_size, validation_seed: the carve (default ``min(5000, round(0.2 n_train))`` rows, seed 0).
        protocol: ``ProtocolConfig`` settings of the validation evaluation, over the fast defaults
            (4 rounds of 100 factuals for each lambda_energy in {0.1, 0.5, 1, 5, 10},
            tau 0.95, T 50).
        rule: thresholds of the selection rule (default: 1 accuracy point, 50% maturity over the
            last 10 epochs, 5 validity points; a baseline validity of at least 10%).
        data_dir, dataset_options: how a named dataset is loaded (recorded in the chosen config).
        progress: progress bars on a terminal (False: silent; see :mod:`ct_plugin.progress`).
        rescue: while no configuration passes the rule, train rescue stages and choose from all:
            stage 2 scales lambda_div and lambda_adv by 1/5 and 1/25 at the two least-violating
            configurations, stage 3 sets lambda_reg to half and a tenth of the grid's smallest (at the
            tau values that matured); the table's ``stage`` column says where a row belongs.
        device: where cells train and the validation evaluation runs (``auto``: CUDA when torch sees one);
            not part of a cell's id (cells trained elsewhere are reused), nor of ``chosen.json``.
        seeds: training seeds per configuration and for vanilla (``seed``, ``seed + 1``, ...);
            every criterion is the mean over them, each seed's CT run judged against the same seed's
            vanilla run (default 2: with one, the 1-point accuracy check is mostly seed noise).
        reuse_cells_from: other tune folders: a cell they have finished with the same id (the same
            settings, seed and validation split) is copied instead of trained (``tune --methods``
            passes its methods' folders, so the vanilla baseline trains once for all of them).
        always_ct: write the best CT configuration into ``chosen.json`` even when tune recommends
            vanilla (no configuration passes the rule and lowers validation IP significantly); by
            default ``chosen.json`` then trains vanilla and names the best CT configuration in its
            metadata. Not when nothing is recommended (the baseline could not be measured): then no
            ``chosen.json`` is written at all.
        **train_options: fixed TrainConfig settings of every training, e.g. ``epochs=100,
            batch_size=1000, nce=5000, seed=0, max_steps=30, generator="eccco",
            generator_options={"lambda_energy": 5.0}``.

    Raises:
        CTPluginError: bad grid values, unknown option names, a table too small to carve, or a
            failed vanilla baseline.
    """
    start = time.perf_counter()
    rule = (rule or SelectionRule()).validate()
    device = str(train_options.pop("device", device))  # where, not what: kept out of the chosen config
    resolve_device(device)  # a clear error before any work
    points = grid_points(checked := validate_grid(grid))
    axes = list(checked)
    protocol_cfg = protocol_config(protocol)
    if workers is not None and workers < 1:
        raise CTPluginError(f"workers must be at least 1, got {workers}")
    clash = sorted(set(train_options) & set(axes))
    if clash:
        raise CTPluginError(f"{clash} are tuning axes; give a single-value grid axis to fix one")
    seed = int(train_options.get("seed", 0))
    training_seeds = seed_list(seed, seeds)
    spec, data_settings = _resolve_data(data, None if data_dir is None else str(data_dir),
                                        dataset_options or {}, seed)
    base = _base_config(train_options, data_settings)
    carved = validation_split(spec, validation_size, validation_seed)
    notes = [w for w in (resolution_warning(len(carved.y_test), rule),) if w]
    majority = float(np.bincount(np.asarray(carved.y_test, dtype=np.int64)).max() / len(carved.y_test))
    out = Path(out)
    with folder_lock(out, "tuning into"):  # two tune processes on one folder would share its cells
        spec_dir = out / "validation_spec"
        _save_validation_spec(carved, spec_dir)
        vanillas, ct_cells = _cells(base, points, carved, spec_dir, training_seeds, device)
        for note in notes:  # once the settings are known to be good, before the training
            warnings.warn(f"tune on {spec.name}: {note}", RuntimeWarning, stacklevel=2)

        rows = _train_cells([*vanillas, *(c for _, cs in ct_cells for c in cs)], out, executor, workers, address,
                            progress, reuse_cells_from)
        for vanilla in vanillas:
            if rows[vanilla.cell_id].get("status") != "ok":
                error = rows[vanilla.cell_id].get("error")
                raise CTPluginError(
                    f"the vanilla baseline (seed {vanilla.seed}) failed, nothing to compare with: {error}"
                )
        figures: dict[str, dict[str, float]] = {}
        correct, searches = CorrectRows(out, carved), validity_searches(protocol_cfg, carved)

        def judge(configs: list[Config]) -> tuple[pd.DataFrame, pd.DataFrame, Any]:
            for i, vanilla in enumerate(vanillas):  # each seed's CT runs against the same seed's baseline
                todo = [cs[i] for _, cs in configs
                        if rows.get(cs[i].cell_id, {}).get("status") == "ok" and cs[i].cell_id not in figures]
                figures.update(evaluate_cells(vanilla, todo, out, protocol_cfg, progress,
                                              need_cost=rule.max_cost_increase is not None, device=device))
            table = criteria_table(configs, vanillas, rows, figures, reference_of(figures), out,
                                   rule.maturity_epochs, correct, searches)
            ok = table[table.status == "ok"]
            if ok.empty:
                raise CTPluginError(f"every CT configuration failed to train; see {out / 'cells'}: "
                                    f"{table.reasons.iloc[0] if 'reasons' in table else ''}")
            judged = apply_rule(ok, rule)
            return table, judged, choose(judged, protocol_cfg.confidence)

        def baseline_per_seed() -> list[dict[str, Any]]:
            """Each seed's vanilla figures on the validation split (validity and IP from any CT run's evaluation)."""
            per_seed = []
            for i, vanilla in enumerate(vanillas):
                seen = next((figures[cs[i].cell_id] for _, cs in ct_cells if cs[i].cell_id in figures), None)
                accuracy = validation_accuracy(out / "cells" / vanilla.cell_id)
                record: dict[str, Any] = {"seed": vanilla.seed, "accuracy": accuracy}
                if seen is not None:
                    record.update(validity=seen["validity_reference"], ip=seen["ip_reference"])
                per_seed.append(record)
            return per_seed

        def reference_of(figures: Mapping[str, dict[str, float]]) -> dict[str, float]:
            """Vanilla's criteria, the mean over its seeds (validity and IP from any CT run's evaluation of a seed)."""
            per_seed = [next((figures[cs[i].cell_id] for _, cs in ct_cells if cs[i].cell_id in figures), None)
                        for i in range(len(vanillas))]
            return {
                "accuracy": mean_of([validation_accuracy(out / "cells" / v.cell_id) for v in vanillas]),
                "validity": mean_of([f["validity_reference"] for f in per_seed if f is not None]),
                "ip": mean_of([f["ip_reference"] for f in per_seed if f is not None]),
            }

        stage = {cs[0].cell_id: 1 for _, cs in ct_cells}
        table, judged, choice = judge(ct_cells)
        problems = baseline_problems(baseline_per_seed(), majority, rule)
        if problems:  # every comparison with the baseline is meaningless: no rescue, no recommendation
            choice = unmeasured(choice.index, choice.passed, problems)
        rescues: list[dict[str, Any]] = []
        shown_axes = list(axes)
        stages = rescue_stages(checked, base) if rescue and not problems else []
        for number, (change, propose) in enumerate(stages, start=2):
            if choice.passed:
                break
            extra = propose(judged, shown_axes)
            _, rescue_cells = _cells(base, extra, carved, spec_dir, training_seeds)
            rescue_cells = [(p, cs) for p, cs in rescue_cells if cs[0].cell_id not in stage]
            if not rescue_cells:
                continue
            rows.update(_train_cells([c for _, cs in rescue_cells for c in cs], out, executor, workers, address,
                                     progress, reuse_cells_from))
            stage.update({cs[0].cell_id: number for _, cs in rescue_cells})
            rescues.append({"stage": number, "change": change, "points": [p for p, _ in rescue_cells]})
            shown_axes = list(dict.fromkeys([*shown_axes, *(a for p, _ in rescue_cells for a in p)]))
            ct_cells = [*ct_cells, *rescue_cells]
            table, judged, choice = judge(ct_cells)
        reference = reference_of(figures)
        chosen_cell = judged.iloc[choice.index]["cell"]
        failed = table[table.status != "ok"].assign(**{"pass": False})
        parts = [judged, failed] if len(failed) else [judged]
        order = [cs[0].cell_id for _, cs in ct_cells]
        table = pd.concat(parts).set_index("cell").loc[order].reset_index()
        table["pass"] = table["pass"].astype(bool)
        table["chosen"] = table.cell == chosen_cell
        table["stage"] = [stage[c] for c in table.cell]
        table = report.order_columns(fill_axes(table, shown_axes, base), shown_axes)

        point = next(p for p, cs in ct_cells if cs[0].cell_id == chosen_cell)
        overrides = overrides_of(point, base.generator_options)
        ct_config = base.replace(**overrides).validate()
        recommendation = choice.recommendation
        chosen_config: TrainConfig | None
        if recommendation == "none":
            chosen_config = None
        elif choice.recommend_ct or always_ct:
            chosen_config = ct_config
        else:
            chosen_config = base.replace(strategy="vanilla").validate()
        paths = report.write_outputs(out, table, shown_axes, spec, base, chosen_config, overrides, choice, rule,
                                     protocol_cfg, carved, reference, checked, rescues=rescues,
                                     ct_config=ct_config, seeds=training_seeds, notes=notes)
        return TuneResult(
            dataset=spec.name, overrides=overrides, config=chosen_config, ct_config=ct_config,
            recommendation=recommendation, passed=choice.passed,
            fallback=choice.fallback, message=choice.message, table=table, reference=reference,
            paths={**paths, "validation_spec": spec_dir, "cells": out / "cells"},
            seconds=time.perf_counter() - start, warnings=notes,
        )

