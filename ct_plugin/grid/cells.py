"""What an experiment grid is: its file's tables, and the cells they expand into.

:func:`parse_grid` (or :func:`load_grid` for a TOML, YAML or JSON file) validates the ``[grid]``,
``[grid.params]``, ``[train]``, ``[datasets.NAME]`` and ``[evaluate]`` tables into a
:class:`GridConfig`; :meth:`GridConfig.cells` expands it into :class:`Cell` objects (one
complete TrainConfig dict each, vanilla cells deduplicated), each named by
:func:`make_cell_id`: readable values plus a hash of the complete settings. Running the cells
is :mod:`ct_plugin.grid.executors`' job, their rows and tables :mod:`ct_plugin.grid.results`'.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ct_plugin.config import TRAIN_SETTINGS, TrainConfig
from ct_plugin.errors import CTPluginError
from ct_plugin.plugins.registry import get_registry
from ct_plugin.settings.files import read_settings_file

#: settings that only matter when counterfactuals are searched (vanilla cells ignore them)
CT_ONLY_SETTINGS = frozenset(row.name for row in TRAIN_SETTINGS.where(ct_only=True))
#: keys of the optional [evaluate] table (see :func:`ct_plugin.grid.results.evaluate_model`)
EVALUATE_KEYS = frozenset({"enabled", "n_factuals", "epsilon", "seed", "max_samples"})


# ---------------------------------------------------------------- the grid
@dataclass(frozen=True)
class Cell:
    """One experiment of the grid: a complete TrainConfig dict plus what identifies it."""

    cell_id: str
    dataset: str
    strategy: str
    generator: str
    seed: int
    params: dict[str, Any]
    config: dict[str, Any]
    evaluate: dict[str, Any] = field(default_factory=dict)
    #: a saved DatasetSpec directory to train on instead of loading ``config["dataset"]`` by name
    spec_dir: str | None = None

    def row_keys(self) -> dict[str, Any]:
        """The identifying columns of this cell's row in the results table."""
        return {
            "cell": self.cell_id,
            "dataset": self.dataset,
            "strategy": self.strategy,
            "generator": self.generator,
            "seed": self.seed,
            "params": ", ".join(f"{k}={_short(v)}" for k, v in sorted(self.params.items())),
        }


@dataclass
class GridConfig:
    """A parsed grid file."""

    datasets: list[str]
    strategies: list[str]
    generators: list[str]
    seeds: list[int]
    params: dict[str, list[Any]]
    train: dict[str, Any]
    per_dataset: dict[str, dict[str, Any]]
    evaluate: dict[str, Any]
    name: str = "grid"

    def cells(self) -> list[Cell]:
        """All cells of the grid, in a fixed order (vanilla cells deduplicated)."""
        axes = sorted(self.params)
        seen: set[str] = set()
        cells: list[Cell] = []
        combos = itertools.product(
            self.datasets, self.strategies, self.generators,
            itertools.product(*(self.params[a] for a in axes)), self.seeds,
        )
        for dataset, strategy, generator, values, seed in combos:
            params = dict(zip(axes, values))
            vanilla = strategy == "vanilla"
            if vanilla:
                params = {k: v for k, v in params.items() if k not in CT_ONLY_SETTINGS}
            settings = {**self.train, **self.per_dataset.get(dataset, {}), **params}
            settings.update(dataset=dataset, strategy=strategy, seed=seed)
            if not vanilla:
                settings["generator"] = generator
            try:
                config = TrainConfig.from_dict(settings).validate().to_dict()
            except CTPluginError as exc:
                raise CTPluginError(f"grid cell {dataset}/{strategy}/{generator}/{params}/seed {seed}: {exc}") from exc
            if vanilla:  # one vanilla cell however many generators / CT-only values
                defaults = TrainConfig().to_dict()
                for key in CT_ONLY_SETTINGS:
                    config[key] = defaults[key]
            cell_id = make_cell_id(dataset, strategy, "none" if vanilla else generator, params, seed, config)
            if cell_id in seen:
                continue
            seen.add(cell_id)
            cells.append(Cell(cell_id, dataset, strategy, "none" if vanilla else generator, seed, params, config,
                              dict(self.evaluate)))
        return cells


def _short(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":")) if isinstance(value, dict | list) else str(value)


def make_cell_id(
    dataset: str, strategy: str, generator: str, params: dict[str, Any], seed: int, config: dict[str, Any]
) -> str:
    """Readable, filesystem-safe id: the identifying values plus a hash of the complete settings.

    The hash leaves out where the cell trains (``device`` counts as ``auto``): a run trained on a GPU
    is the same run on a CPU, and a re-run on another machine reuses it.
    """
    if "device" in config:
        config = {**config, "device": "auto"}
    digest = hashlib.sha1(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:8]
    parts = [dataset, strategy, generator] + [f"{k}{_short(v)}" for k, v in sorted(params.items())] + [f"s{seed}"]
    text = re.sub(r"[^A-Za-z0-9_.=+-]+", "_", "-".join(parts))[:100]
    return f"{text}-{digest}"


def _as_list(value: Any, name: str, kind: type | tuple[type, ...] = str) -> list[Any]:
    values = value if isinstance(value, list) else [value]
    if not values:
        raise CTPluginError(f"grid: {name} must not be empty")
    bad = [v for v in values if not isinstance(v, kind) or (isinstance(v, bool) and kind is not bool)]
    if bad:
        raise CTPluginError(f"grid: {name} has invalid value(s) {bad}")
    return values


def parse_grid(values: dict[str, Any]) -> GridConfig:
    """Validate the tables of a grid file (``[grid]``, ``[grid.params]``, ``[train]``, ``[datasets.X]``)."""
    if "grid" not in values or not isinstance(values["grid"], dict):
        raise CTPluginError("grid file needs a [grid] table (datasets, strategies, generators, seeds, params)")
    known_tables = {"grid", "train", "datasets", "evaluate"}
    unknown = sorted(set(values) - known_tables)
    if unknown:
        raise CTPluginError(f"grid file: unknown table(s) {unknown}; valid: {sorted(known_tables)}")
    grid = dict(values["grid"])
    known = {"name", "datasets", "strategies", "generators", "seeds", "params"}
    unknown = sorted(set(grid) - known)
    if unknown:
        raise CTPluginError(f"[grid]: unknown key(s) {unknown}; valid: {sorted(known)}")
    if "datasets" not in grid:
        raise CTPluginError("[grid] must list datasets, e.g. datasets = [\"moons\"]")
    params = grid.get("params", {})
    if not isinstance(params, dict):
        raise CTPluginError("[grid.params] must be a table of setting = [values]")
    # the config's fields and the weight of every registered plugin loss term (lambda_<term>)
    valid_keys = set(TrainConfig().to_dict()) | {term.weight_setting for term in get_registry().loss_terms()}
    reserved = {"dataset", "strategy", "generator", "seed"}
    for key, axis in params.items():
        if key in reserved:
            raise CTPluginError(f"[grid.params] {key!r}: use the [grid] list {key}s / {key}s = [...] instead")
        if key not in valid_keys:
            raise CTPluginError(f"[grid.params] unknown setting {key!r}; valid: {', '.join(sorted(valid_keys))}")
        if not isinstance(axis, list) or not axis:
            raise CTPluginError(f"[grid.params] {key} must be a non-empty list of values")
    train = _absolute_data_dir(dict(values.get("train", {})))
    per_dataset = {k: _absolute_data_dir(dict(v)) if isinstance(v, dict) else v
                   for k, v in values.get("datasets", {}).items()}
    for where, table in [("[train]", train)] + [(f"[datasets.{k}]", v) for k, v in per_dataset.items()]:
        if not isinstance(table, dict):
            raise CTPluginError(f"{where} must be a table of settings")
        bad = sorted(set(table) - valid_keys)
        if bad:
            raise CTPluginError(f"{where}: unknown setting(s) {bad}; valid: {', '.join(sorted(valid_keys))}")
    evaluate = values.get("evaluate", {})
    if not isinstance(evaluate, dict):
        raise CTPluginError("[evaluate] must be a table (enabled, n_factuals, epsilon)")
    bad = sorted(set(evaluate) - EVALUATE_KEYS)
    if bad:
        raise CTPluginError(f"[evaluate]: unknown key(s) {bad}; valid: {', '.join(sorted(EVALUATE_KEYS))}")
    config = GridConfig(
        name=str(grid.get("name", "grid")),
        datasets=_as_list(grid["datasets"], "datasets"),
        strategies=_as_list(grid.get("strategies", ["ct"]), "strategies"),
        generators=_as_list(grid.get("generators", ["eccco"]), "generators"),
        seeds=_as_list(grid.get("seeds", [0]), "seeds", int),
        params={k: list(v) for k, v in params.items()},
        train=train,
        per_dataset=per_dataset,
        evaluate=dict(evaluate),
    )
    _check_names(config)
    return config


def _absolute_data_dir(table: dict[str, Any]) -> dict[str, Any]:
    """A relative ``data_dir`` is taken from the current folder (worker processes may start elsewhere)."""
    if isinstance(table.get("data_dir"), str) and not os.path.isabs(table["data_dir"]):
        table["data_dir"] = str(Path(table["data_dir"]).resolve())
    return table


def _check_names(config: GridConfig) -> None:
    registry = get_registry()
    for kind, names in (("dataset", config.datasets), ("strategy", config.strategies)):
        for name in names:
            registry.get(kind, name)  # raises UnknownNameError listing the valid names
    if any(s != "vanilla" for s in config.strategies):
        for name in config.generators:
            registry.get("generator", name)


def load_grid(path: str | Path) -> GridConfig:
    """Read and validate a grid file (TOML, YAML or JSON)."""
    return parse_grid(read_settings_file(path, "grid file"))
