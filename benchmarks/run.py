"""Speed benchmarks of ct-plugin: every figure is a ratio against a baseline measured in the same run.

Usage (from the repository root)::

    python benchmarks/run.py                      # full suite, CPU (about 5 minutes on 2 cores)
    python benchmarks/run.py --short              # CI-sized (under a minute)
    python benchmarks/run.py --device cuda        # the same suite on a GPU
    python benchmarks/run.py --only overhead,scaling --json results.json

Sections:

``throughput``
    Counterfactuals per second of the batched ``generic`` and ``eccco`` searches (T 50, tau 0.95)
    against CARLA's Wachter and Growing Spheres and DiCE's random / genetic / gradient methods,
    all through the generator registry, on the same trained model and the same factuals (moons
    and adult), with the validity of each. A method whose host library is missing prints
    ``not installed`` / ``unavailable: reason``.
``overhead``
    Seconds per epoch of ``ct`` against ``vanilla`` (nce 1000, T 30) on circles (3000 training
    rows, batch 30) and adult (batch 1000), split into search / loss / update time, next to the
    ideal ratio of the cost model (see :func:`ideal_ratio`). The full mode also times the whole
    100-epoch CT run on adult.
``scaling``
    Epoch time and peak memory as the adult training set is resampled to 1x/2x/4x/8x its size
    and as nce grows 250..4000, with the fitted growth exponent (slope of log time on log size),
    and the resident memory after every epoch of one longer run (it must not grow).

``threads``, ``startup``
    The library's default thread count against every fixed count (training and evaluation), and
    the start-up time of ``ct-plugin --help`` / ``--version``: see ``benchmarks/threads_startup.py``.

Each configuration runs ``--repeats`` times (default 2); the tables show the median.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from anywhere without installing
    sys.path.insert(0, str(REPO))

import ct_plugin  # noqa: E402
from ct_plugin.constraints import SearchConstraints  # noqa: E402
from ct_plugin.data.spec import DatasetSpec  # noqa: E402
from ct_plugin.errors import CTPluginError, UnknownNameError  # noqa: E402

SECTIONS = ("throughput", "overhead", "scaling", "threads", "startup")
OUR_GENERATORS = ("generic", "eccco")
PEER_GENERATORS = ("carla-wachter", "carla-growing-spheres", "dice-random", "dice-genetic", "dice-gradient")


# ---------------------------------------------------------------- settings
@dataclasses.dataclass
class Settings:
    """Sizes of one benchmark run (``short`` shrinks everything for CI)."""

    short: bool
    device: str
    repeats: int
    data_dir: str | None
    # throughput
    our_factuals: int
    peer_factuals: dict[str, int]
    model_epochs: dict[str, int]
    # overhead: epochs of the vanilla and CT runs per dataset (adult 100 in the full mode: the whole run)
    overhead_epochs: dict[str, int]
    # scaling
    size_factors: tuple[int, ...]
    nce_values: tuple[int, ...]
    scaling_epochs: int
    memory_epochs: int

    @classmethod
    def make(cls, short: bool, device: str, repeats: int, data_dir: str | None) -> Settings:
        if short:
            return cls(
                short, device, repeats, data_dir,
                our_factuals=500,
                peer_factuals={"carla-wachter": 3, "carla-growing-spheres": 3, "dice-random": 3,
                               "dice-genetic": 2, "dice-gradient": 1},
                model_epochs={"moons": 5, "adult": 3},
                overhead_epochs={"circles": 3, "adult": 3},
                size_factors=(1, 4), nce_values=(250, 4000), scaling_epochs=2, memory_epochs=4,
            )
        return cls(
            short, device, repeats, data_dir,
            our_factuals=100_000,  # all test rows (adult: 9,766; moons: 750)
            peer_factuals={"carla-wachter": 20, "carla-growing-spheres": 20, "dice-random": 10,
                           "dice-genetic": 5, "dice-gradient": 3},
            model_epochs={"moons": 20, "adult": 10},
            overhead_epochs={"circles": 20, "adult": 100},
            size_factors=(1, 2, 4, 8), nce_values=(250, 500, 1000, 2000, 4000), scaling_epochs=4,
            memory_epochs=20,
        )


# ------------------------------------------------------------------ helpers
def _sync(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def median(values: Sequence[float]) -> float:
    """Median of a non-empty sequence (nan for an empty one)."""
    return float(statistics.median(values)) if values else float("nan")


def growth_exponent(sizes: Sequence[float], values: Sequence[float]) -> float:
    """Least-squares slope of log(value) on log(size): 1.0 is linear growth."""
    x = np.log(np.asarray(sizes, dtype=float))
    y = np.log(np.asarray(values, dtype=float))
    if len(x) < 2 or not np.all(np.isfinite(y)):
        return float("nan")
    return float(np.polyfit(x, y, 1)[0])


def ideal_ratio(n_train: int, nce: int, steps: float) -> float:
    """The cost model's CT/vanilla epoch-time ratio.

    The unit is one *sample pass*: the forward and backward pass of one row through the model
    (on CPU the backward of the input gradient costs about what the parameter backward costs).
    A vanilla epoch makes ``n_train`` passes. CT adds ``nce * steps`` passes for the searches
    (each search step is a forward/backward of the input gradient of every still-moving row)
    and ``3 * nce`` passes for the x+, x' and x_AE rows that enter the loss. Hence::

        ideal = (n_train + nce * (steps + 3)) / n_train

    For adult (39,066 training rows, nce 1000, T 30) this is 1.84, the "about 1.9x" of the issue.
    Per-operation overheads of small batches are not in the model: they make real vanilla
    epochs with small batches (circles, batch 30) slower than the ideal, so the measured ratio
    there lies *below* the ideal.
    """
    return (n_train + nce * (steps + 3)) / n_train


class RSSSampler:
    """Peak resident set size (CPU) or peak allocated CUDA memory over a block, in MiB.

    On CPU a daemon thread reads ``/proc/self/statm`` every ``interval`` seconds (a read
    costs microseconds); elsewhere ``ru_maxrss`` cannot be reset, so the peak is only
    known on Linux. On CUDA the allocator's own peak counter is used.
    """

    def __init__(self, device: torch.device | str = "cpu", interval: float = 0.002):
        self.cuda = torch.device(device).type == "cuda"
        self.interval = interval
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

    def current(self) -> float:
        """Memory now, in MiB."""
        if self.cuda:
            return torch.cuda.memory_allocated() / 2**20
        try:
            with open("/proc/self/statm") as handle:
                return int(handle.read().split()[1]) * self._page / 2**20
        except OSError:
            return float("nan")

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.current())
            self._stop.wait(self.interval)

    def __enter__(self) -> RSSSampler:
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        self.baseline = self.current()
        self.peak = self.baseline
        if not self.cuda:
            self._stop.clear()
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.cuda:
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() / 2**20
        else:
            self._stop.set()
            assert self._thread is not None
            self._thread.join()
            self.peak = max(self.peak, self.current())

    @property
    def increase(self) -> float:
        """Peak above the memory at entry, in MiB."""
        return self.peak - self.baseline


class _EpochProbe:
    """Lifecycle plugin recording the memory after every epoch of a training run."""

    def __init__(self, sampler: RSSSampler | None = None):
        self.sampler = sampler
        self.after_epoch: list[float] = []
        self.cpu_at_end: list[float] = []

    @ct_plugin.hookimpl
    def ct_plugin_epoch_end(self, event: Any) -> None:
        self.cpu_at_end.append(time.process_time())
        if self.sampler is not None:
            self.after_epoch.append(self.sampler.current())

    def cpu_per_epoch(self) -> float:
        """Mean process CPU seconds of the epochs after the first (robust to other processes' load)."""
        stamps = self.cpu_at_end
        return (stamps[-1] - stamps[0]) / (len(stamps) - 1) if len(stamps) > 1 else float("nan")


@contextlib.contextmanager
def epoch_probe(sampler: RSSSampler | None = None) -> Iterator[_EpochProbe]:
    """Register an :class:`_EpochProbe` for the duration of a block."""
    probe = _EpochProbe(sampler)
    name = f"benchmark-probe-{id(probe)}"
    ct_plugin.register_plugin(probe, name=name)
    try:
        yield probe
    finally:
        ct_plugin.unregister_plugin(name)


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]], note: str = "") -> str:
    """A Markdown pipe table (readable in a terminal, pasteable into docs)."""
    cells = [[_fmt(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(header)]
    lines = [f"\n### {title}\n"]
    lines.append("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells:
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")
    if note:
        lines.append("\n" + note)
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if value == 0:
            return "0"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        if abs(value) >= 0.01:
            return f"{value:.3g}"
        return f"{value:.2e}"
    return str(value)


def load(name: str, settings: Settings, **options: Any) -> DatasetSpec:
    """A registered dataset (real tables read from ``settings.data_dir``)."""
    return ct_plugin.load_dataset(name, data_dir=settings.data_dir, seed=0, **options)


def _train(spec: DatasetSpec, settings: Settings, **overrides: Any) -> ct_plugin.TrainResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ct_plugin.train(spec, quiet=True, device=settings.device, **overrides)


# --------------------------------------------------------------- throughput
def _build_generator(name: str, spec: DatasetSpec, device: str) -> tuple[Any, str]:
    """A fitted generator, or (None, why not)."""
    registry = ct_plugin.get_registry()
    try:
        item = registry.get("generator", name)
    except (UnknownNameError, CTPluginError):
        return None, "not installed"
    if not item.available:
        return None, f"unavailable: {item.reason}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            generator = item.factory()
            generator.fit(spec, device)
    except Exception as exc:  # a host library failing to set up must not end the benchmark
        return None, f"unavailable: {type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
    return generator, ""


def time_search(
    generator: Any,
    model: torch.nn.Module,
    factuals: torch.Tensor,
    targets: torch.Tensor,
    constraints: SearchConstraints,
    repeats: int,
    *,
    tau: float = 0.95,
    max_steps: int = 50,
) -> tuple[float, Any]:
    """Median wall seconds of ``repeats`` searches (after one untimed warm-up for batched ones)."""
    seconds = []
    result = None
    for _ in range(repeats):
        _sync(factuals.device)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = generator.search(
                model, factuals, targets, constraints, tau=tau, max_steps=max_steps, epsilon=0.3,
                rng=torch.Generator().manual_seed(0),
            )
        _sync(factuals.device)
        seconds.append(time.perf_counter() - start)
    return median(seconds), result


def bench_throughput(settings: Settings, log: Callable[[str], None]) -> dict[str, Any]:
    """Counterfactuals per second and validity of our batched searches and of the host libraries'."""
    results: dict[str, Any] = {}
    for dataset in ("moons", "adult"):
        spec = load(dataset, settings)
        trained = _train(spec, settings, strategy="vanilla", epochs=settings.model_epochs[dataset],
                         batch_size=30 if dataset == "moons" else 1000, seed=0)
        model = trained.model.eval()
        device = next(model.parameters()).device
        constraints = SearchConstraints.from_spec(spec, device)
        X = torch.as_tensor(spec.X_test, dtype=torch.float32, device=device)
        n = min(settings.our_factuals, len(X))
        factuals = X[:n]
        with torch.no_grad():
            targets = 1 - model(factuals).argmax(dim=1)  # binary sets: the other class
        rows = []
        per_second: dict[str, float] = {}
        for name in OUR_GENERATORS + PEER_GENERATORS:
            ours = name in OUR_GENERATORS
            generator, why = _build_generator(name, spec, str(device))
            if generator is None:
                rows.append([name, why, "-", "-", "-", "-", "-"])
                log(f"  {dataset:<6} {name:<22} {why}")
                continue
            m = n if ours else min(settings.peer_factuals[name], n)
            use_model, use_f, use_t, use_c = model, factuals[:m], targets[:m], constraints
            if not ours and device.type != "cpu":  # the host libraries run on the CPU
                use_model = copy.deepcopy(model).cpu()
                use_f, use_t, use_c = use_f.cpu(), use_t.cpu(), constraints.to("cpu")
            try:
                if ours:  # warm-up (allocator, lazy init) outside the clock
                    time_search(generator, use_model, use_f, use_t, use_c, 1)
                seconds, result = time_search(generator, use_model, use_f, use_t, use_c, settings.repeats)
            except Exception as exc:
                why = f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:100] if str(exc) else ''}"
                rows.append([name, why, "-", "-", "-", "-", "-"])
                log(f"  {dataset:<6} {name:<22} {why}")
                continue
            rate = m / seconds
            per_second[name] = rate
            valid = float((result.target_prob >= 0.5).float().mean())
            reached = float(result.converged.float().mean())
            mean_steps = float(result.steps.float().mean()) if ours else float("nan")
            rows.append([name, "batched" if ours else "one by one", m, rate, valid, reached, mean_steps])
            log(f"  {dataset:<6} {name:<22} {m:>5} CFs in {seconds:.3g} s: {rate:,.1f} CF/s, valid {valid:.2f}")
        reference = per_second.get("carla-wachter")
        for row in rows:
            rate = per_second.get(row[0])
            row.append(rate / reference if rate is not None and reference else float("nan"))
        results[dataset] = {
            "n_factuals": n,
            "rows": [dict(zip(THROUGHPUT_HEADER, row)) for row in rows],
            "speedup_eccco_vs_wachter": per_second["eccco"] / reference if reference else None,
        }
    return results


THROUGHPUT_HEADER = ("generator", "mode", "factuals", "CFs/s", "valid", "reached tau", "mean steps",
                     "x carla-wachter")


def report_throughput(results: dict[str, Any]) -> str:
    out = []
    for dataset, block in results.items():
        rows = [[row[h] for h in THROUGHPUT_HEADER] for row in block["rows"]]
        out.append(table(
            f"Counterfactual throughput on {dataset} (T 50, tau 0.95, same model and factuals)",
            THROUGHPUT_HEADER, rows,
            "valid: share with p(target) >= 0.5 after projection onto the constraints; reached tau: "
            "share with p(target) >= 0.95. Host libraries get the first rows of the same factuals.",
        ))
    return "\n".join(out)


# ----------------------------------------------------------------- overhead
def _epoch_figures(log: list[dict[str, Any]], skip_first: bool) -> dict[str, float]:
    records = log[1:] if skip_first and len(log) > 1 else log
    keys = ("epoch_seconds", "search_seconds", "loss_seconds", "update_seconds")
    figures = {k: float(np.mean([r[k] for r in records])) for k in keys}
    steps = [r["mean_steps"] for r in records if r.get("mean_steps") is not None]
    figures["mean_steps"] = float(np.mean(steps)) if steps else float("nan")
    return figures


def bench_overhead(settings: Settings, log: Callable[[str], None]) -> dict[str, Any]:
    """CT vs vanilla seconds per epoch; vanilla and CT runs alternate so both see the same load.

    In the full mode the adult runs are whole 100-epoch trainings, so their wall time answers
    the "100-epoch CT run on adult" target too.
    """
    cases = {
        "circles": (load("circles", settings), 30),
        "adult": (load("adult", settings), 1000),
    }
    results: dict[str, Any] = {}
    for dataset, (spec, batch) in cases.items():
        epochs = settings.overhead_epochs[dataset]
        runs: dict[str, list[dict[str, float]]] = {"vanilla": [], "ct": []}
        for repeat in range(settings.repeats):
            for strategy in ("vanilla", "ct"):
                start, cpu_start = time.perf_counter(), time.process_time()
                with epoch_probe() as probe:
                    trained = _train(spec, settings, strategy=strategy, epochs=epochs,
                                     batch_size=batch, nce=1000, max_steps=30, seed=repeat)
                wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
                runs[strategy].append({**_epoch_figures(trained.log, skip_first=True), "wall_seconds": wall,
                                       "cpu_seconds": cpu, "cpu_epoch_seconds": probe.cpu_per_epoch(),
                                       "test_accuracy": trained.log[-1]["test_accuracy"]})
                log(f"  {dataset:<7} {strategy:<7} repeat {repeat + 1}: {epochs} epochs in {wall:.1f} s "
                    f"({cpu:.1f} CPU s), {runs[strategy][-1]['epoch_seconds']:.4f} s/epoch, "
                    f"test accuracy {trained.log[-1]['test_accuracy']:.3f}")
        vanilla = {k: median([r[k] for r in runs["vanilla"]]) for k in runs["vanilla"][0]}
        ct = {k: median([r[k] for r in runs["ct"]]) for k in runs["ct"][0]}
        pairs = list(zip(runs["vanilla"], runs["ct"]))
        ratios = [c["epoch_seconds"] / v["epoch_seconds"] for v, c in pairs]
        cpu_ratios = [c["cpu_epoch_seconds"] / v["cpu_epoch_seconds"] for v, c in pairs]
        n_train = len(spec.X_train)
        results[dataset] = {
            "n_train": n_train,
            "batch_size": batch,
            "epochs": epochs,
            "vanilla": vanilla,
            "ct": ct,
            "ratio": median(ratios),
            "ratios": ratios,
            "cpu_ratio": median(cpu_ratios),
            "cpu_ratios": cpu_ratios,
            "ct_wall_seconds": [r["wall_seconds"] for r in runs["ct"]],
            "ideal_T": ideal_ratio(n_train, 1000, 30),
            "ideal_used_steps": ideal_ratio(n_train, 1000, ct["mean_steps"]),
        }
    return results


def report_overhead(results: dict[str, Any]) -> str:
    header = ("dataset", "n_train", "batch", "epochs", "vanilla s/epoch", "ct s/epoch", "search", "loss", "update",
              "ct mean steps", "ratio ct/vanilla", "ratio (CPU time)", "ideal (T=30)", "ideal (steps used)")
    rows = []
    for dataset in ("circles", "adult"):
        if dataset not in results:
            continue
        r = results[dataset]
        v, c = r["vanilla"], r["ct"]
        rows.append([dataset, r["n_train"], r["batch_size"], r["epochs"], v["epoch_seconds"], c["epoch_seconds"],
                     c["search_seconds"], c["loss_seconds"], c["update_seconds"], c["mean_steps"],
                     r["ratio"], r["cpu_ratio"], r["ideal_T"], r["ideal_used_steps"]])
    out = table(
        "Training overhead: CT vs vanilla (nce 1000, T 30, tau 0.75, ECCCo)", header, rows,
        "search/loss/update: CT seconds per epoch in each phase (vanilla's loss+update is the whole "
        "vanilla epoch). ideal = (n_train + nce * (steps + 3)) / n_train, counting one forward+backward "
        "sample pass per training row, per search step of each counterfactual and per x+/x'/x_AE row "
        "(see ideal_ratio in benchmarks/run.py). Per-epoch figures are means over the epochs of a run, "
        "the first (warm-up) left out; ratio is the median over repeats of the CT/vanilla ratio of wall "
        "seconds per epoch, ratio (CPU time) the same for the process's CPU seconds per epoch, which other "
        "processes on a shared machine disturb much less.",
    )
    adult = results.get("adult")
    if adult:
        out += table(
            f"Whole {adult['epochs']}-epoch runs on adult (batch 1000, nce 1000, T 30; wall time of train())",
            ("strategy", "seconds (median)", "ratio to vanilla", "CPU seconds", "CPU ratio", "test accuracy"),
            [["vanilla", adult["vanilla"]["wall_seconds"], 1.0, adult["vanilla"]["cpu_seconds"], 1.0,
              adult["vanilla"]["test_accuracy"]],
             ["ct", adult["ct"]["wall_seconds"], adult["ct"]["wall_seconds"] / adult["vanilla"]["wall_seconds"],
              adult["ct"]["cpu_seconds"], adult["ct"]["cpu_seconds"] / adult["vanilla"]["cpu_seconds"],
              adult["ct"]["test_accuracy"]]],
        )
    return out


# ------------------------------------------------------------------ scaling
def resample(spec: DatasetSpec, factor: int, seed: int = 0) -> DatasetSpec:
    """``spec`` with a training set of ``factor`` times its size, drawn with replacement."""
    if factor == 1:
        return spec
    rng = np.random.default_rng(seed)
    index = rng.integers(0, len(spec.X_train), factor * len(spec.X_train))
    return dataclasses.replace(spec, X_train=spec.X_train[index], y_train=spec.y_train[index])


def _timed_run(spec: DatasetSpec, settings: Settings, **overrides: Any) -> dict[str, float]:
    """Per-epoch figures of one training run (first epoch left out)."""
    return _epoch_figures(_train(spec, settings, **overrides).log, skip_first=True)


def measure_memory(factor: int, nce: int, settings: Settings) -> dict[str, float]:
    """Peak memory of a CT run in a fresh process (a process's allocator keeps freed memory, so
    in-process figures after earlier runs would hide what a run needs)."""
    payload = json.dumps({"factor": factor, "nce": nce, "device": settings.device, "data_dir": settings.data_dir,
                          "epochs": settings.scaling_epochs})
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--memory-child", payload],
                          capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"memory measurement failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def memory_child(payload: str) -> int:
    """Body of :func:`measure_memory`: prints one JSON line."""
    options = json.loads(payload)
    torch.set_num_threads(1)
    settings = Settings.make(True, options["device"], 1, options["data_dir"])
    spec = resample(load("adult", settings), options["factor"])
    # peak while training only: reading the CSV has its own, larger peak that is not training's
    with RSSSampler(options["device"]) as sampler:
        _train(spec, settings, strategy="ct", epochs=options["epochs"], batch_size=1000, max_steps=30,
               nce=options["nce"], seed=0)
    print(json.dumps({"peak_mib": sampler.peak, "working_mib": sampler.increase,
                      "data_mib": spec.X_train.nbytes / 2**20}))
    return 0


def bench_scaling(settings: Settings, log: Callable[[str], None]) -> dict[str, Any]:
    """Epoch time and peak memory against training-set size and nce; memory over epochs."""
    base = load("adult", settings)
    common = {"strategy": "ct", "epochs": settings.scaling_epochs, "batch_size": 1000, "max_steps": 30}
    results: dict[str, Any] = {"size": [], "nce": []}
    for factor in settings.size_factors:
        spec = resample(base, factor)
        memory = measure_memory(factor, 1000, settings)
        for repeat in range(settings.repeats):
            figures = _timed_run(spec, settings, nce=1000, seed=repeat, **common)
            results["size"].append({"factor": factor, "n_train": len(spec.X_train), "repeat": repeat,
                                    **memory, **figures})
            log(f"  size x{factor}: {figures['epoch_seconds']:.4f} s/epoch, peak {memory['peak_mib']:.0f} MiB "
                f"(working set {memory['working_mib']:.1f} MiB)")
    nan = float("nan")
    for nce in settings.nce_values:  # (the short mode skips the fresh-process memory runs here)
        memory = (measure_memory(1, nce, settings) if not settings.short
                  else {"peak_mib": nan, "working_mib": nan, "data_mib": nan})
        for repeat in range(settings.repeats):
            figures = _timed_run(base, settings, nce=nce, seed=repeat, **common)
            results["nce"].append({"nce": nce, "repeat": repeat, **memory, **figures})
            log(f"  nce {nce}: {figures['epoch_seconds']:.4f} s/epoch, search {figures['search_seconds']:.4f} s, "
                f"peak {memory['peak_mib']:.0f} MiB (working set {memory['working_mib']:.1f} MiB)")

    # memory over the epochs of one longer run
    sampler = RSSSampler(settings.device)
    with sampler, epoch_probe(sampler) as probe:
        _train(base, settings, nce=1000, seed=0, **{**common, "epochs": settings.memory_epochs})
    after = probe.after_epoch
    tail = after[1:] if len(after) > 2 else after
    slope = float(np.polyfit(np.arange(len(tail)), tail, 1)[0]) if len(tail) >= 2 else float("nan")
    results["memory_over_epochs"] = {
        "epochs": len(after),
        "mib_after_epoch": after,
        "growth_mib": (after[-1] - after[1]) if len(after) > 2 else float("nan"),
        "slope_mib_per_epoch": slope,
        "peak_increase_mib": sampler.increase,
    }
    log(f"  memory after each epoch (MiB): {', '.join(f'{m:.1f}' for m in after)}")
    results["exponents"] = _exponents(results)
    return results


def _grouped(rows: list[dict[str, Any]], key: str) -> dict[int, dict[str, float]]:
    groups: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row[key], []).append(row)
    fields = ("epoch_seconds", "search_seconds", "loss_seconds", "update_seconds", "mean_steps", "peak_mib",
              "working_mib", "data_mib")
    out = {}
    for value, members in sorted(groups.items()):
        out[value] = {f: median([m[f] for m in members]) for f in fields}
        if "n_train" in members[0]:
            out[value]["n_train"] = members[0]["n_train"]
    return out


def _exponents(results: dict[str, Any]) -> dict[str, float]:
    size = _grouped(results["size"], "factor")
    nce = _grouped(results["nce"], "nce")
    xs = [size[f]["n_train"] for f in size]
    ns = list(nce)
    return {
        "epoch_vs_size": growth_exponent(xs, [size[f]["epoch_seconds"] for f in size]),
        "loss_update_vs_size": growth_exponent(
            xs, [size[f]["loss_seconds"] + size[f]["update_seconds"] for f in size]
        ),
        "epoch_vs_nce": growth_exponent(ns, [nce[v]["epoch_seconds"] for v in ns]),
        "search_vs_nce": growth_exponent(ns, [nce[v]["search_seconds"] for v in ns]),
        "search_step_vs_nce": growth_exponent(
            ns, [nce[v]["search_seconds"] / max(nce[v]["mean_steps"], 1e-9) for v in ns]
        ),
    }


def report_scaling(results: dict[str, Any]) -> str:
    size = _grouped(results["size"], "factor")
    nce = _grouped(results["nce"], "nce")
    ex = results["exponents"]
    base_size = next(iter(size.values()))
    out = table(
        "Scaling with the training-set size (adult resampled; CT, nce 1000, T 30, batch 1000)",
        ("size", "n_train", "s/epoch", "x size 1", "search s", "loss+update s", "peak MiB", "training MiB",
         "data MiB"),
        [[f"{f}x", v["n_train"], v["epoch_seconds"], v["epoch_seconds"] / base_size["epoch_seconds"],
          v["search_seconds"], v["loss_seconds"] + v["update_seconds"], v["peak_mib"], v["working_mib"],
          v["data_mib"]] for f, v in size.items()],
        f"fitted growth exponents in n_train: epoch time {ex['epoch_vs_size']:.2f}, loss+update time "
        f"{ex['loss_update_vs_size']:.2f} (1.0 = linear; the search costs the same at every size). "
        "Memory is measured in a fresh process per row, during training only: peak MiB is the process's "
        "peak (resident set on CPU, sampled every 2 ms; allocated memory on CUDA), training MiB the peak "
        "above the memory before training started (data already loaded), data MiB the training matrix.",
    )
    base_nce = next(iter(nce.values()))
    out += table(
        "Scaling with nce (adult; CT, T 30, batch 1000)",
        ("nce", "s/epoch", "x smallest", "search s", "search steps", "peak MiB", "training MiB"),
        [[n, v["epoch_seconds"], v["epoch_seconds"] / base_nce["epoch_seconds"], v["search_seconds"],
          v["mean_steps"], v["peak_mib"], v["working_mib"]] for n, v in nce.items()],
        f"fitted growth exponents in nce: epoch time {ex['epoch_vs_nce']:.2f}, search time "
        f"{ex['search_vs_nce']:.2f}, search time per step {ex['search_step_vs_nce']:.2f} (1.0 = linear)",
    )
    mem = results["memory_over_epochs"]
    out += table(
        f"Memory over {mem['epochs']} CT epochs (adult, nce 1000)",
        ("resident MiB after epoch 2", "after last epoch", "growth MiB", "slope MiB/epoch", "peak above start MiB"),
        [[mem["mib_after_epoch"][1] if len(mem["mib_after_epoch"]) > 1 else float("nan"),
          mem["mib_after_epoch"][-1], mem["growth_mib"], mem["slope_mib_per_epoch"], mem["peak_increase_mib"]]],
    )
    return out


# --------------------------------------------------------------------- main
def targets_summary(results: dict[str, Any]) -> str:
    """The issue's targets, each with the measured figure and whether it is met."""
    rows = []
    tp = results.get("throughput", {}).get("adult")
    if tp:
        speedup = tp["speedup_eccco_vs_wachter"]
        by_name = {r["generator"]: r for r in tp["rows"]}
        ours, wachter = by_name.get("eccco", {}), by_name.get("carla-wachter", {})
        equal_validity = isinstance(wachter.get("valid"), float) and ours.get("valid", 0) >= wachter["valid"]
        rows.append(["eccco CFs/s >= 1000x CARLA Wachter on adult, validity >= Wachter's",
                     "-" if speedup is None
                     else f"{speedup:,.0f}x, valid {ours.get('valid')} vs {wachter.get('valid')}",
                     "n/a" if speedup is None else ("yes" if speedup >= 1000 and equal_validity else "no")])
    ov = results.get("overhead", {})
    if "adult" in ov:
        wall, cpu = ov["adult"]["ratio"], ov["adult"]["cpu_ratio"]
        rows.append([f"CT epoch on adult <= 2.5x vanilla ({ov['adult']['epochs']} epochs)",
                     f"{wall:.2f}x wall, {cpu:.2f}x CPU time", "yes" if min(wall, cpu) <= 2.5 else "no"])
    if "adult" in ov and ov["adult"]["epochs"] >= 100:
        s = ov["adult"]["ct"]["wall_seconds"]
        rows.append([f"{ov['adult']['epochs']}-epoch CT run on adult < 120 s", f"{s:.1f} s",
                     "yes" if s < 120 else "no"])
    sc = results.get("scaling", {})
    if sc:
        e = sc["exponents"]["epoch_vs_size"]
        rows.append(["epoch time vs training-set size: exponent <= 1.1", f"{e:.2f}", "yes" if e <= 1.1 else "no"])
        e = sc["exponents"]["search_vs_nce"]
        rows.append(["search time vs nce: exponent <= 1.1", f"{e:.2f}", "yes" if e <= 1.1 else "no"])
        g = sc["memory_over_epochs"]["growth_mib"]
        rows.append(["memory does not grow with epochs (< 5 MiB from epoch 2 to the last)", f"{g:+.1f} MiB",
                     "yes" if g < 5 else "no"])
    for label, case in results.get("threads", {}).get("cases", {}).items():
        ratio = case["default_over_best"]
        rows.append([f"default threads within 20% of the best fixed count: {label}", f"{ratio:.2f}x",
                     "yes" if ratio <= 1.2 else "no"])
    st = results.get("startup")
    if st:
        worst = max(st["--version"], st["--help"])
        rows.append(["ct-plugin --help / --version under 1 s", f"{worst:.2f} s", "yes" if worst < 1.0 else "no"])
    return table("Targets", ("target", "measured", "met"), rows)


def _threads_startup() -> Any:
    """benchmarks/threads_startup.py, loaded by path (this file also runs as a plain script)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("ct_plugin_bench_threads_startup", REPO / "benchmarks" /
                                                  "threads_startup.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def environment() -> dict[str, Any]:
    """Where the figures were taken."""
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--short", action="store_true", help="CI-sized run (well under 2 minutes)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda[:i]")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {', '.join(SECTIONS)}")
    parser.add_argument("--repeats", type=int, default=2, help="runs of every configuration (median shown; default 2)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads for the throughput/overhead/scaling sections (default: the "
                             "library's choice, as a user gets it: 1 for these small models; 0 = torch's own)")
    parser.add_argument("--data-dir", default=None,
                        help="folder with adult.csv (default: ct-plugin's search order, see "
                             "`ct-plugin datasets --where`)")
    parser.add_argument("--json", metavar="PATH", help="also write all figures to this JSON file")
    parser.add_argument("--quiet", action="store_true", help="print the tables only")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        return memory_child(args.memory_child)

    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda asked for, but torch sees no CUDA device")
    from ct_plugin.threads import resolve_threads

    if args.threads is None or args.threads > 0:
        # the sections below call the library's parts directly, so apply its rule here
        torch.set_num_threads(resolve_threads(args.threads))
    from ct_plugin.data.locate import find_file

    try:
        data_dir = str(find_file("adult.csv", args.data_dir).parent)
    except CTPluginError as exc:
        parser.error(str(exc))
    settings = Settings.make(args.short, args.device, args.repeats, data_dir)

    def log(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    env = environment()
    log(f"ct-plugin benchmarks ({'short' if args.short else 'full'}, device {args.device}, "
        f"{env['torch_threads']} torch threads, {env['cpus']} CPUs, torch {env['torch']})")
    results: dict[str, Any] = {"settings": dataclasses.asdict(settings), "environment": env}
    extra = _threads_startup()
    reports = {"throughput": report_throughput, "overhead": report_overhead, "scaling": report_scaling,
               "threads": lambda r: extra.report_threads(r, table),
               "startup": lambda r: extra.report_startup(r, table)}
    benches = {"throughput": bench_throughput, "overhead": bench_overhead, "scaling": bench_scaling,
               "threads": extra.bench_threads, "startup": extra.bench_startup}
    started = time.perf_counter()
    for section in SECTIONS:
        if section not in sections:
            continue
        log(f"[{section}]")
        t0 = time.perf_counter()
        results[section] = benches[section](settings, log)
        results.setdefault("section_seconds", {})[section] = time.perf_counter() - t0
        print(reports[section](results[section]), flush=True)
    print(targets_summary(results))
    total = time.perf_counter() - started
    results["total_seconds"] = total
    print(f"\n(total {total:.0f} s; {'short' if args.short else 'full'} mode, device {args.device}, "
          f"{env['torch_threads']} torch threads on {env['cpus']} CPUs)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
