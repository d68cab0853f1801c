"""``ct-plugin reproduce``: the paper's experiment, end to end, on one machine.

Per dataset (:mod:`ct_plugin.reproduce.plan` says what is trained):

1. load the data as the reference builds it (one split, seed 0, shared by every training seed);
2. ``tune`` (:func:`ct_plugin.tuning.tune`) chooses tau and lambda_reg on a validation split carved
   from the training rows;
3. train, in parallel processes, a vanilla baseline and CT (``ct_free``, ``ct_protected``) for every
   settings source (``paper`` = Table C.1, ``tune``) and training seed;
4. evaluate every (source, seed) with the ``paper`` protocol and, on the same models, the ``strict``
   one; plus the ablations (seed 0).

:mod:`ct_plugin.reproduce.report` aggregates over seeds and writes ``results.md``.
Complete runs trained with the same settings are reused, so an interrupted reproduction continues.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from ct_plugin import jobs as runner
from ct_plugin.atomic import atomic_write_json
from ct_plugin.data import tabular
from ct_plugin.data.load import load_dataset
from ct_plugin.data.spec import DatasetSpec
from ct_plugin.errors import CTPluginError
from ct_plugin.evaluation.protocol import DRAW_VERSION, ProtocolConfig, evaluate_runs, load_runs
from ct_plugin.evaluation.report import fmt_duration, write_evaluation
from ct_plugin.reproduce.plan import ABLATIONS, DATASETS, TABLES, Job, Plan, ablation_jobs
from ct_plugin.reproduce.report import write_report
from ct_plugin.runs.files import REQUIRED_FILES, read_json, weights_digest
from ct_plugin.training.train import train
from ct_plugin.tuning.run import tune
from ct_plugin.tuning.selection import SelectionRule

MARKER = "reproduce.json"
"""The done-marker (:mod:`ct_plugin.jobs`) of a trained run and of an evaluation."""
WARNINGS = "warnings"
"""The key of a run's marker that lists the warnings its training raised."""
SECONDS = "reproduce_seconds.json"
"""Compute seconds of the work a folder holds, kept when it is reused so the report can total them."""
EVALUATION_PARTS = ("comparison", "summary", "robustness", "attribution")


def train_job(spec: DatasetSpec, options: dict[str, Any], out: str, device: str = "auto") -> tuple[str, float, bool]:
    """Train one run into ``out`` on ``device`` (or reuse it when complete with the same settings, wherever it
    was trained); (path, seconds, reused)."""
    path = Path(out)
    wanted = {"options": options, "data": spec.options}
    key = runner.fingerprint(wanted)
    complete = all((path / n).is_file() for n in REQUIRED_FILES)
    if complete and runner.read_marker(path, MARKER, key) is not None:
        return out, stored_seconds(path), True
    if path.exists():
        shutil.rmtree(path)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:  # kept in the marker, not printed between progress lines
        warnings.simplefilter("always")
        train(spec, out=path, quiet=True, **{**options, "device": device})
    seconds = time.perf_counter() - start
    runner.write_marker(path, MARKER, key, {"settings": wanted, WARNINGS: list(dict.fromkeys(
        f"{w.category.__name__}: {w.message}" for w in caught))})
    store_seconds(path, seconds)
    return out, seconds, False


def trained_summary(trained: Sequence[tuple[str, float, bool]], seconds: float) -> str:
    """The line after training: runs trained and reused, the wall time, and the runs whose training warned."""
    reused = sum(r for _, _, r in trained)
    warned = warned_runs(path for path, _, r in trained if not r)
    return (f"trained {len(trained) - reused} runs, reused {reused}, in {fmt_duration(seconds)}"
            + (f"; {len(warned)} warned in training (each run's {MARKER} lists its warnings, e.g. {warned[0]})"
               if warned else ""))


def warned_runs(paths: Iterable[str]) -> list[str]:
    """The runs among ``paths`` whose training warned (their ``reproduce.json`` lists the warnings)."""
    warned = []
    for path in paths:
        try:
            if json.loads((Path(path) / MARKER).read_text()).get(WARNINGS):
                warned.append(path)
        except (OSError, ValueError, AttributeError):
            continue
    return warned


def stored_seconds(folder: Path) -> float:
    """The compute seconds recorded in ``folder`` (0 when none)."""
    return float(read_json(folder / SECONDS).get("seconds", 0.0)) if (folder / SECONDS).is_file() else 0.0


def store_seconds(folder: Path, seconds: float) -> None:
    """Record the compute seconds of the work in ``folder``."""
    atomic_write_json(folder / SECONDS, {"seconds": round(seconds, 3)}, indent=None)


def evaluate_job(run_dirs: list[str], labels: list[str], protocols: dict[str, dict[str, Any]], out: str,
                 device: str = "auto") -> dict[str, dict[str, pd.DataFrame]]:
    """Evaluate the runs once per protocol on ``device``; write each into ``out/<protocol>``; return their frames."""
    runs = None
    frames: dict[str, dict[str, pd.DataFrame]] = {}
    for name, settings in protocols.items():
        folder = Path(out) / name
        # each run's settings and trained weights: a run retrained (other code, another runs folder) is evaluated again
        wanted = {"runs": [[runner.marker_fingerprint(d, MARKER), weights_digest(d)] for d in run_dirs],
                  "labels": labels, "protocol": settings, "draw_version": DRAW_VERSION}
        key = runner.fingerprint(wanted)
        if runner.read_marker(folder, MARKER, key) is not None:
            frames[name] = {part: pd.read_csv(folder / f"{part}.csv") for part in EVALUATION_PARTS}
        else:
            runs = runs or load_runs(run_dirs)
            ev = evaluate_runs(runs, ProtocolConfig(**settings), labels=labels, device=device)
            write_evaluation(ev, folder)
            runner.write_marker(folder, MARKER, key, {"settings": wanted})
            store_seconds(folder, ev.seconds)
            frames[name] = {part: getattr(ev, part) for part in EVALUATION_PARTS}
        frames[name]["seconds"] = pd.DataFrame([{"seconds": stored_seconds(folder)}])
    return frames


def protocol_settings(plan: Plan, rounds: int | None) -> dict[str, dict[str, Any]]:
    """The two protocols' settings (the paper's defaults; fewer rounds and attacked rows with ``quick``)."""
    common: dict[str, Any] = {"rounds": rounds or (10 if plan.quick else 100)}
    if plan.quick:
        common.update(attack_rows=500, ig_rows=100, n_factuals=40)
    return {"paper": {"protocol": "paper", **common}, "strict": {"protocol": "strict", **common}}


def check_tables(datasets: Iterable[str], data_dir: str | None) -> None:
    """A clear error (the places searched, how to fill them) when a real table of ``datasets`` is missing."""
    for dataset in datasets:
        if dataset in TABLES and dataset in tabular.TABLES:  # the others' loaders name their own files
            tabular.table_path(dataset, data_dir)


def tune_dataset(spec: DatasetSpec, plan: Plan, out: Path, workers: int, progress: bool,
                 grid: dict[str, list[Any]] | None = None, fixed: dict[str, Any] | None = None,
                 rescue: bool = True, rule: SelectionRule | None = None,
                 reuse_cells_from: Sequence[Path] = ()) -> dict[str, Any]:
    """tau and lambda_reg (or ``grid``'s axes) chosen by ``tune`` on a validation split of ``spec``'s training rows.

    ``fixed``: settings every configuration trains with, over the plan's; ``rescue``, ``rule`` and
    ``reuse_cells_from`` as ``tune``'s.
    """
    options = {k: v for k, v in {**plan.base_options(spec.name, len(spec.y_train)), **(fixed or {})}.items()
               if grid is None or k not in grid}  # an axis of the grid is not a fixed setting
    if plan.tune_epochs is not None:
        options["epochs"] = min(options["epochs"], plan.tune_epochs)
    seeds = {} if plan.tune_seeds is None else {"seeds": plan.tune_seeds}
    extra: dict[str, Any] = {} if grid is None else {"grid": grid}
    if not rescue:
        extra["rescue"] = False
    if rule is not None:
        extra["rule"] = rule
    if reuse_cells_from:
        extra["reuse_cells_from"] = list(reuse_cells_from)
    result = tune(spec, out=out, workers=workers, progress=progress, seed=0, device=plan.device, **seeds, **extra,
                  **options)
    # a re-run reuses finished cells: keep the seconds of the run that did the work
    seconds = max(result.seconds, stored_seconds(out))
    store_seconds(out, seconds)
    row = result.table[result.table.chosen].iloc[0]
    stage = int(row.stage)
    validation = result.chosen_figures()
    return {"overrides": dict(result.overrides), "recommendation": result.recommendation,
            "passed": result.passed, "stage": stage, "rescued": stage > 1,
            "validation": validation,
            "fallback": result.fallback, "message": result.message, "seconds": seconds,
            "table": str(result.paths.get("markdown", ""))}


def prepare(datasets: list[str], plan: Plan, data_dir: str | None, rounds: int | None, workers: int | None,
            command: str) -> tuple[int, dict[str, dict[str, Any]], dict[str, DatasetSpec]]:
    """What an experiment over ``datasets`` needs first: the worker count, both protocols' settings, the loaded data.

    Unknown datasets and missing tables are refused, naming ``command`` (reproduce, compare).
    """
    unknown = [d for d in datasets if d not in DATASETS]
    if unknown:
        raise CTPluginError(f"unknown dataset(s) {unknown} for {command}; choose from {', '.join(DATASETS)}")
    check_tables(datasets, data_dir)
    specs = {d: load_dataset(d, data_dir=data_dir, seed=0, **plan.data_options(d)) for d in datasets}
    return max(1, workers or os.cpu_count() or 1), protocol_settings(plan, rounds), specs


def run_reproduce(
    datasets: list[str], plan: Plan, out: Path, runs_dir: Path, data_dir: str | None, command: str,
    log: Callable[[str], None] = print, rounds: int | None = None, workers: int | None = None,
    ablations: bool = True, progress: bool = True,
) -> dict[str, Any]:
    """Tune, train, evaluate and write ``out/results.md``; returns what the report was built from."""
    t_start = time.perf_counter()
    workers, protocols, specs = prepare(datasets, plan, data_dir, rounds, workers, "reproduce")

    tuned: dict[str, dict[str, Any]] = {}
    forced: dict[str, dict[str, Any]] = {}  # tune's best CT configuration where it recommends vanilla
    tune_info: dict[str, dict[str, Any]] = {}
    if "tune" in plan.sources:
        for dataset in datasets:
            t0 = time.perf_counter()
            info = tune_dataset(specs[dataset], plan, runs_dir / dataset / "tune", workers, progress)
            copies = out / "results" / dataset / "tune"
            copies.mkdir(parents=True, exist_ok=True)
            for name in ("tune.md", "tune.csv", "tune.png", "chosen.json"):
                if (runs_dir / dataset / "tune" / name).is_file():
                    shutil.copyfile(runs_dir / dataset / "tune" / name, copies / name)
            info["table"] = str(copies / "tune.md")
            tune_info[dataset] = info
            if info["recommendation"] == "vanilla":
                tuned[dataset], forced[dataset] = {"strategy": "vanilla"}, info["overrides"]
            else:
                tuned[dataset] = info["overrides"]
            log(f"{dataset}: tune recommends {info['recommendation']}, best CT {info['overrides']}, in "
                f"{fmt_duration(time.perf_counter() - t0)} ({info['message']})")
    tune_seconds = time.perf_counter() - t_start

    jobs: list[tuple[Job, DatasetSpec]] = [
        (job, specs[d]) for d in datasets for job in plan.jobs(d, tuned, len(specs[d].y_train), forced=forced,
                                                               categorical=bool(specs[d].categorical))]
    ablation_rows: list[dict[str, Any]] = []
    if ablations and not plan.quick:
        for name, dataset, what, change in ABLATIONS:
            if dataset not in datasets:
                continue
            data = change.get("data", plan.data_options(dataset))
            spec = specs[dataset] if data == plan.data_options(dataset) else load_dataset(
                dataset, data_dir=data_dir, **{"seed": 0, **data})
            data, extra = ablation_jobs(plan, name, dataset, change, len(specs[dataset].y_train),
                                        categorical=bool(spec.categorical))
            jobs += [(job, spec) for job in extra]
            ablation_rows.append({"ablation": name, "data": dataset, "change": what, "variant": extra[0].variant,
                                  "seeds": int(change.get("seeds", 1)), "draw_of": change.get("draw_of", "")})
    t0 = time.perf_counter()
    unique = {str(runs_dir / job.dataset / job.name): (job, spec) for job, spec in jobs}
    training = [runner.Job(path, train_job, (spec, job.options, path, plan.device))
                for path, (job, spec) in unique.items()]
    trained = runner.run_jobs(training, workers=workers, progress="train", quiet=not progress)
    train_seconds = {path: seconds for path, seconds, _ in trained}
    reused_runs = sum(r for _, _, r in trained)
    log(trained_summary(trained, time.perf_counter() - t0))

    groups: dict[tuple[str, str, str, int], dict[str, str]] = {}
    sources_of: dict[tuple[str, str], set[str]] = {}
    for job, _ in jobs:
        if job.kind != "baseline":
            sources_of.setdefault((job.dataset, job.variant), set()).add(job.source)
    for job, _ in jobs:
        for source in ([job.source] if job.kind != "baseline" else sorted(sources_of[(job.dataset, job.variant)])):
            key = (job.dataset, job.variant, source, job.seed)
            groups.setdefault(key, {})[job.kind] = str(runs_dir / job.dataset / job.name)
    keys = sorted(groups)
    t0 = time.perf_counter()
    tasks = []
    for dataset, variant, source, seed in keys:
        dirs = groups[(dataset, variant, source, seed)]
        target = out / "results" / dataset / f"{variant + '-' if variant else ''}{source}-seed{seed}"
        wanted = protocols if source in plan.strict_sources and not variant else {"paper": protocols["paper"]}
        tasks.append(runner.Job(str(target), evaluate_job, ([dirs["baseline"], dirs["ct_free"], dirs["ct_protected"]],
                                                     ["baseline", "ct_free", "ct_protected"], wanted, str(target),
                                                     plan.device)))
    evaluated = runner.run_jobs(tasks, workers=workers, progress="evaluate", quiet=not progress)
    log(f"evaluated {len(tasks)} groups in {fmt_duration(time.perf_counter() - t0)}")
    frames = dict(zip(keys, evaluated, strict=True))
    wall = time.perf_counter() - t_start
    compute = {
        "tune": sum(info["seconds"] for info in tune_info.values()),
        "train": sum(train_seconds.values()),
        "evaluate": sum(float(p["seconds"].seconds.sum()) for f in frames.values() for p in f.values()),
    }
    ledger = runs_dir / "reproduce_wall.json"
    if reused_runs == 0:  # a run from scratch: its wall time is the measured cost of the whole reproduction
        atomic_write_json(ledger, {"wall_seconds": wall, "command": command, "datasets": datasets}, indent=None)
    from_scratch = read_json(ledger) if ledger.is_file() else None
    settings = {"plan": asdict(plan), "protocols": protocols, "command": command, "workers": workers,
                "wall_seconds": wall, "tune_seconds": tune_seconds, "tuned": tune_info, "compute_seconds": compute,
                "from_scratch": from_scratch}
    md = write_report(out, datasets, plan, frames, groups, tune_info, ablation_rows, settings, train_seconds)
    log(f"wrote {md} ({fmt_duration(wall)})")
    return {"markdown": md, "frames": frames, "wall_seconds": wall, "tuned": tune_info}
