"""Benchmark section ``scaling`` of ``benchmarks/run.py``.

Epoch time and peak memory as the adult training set is resampled to 1x/2x/4x/8x its size and
as nce grows 250..4000, with the fitted growth exponent (slope of log time on log size), and the
resident memory after every epoch of one longer run (it must not grow). Peak memory is measured
in a fresh process per configuration (:func:`measure_memory` runs ``run.py --memory-child``).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.common import RSSSampler, Settings, _epoch_figures, _train, epoch_probe, load, median, table
from ct_plugin.data.spec import DatasetSpec

#: the driver script; the memory measurements run it again with ``--memory-child``
RUN = Path(__file__).resolve().with_name("run.py")


def growth_exponent(sizes: Sequence[float], values: Sequence[float]) -> float:
    """Least-squares slope of log(value) on log(size): 1.0 is linear growth."""
    x = np.log(np.asarray(sizes, dtype=float))
    y = np.log(np.asarray(values, dtype=float))
    if len(x) < 2 or not np.all(np.isfinite(y)):
        return float("nan")
    return float(np.polyfit(x, y, 1)[0])


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
    done = subprocess.run([sys.executable, str(RUN), "--memory-child", payload],
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
