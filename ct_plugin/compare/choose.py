"""``ct-plugin tune --methods``: tune each method of the comparison on one table, then pick one.

Each method is tuned as ``compare`` tunes it (its own grid of at most 9 configurations, CT's rescue
stages for the CT family, maturity judged only for methods that search during training), each into a
folder of its own under ``out``; then :func:`~ct_plugin.compare.pick.pick_method` picks on the
validation figures, judged on plausibility and cost. ``out/chosen.json`` trains the pick (vanilla when
no method is picked) and ``out/pick.md`` says which method was picked and why. The budget is the sum
of the methods' tuning budgets, less the vanilla baseline, trained once and copied into the other
methods' folders; finished cells are reused on a re-run, as ``tune``'s are.
"""

from __future__ import annotations

import dataclasses
import json
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ct_plugin.atomic import atomic_write, atomic_write_json
from ct_plugin.compare.methods import Method, resolve_methods
from ct_plugin.compare.pick import Pick, pick_method
from ct_plugin.config import TrainConfig
from ct_plugin.data.load import load_dataset
from ct_plugin.data.spec import DatasetSpec
from ct_plugin.errors import CTPluginError
from ct_plugin.evaluation.report import fmt, fmt_duration, markdown_table
from ct_plugin.grid.cells import CT_ONLY_SETTINGS
from ct_plugin.reproduce.plan import TABLE_C1
from ct_plugin.tuning.result import TuneResult
from ct_plugin.tuning.run import tune
from ct_plugin.tuning.selection import SelectionRule

PICK_FILE = "pick.md"
"""The pick's report in ``out``, beside ``chosen.json`` and one tune folder per method."""


@dataclass
class MethodsResult:
    """What :func:`tune_methods` returns.

    Attributes:
        pick: the method picked (``pick.method`` None: vanilla) and why.
        outcomes: each tuned method's :class:`~ct_plugin.tuning.result.TuneResult`, by method name.
        skipped: the methods not tuned on this table and why (a method that aims at a desired class,
            on a table that names none).
        config: what ``chosen.json`` trains (None when the vanilla baseline could not be measured).
        paths: ``config`` (chosen.json, when written) and ``markdown`` (pick.md).
        seconds: wall time of the call.
    """

    pick: Pick
    outcomes: dict[str, TuneResult]
    skipped: dict[str, str] = field(default_factory=dict)
    config: TrainConfig | None = None
    paths: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0


def _fixed(method: Method, dataset: str, train_options: Mapping[str, Any]) -> dict[str, Any]:
    """The method's fixed settings; ``lambda_reg="table"``: Table C.1's value, else the training setting."""
    row = TABLE_C1.get(dataset) or {"lambda_reg": train_options.get("lambda_reg", TrainConfig().lambda_reg)}
    return {k: v for k, v in method.settings(row).items() if k not in train_options}


def _vanilla(result: TuneResult) -> TrainConfig:
    """The vanilla baseline's config of a tune: its chosen config where it recommends vanilla, else rebuilt."""
    if result.config is not None and result.config.strategy == "vanilla":
        return result.config
    defaults = TrainConfig().to_dict()
    return result.ct_config.replace(strategy="vanilla", **{k: defaults[k] for k in CT_ONLY_SETTINGS}).validate()


def tune_methods(
    data: DatasetSpec | str, methods: Sequence[Method | str], *, out: str | Path, rule: SelectionRule | None = None,
    rescue: bool = True, data_dir: str | Path | None = None, dataset_options: Mapping[str, Any] | None = None,
    **tune_options: Any,
) -> MethodsResult:
    """Tune every method of ``methods`` on ``data``'s validation split, pick one, write ``chosen.json``.

    Args:
        data: a registered dataset name (``"csv"`` with ``dataset_options`` for a CSV) or a spec.
        methods: the methods to tune, by name or as :class:`~ct_plugin.compare.methods.Method`
            (:data:`~ct_plugin.compare.methods.METHODS`); names are resolved as ``compare`` does, ``ct``
            always among them.
        out: the folder: one sub-folder per method, ``chosen.json`` and ``pick.md``.
        rule: ``tune``'s selection rule for every method (maturity not judged for methods that do not
            search during training).
        rescue: False: no rescue stages for any method (default: the CT family's, as ``compare``).
        data_dir, dataset_options, tune_options: as :func:`ct_plugin.tune` takes them (training
            settings, ``workers``, ``seeds``, ``progress``, ...); an axis of a method's grid is not a
            fixed setting, and ``grid`` is refused (every method brings its own).
    """
    if "grid" in tune_options:
        raise CTPluginError("tune --methods tunes each method on its own grid; drop the --grid-* options")
    if not methods:
        raise CTPluginError("tune --methods needs at least one method")
    if all(isinstance(m, str) for m in methods):
        methods = resolve_methods([str(m) for m in methods], "tune_methods")
    elif not all(isinstance(m, Method) for m in methods):
        raise CTPluginError("tune_methods: methods must be all names or all Method objects, got "
                            f"{[type(m).__name__ for m in methods]}")
    start = time.perf_counter()
    out = Path(out)
    rule = (rule or SelectionRule()).validate()
    options = dict(dataset_options or {})
    spec = data if isinstance(data, DatasetSpec) else load_dataset(
        data, data_dir=data_dir, seed=int(tune_options.get("seed", 0)), **options)
    outcomes: dict[str, TuneResult] = {}
    skipped: dict[str, str] = {}
    said: set[tuple[type[Warning], str]] = set()  # the same caveat (a small validation split) from every method
    for method in methods:
        if method.needs_desired and spec.desired is None:
            skipped[method.name] = "aims at a desired class; this table names none (for a CSV, --desired names it)"
            continue
        grid = dict(method.grid) if method.strategy == "ct" else {"strategy": [method.strategy], **method.grid}
        train = {k: v for k, v in {**tune_options, **_fixed(method, spec.name, tune_options)}.items()
                 if k not in grid}
        method_rule = rule if method.searches else dataclasses.replace(rule, min_maturity=0.0)
        with warnings.catch_warnings(record=True) as caught:  # the user's filters apply; each caveat said once
            outcomes[method.name] = tune(data, out=out / method.name, grid=grid, rescue=rescue and method.rescue,
                                         rule=method_rule, reuse_cells_from=[out / m.name for m in methods],
                                         data_dir=data_dir, dataset_options=options or None, **train)
        for caveat in caught:
            if (caveat.category, str(caveat.message)) not in said:
                said.add((caveat.category, str(caveat.message)))
                warnings.warn(caveat.message, stacklevel=2)
    if any(r.recommendation == "none" for r in outcomes.values()):
        failed = next(r for r in outcomes.values() if r.recommendation == "none")
        pick = Pick(spec.name, None, f"none: the vanilla baseline could not be measured ({failed.message})")
        return _finish(out, spec.name, methods, outcomes, skipped, pick, None, start)
    tuned = {(spec.name, name): {"recommendation": r.recommendation, "overrides": r.overrides,
                                 "validation": r.chosen_figures()} for name, r in outcomes.items()}
    pick = pick_method(spec.name, list(outcomes), tuned)
    config = outcomes[pick.method].config if pick.method else _vanilla(next(iter(outcomes.values())))
    return _finish(out, spec.name, methods, outcomes, skipped, pick, config, start)


def _finish(out: Path, dataset: str, methods: Sequence[Method], outcomes: dict[str, TuneResult],
            skipped: dict[str, str], pick: Pick, config: TrainConfig | None, start: float) -> MethodsResult:
    """Write ``chosen.json`` (when a config is chosen) and ``pick.md``; return the result."""
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    chosen = out / "chosen.json"
    if config is not None:
        picked = outcomes.get(pick.method or "")
        meta = json.loads(picked.paths["config"].read_text()).get("tune", {}) if picked is not None else {}
        meta = {**meta, "recommendation": "ct" if pick.method else "vanilla", "message": pick.reason}
        atomic_write_json(chosen, {"train": config.to_dict(), "tune": meta, "pick": {
            "method": pick.method or "vanilla", "reason": pick.reason,
            "methods": {n: {"recommendation": r.recommendation, "overrides": r.overrides,
                            "folder": str(out / n)} for n, r in outcomes.items()},
            "skipped": skipped}})
        paths["config"] = chosen
    elif chosen.exists():
        chosen.unlink()  # an old choice must not outlive a failed baseline
    rows = []
    for method in methods:
        if method.name in skipped:
            rows.append({"method": method.name, "tune recommends": "skipped: " + skipped[method.name]})
            continue
        r = outcomes[method.name]
        figures = r.chosen_figures()
        rows.append({"method": method.name, "tune recommends": r.recommendation,
                     "best configuration": str(r.overrides),
                     "validation IP reduction %": fmt(figures.get("ip_reduction_pct", float("nan"))),
                     "validation cost reduction %": fmt(figures.get("cost_reduction_pct", float("nan"))),
                     "time": fmt_duration(r.seconds), "tune table": f"[{method.name}/tune.md]({method.name}/tune.md)"})
    lines = [f"# Which method for {dataset}", "",
             f"**Pick:** {pick.reason}.", "",
             "Each method was tuned on the same validation split (the test split is never read), on its own grid "
             "of at most 9 configurations (`ct-plugin compare`'s methods). The pick, judged on plausibility and "
             "cost: among the methods `tune` recommended over vanilla, those whose validation cost of recourse "
             "is not above vanilla's; of these, the largest validation IP reduction; vanilla when none remains. "
             "Cost reduction: positive = cheaper recourse than vanilla.", "",
             markdown_table(pd.DataFrame(rows).fillna("")), "",
             f"`chosen.json` trains the pick: `ct-plugin train --config {chosen}`." if config is not None else
             "No `chosen.json`: the vanilla baseline could not be measured.", ""]
    md = out / PICK_FILE
    atomic_write(md, "\n".join(lines))
    paths["markdown"] = md
    return MethodsResult(pick, outcomes, skipped, config, paths, time.perf_counter() - start)
