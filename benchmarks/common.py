"""What the sections of ``benchmarks/run.py`` share: the run's sizes and the measuring helpers.

:class:`Settings` (the sizes of one run; ``--short`` shrinks everything for CI), the median,
the peak-memory sampler (:class:`RSSSampler`), a per-epoch probe (:func:`epoch_probe`), the
Markdown :func:`table` every section prints, and dataset loading / training / per-epoch figures
as every section uses them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import statistics
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

import ct_plugin
from ct_plugin.data.spec import DatasetSpec


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


def _epoch_figures(log: list[dict[str, Any]], skip_first: bool) -> dict[str, float]:
    records = log[1:] if skip_first and len(log) > 1 else log
    keys = ("epoch_seconds", "search_seconds", "loss_seconds", "update_seconds")
    figures = {k: float(np.mean([r[k] for r in records])) for k in keys}
    steps = [r["mean_steps"] for r in records if r.get("mean_steps") is not None]
    figures["mean_steps"] = float(np.mean(steps)) if steps else float("nan")
    return figures
