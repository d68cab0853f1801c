"""``ct-plugin compare``: every method on one protocol, each with settings chosen on validation only.

Per dataset (the data and the plan of :mod:`ct_plugin.reproduce`: the reference's data, Table C.1's
batch size, nce, epochs and ECCCo, 3 seeds):

1. ``tune`` chooses each method's settings on a validation split of the training rows, within the
   method's grid (:mod:`ct_plugin.compare.methods`; at most CT's 9 configurations x 2 seeds);
2. every method's best configuration is trained for each seed, twice (nothing immutable: IP, IP*;
   the protected features immutable: cost), beside one vanilla baseline per seed that every method
   shares;
3. each (method, seed) is evaluated against that seed's baseline with the paper protocol and the
   strict one; the factual draws depend on the seed of the protocol only, so every method is
   searched from the same rows (common random numbers). Evaluations are kept in
   ``RUNS_DIR/<dataset>/evaluations/``; ``OUT`` receives ``strategies.md``, its figure and its CSV.

Where ``tune`` recommends vanilla for a method, the method "as tune chooses" is the baseline itself
(every reduction exactly 0); its best configuration is still trained so the report can show what
the method does. Trained runs, tunes and evaluations are cached (done-markers with a fingerprint of
their settings), so an interrupted comparison continues where it stopped and CT's tune and runs are
shared with ``ct-plugin reproduce`` when both use the same runs folder.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ct_plugin import jobs as runner
from ct_plugin.atomic import atomic_write_json
from ct_plugin.compare.methods import Method
from ct_plugin.compare.report import write_comparison
from ct_plugin.data.spec import DatasetSpec
from ct_plugin.evaluation.report import fmt_duration
from ct_plugin.reproduce.plan import TABLE_C1, Job, Plan
from ct_plugin.reproduce.run import evaluate_job, prepare, stored_seconds, train_job, trained_summary, tune_dataset
from ct_plugin.runs.files import read_json
from ct_plugin.tuning.selection import SelectionRule

MEMORY = "compare_memory.json"
"""Peak resident memory of the process that trained a run (MB), written beside it by the comparison."""


class PeakMemory:
    """The growth of this process's resident memory over a block, sampled every ``interval`` seconds.

    Reads ``/proc/self/statm`` (Linux); elsewhere ``growth_mb`` is nan. Worker processes are reused
    between jobs, so the growth is measured from the block's start, not from the process's.
    """

    def __init__(self, interval: float = 0.02):
        self.interval, self.start, self.peak = interval, float("nan"), float("nan")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def resident_mb() -> float:
        """The process's resident memory now (MB), nan where ``/proc`` is absent."""
        try:
            pages = int(Path("/proc/self/statm").read_text().split()[1])
        except (OSError, ValueError, IndexError):
            return float("nan")
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self.resident_mb())

    def __enter__(self) -> PeakMemory:
        self.start = self.peak = self.resident_mb()
        if self.start == self.start:  # not nan: sampling works here
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak = max(self.peak, self.resident_mb())

    @property
    def growth_mb(self) -> float:
        """Peak minus start (MB)."""
        return self.peak - self.start


def train_measured(spec: DatasetSpec, options: dict[str, Any], out: str, device: str = "auto"
                   ) -> tuple[str, float, bool]:
    """:func:`ct_plugin.reproduce.run.train_job`, recording the peak resident memory while it trains a run.

    The peak of the whole worker process (its interpreter, torch and the data included), not the growth:
    workers are reused, so a later job's growth says little.
    """
    with PeakMemory() as memory:
        path, seconds, reused = train_job(spec, options, out, device)
    if not reused:
        atomic_write_json(Path(out) / MEMORY, {"peak_mb": round(memory.peak, 1),
                                               "peak_growth_mb": round(memory.growth_mb, 1)}, indent=None)
    return path, seconds, reused


def tune_method(spec: DatasetSpec, plan: Plan, method: Method, runs_dir: Path, workers: int, progress: bool,
                max_cost_increase: float | None = None) -> dict[str, Any]:
    """``tune`` over the method's grid (CT's own tune folder for ``ct``, shared with ``reproduce``).

    ``max_cost_increase``: the rule also judges the validation cost of recourse (a fraction; None: not judged);
    those tunes have folders of their own.
    """
    grid = dict(method.grid) if method.strategy == "ct" else {"strategy": [method.strategy], **method.grid}
    suffix = "" if max_cost_increase is None else f"-cost{100 * max_cost_increase:g}"
    folder = runs_dir / spec.name / ("tune" if method.name == "ct" else f"tune-{method.name}")
    folder = folder.with_name(folder.name + suffix)
    fixed = method.settings(TABLE_C1[spec.name])
    rule = SelectionRule(min_maturity=SelectionRule.min_maturity if method.searches else 0.0,
                         max_cost_increase=max_cost_increase)
    if method.name == "ct" and max_cost_increase is None:  # exactly reproduce's call: its cells are reused
        return tune_dataset(spec, plan, folder, workers, progress)
    siblings = sorted(p for p in (runs_dir / spec.name).glob("tune*") if p.is_dir())  # the other methods' tunes
    return tune_dataset(spec, plan, folder, workers, progress, grid=grid, fixed=fixed, rescue=method.rescue,
                        rule=rule, reuse_cells_from=siblings)


def method_jobs(plan: Plan, method: Method, spec: DatasetSpec, overrides: dict[str, Any]) -> list[Job]:
    """The method's two trainings per seed (nothing immutable; the protected features immutable)."""
    base = plan.base_options(spec.name, len(spec.y_train))
    settings = {**base, **method.settings(TABLE_C1[spec.name]), **overrides, "strategy": method.strategy}
    data = plan.data_options(spec.name)
    return [Job(spec.name, method.name, kind, seed, options={**settings, "seed": seed, "protect": protect}, data=data)
            for seed in range(plan.seeds) for kind, protect in (("ct_free", False), ("ct_protected", True))]


def baseline_jobs(plan: Plan, spec: DatasetSpec) -> list[Job]:
    """One vanilla baseline per seed (reproduce's: the same settings, so the same run folder)."""
    base = plan.base_options(spec.name, len(spec.y_train))
    return [Job(spec.name, "-", "baseline", seed, options={**base, "strategy": "vanilla", "seed": seed},
                data=plan.data_options(spec.name)) for seed in range(plan.seeds)]


def run_compare(
    datasets: list[str], methods: list[Method], plan: Plan, out: Path, runs_dir: Path, data_dir: str | None,
    command: str, log: Callable[[str], None] = print, rounds: int | None = None, workers: int | None = None,
    progress: bool = True, max_cost_increase: float | None = None,
) -> dict[str, Any]:
    """Tune, train and evaluate every method on every dataset; write ``out/strategies.md``.

    ``max_cost_increase``: every method's tune also judges the validation cost of recourse (see
    :class:`~ct_plugin.tuning.selection.SelectionRule`); None: plausibility, accuracy and validity only.
    """
    t_start = time.perf_counter()
    workers, protocols, specs = prepare(datasets, plan, data_dir, rounds, workers, "compare")

    tuned: dict[tuple[str, str], dict[str, Any]] = {}
    skipped: dict[tuple[str, str], str] = {}
    for dataset in datasets:
        for method in methods:
            if method.needs_desired and specs[dataset].desired is None:
                skipped[(dataset, method.name)] = "needs a desired class; this dataset names none"
                continue
            t0 = time.perf_counter()
            info = tune_method(specs[dataset], plan, method, runs_dir, workers, progress, max_cost_increase)
            tuned[(dataset, method.name)] = info
            log(f"{dataset} / {method.name}: tune recommends {info['recommendation']}, best {info['overrides']} "
                f"({fmt_duration(time.perf_counter() - t0)})")

    jobs: list[tuple[Job, DatasetSpec]] = [(job, specs[d]) for d in datasets for job in baseline_jobs(plan, specs[d])]
    for (dataset, name), info in tuned.items():
        method = next(m for m in methods if m.name == name)
        jobs += [(job, specs[dataset]) for job in method_jobs(plan, method, specs[dataset], info["overrides"])]
    unique = {str(runs_dir / job.dataset / job.name): (job, spec) for job, spec in jobs}
    t0 = time.perf_counter()
    training = [runner.Job(path, train_measured, (spec, job.options, path, plan.device))
                for path, (job, spec) in unique.items()]
    trained = runner.run_jobs(training, workers=workers, progress="train", quiet=not progress)
    log(trained_summary(trained, time.perf_counter() - t0))

    groups: dict[tuple[str, str, str, int], dict[str, str]] = {}
    for job, _ in jobs:
        if job.kind == "baseline":
            for method in methods:
                if (job.dataset, method.name) in tuned:
                    groups.setdefault((job.dataset, "", method.name, job.seed), {})["baseline"] = str(
                        runs_dir / job.dataset / job.name)
        else:
            groups.setdefault((job.dataset, "", job.source, job.seed), {})[job.kind] = str(
                runs_dir / job.dataset / job.name)
    keys = sorted(groups)
    tasks = []
    for dataset, _, name, seed in keys:
        dirs = groups[(dataset, "", name, seed)]
        # evaluations are cached beside the runs (they are many; the report needs only their figures)
        target = runs_dir / dataset / "evaluations" / f"{name}-seed{seed}"
        tasks.append(runner.Job(str(target), evaluate_job, ([dirs["baseline"], dirs["ct_free"], dirs["ct_protected"]],
                                                            ["baseline", "ct_free", "ct_protected"], protocols,
                                                            str(target), plan.device)))
    t0 = time.perf_counter()
    evaluated = runner.run_jobs(tasks, workers=workers, progress="evaluate", quiet=not progress)
    log(f"evaluated {len(tasks)} groups in {fmt_duration(time.perf_counter() - t0)}")
    frames = dict(zip(keys, evaluated, strict=True))
    wall = time.perf_counter() - t_start
    compute = {
        "tune": sum(info["seconds"] for info in tuned.values()),
        "train": sum(stored_seconds(Path(p)) for p in unique),
        "evaluate": sum(float(p["seconds"].seconds.sum()) for f in frames.values() for p in f.values()),
    }
    memory = {path: float(read_json(Path(path) / MEMORY).get("peak_mb", float("nan")))
              if (Path(path) / MEMORY).is_file() else float("nan") for path in unique}
    settings = {"plan": asdict(plan), "protocols": protocols, "command": command, "workers": workers,
                "max_cost_increase": max_cost_increase,
                "wall_seconds": wall, "compute_seconds": compute, "methods": [m.name for m in methods],
                "tuned": {f"{d}/{m}": {k: v for k, v in info.items() if k != "table"}
                          for (d, m), info in tuned.items()},
                "skipped": {f"{d}/{m}": why for (d, m), why in skipped.items()}}
    md = write_comparison(out, datasets, methods, plan, frames, groups, tuned, skipped, memory, settings)
    log(f"wrote {md} ({fmt_duration(wall)})")
    return {"markdown": md, "frames": frames, "tuned": tuned, "wall_seconds": wall}
