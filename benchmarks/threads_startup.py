"""Benchmark sections ``threads`` and ``startup`` of ``benchmarks/run.py``.

``threads``
    Training (``ct_plugin.train``) and evaluation (``ct-plugin evaluate``) with the library's
    default thread count against every fixed count from 1 to the number of cores. Each
    measurement runs in a fresh interpreter with no ``OMP_NUM_THREADS``, so "default" is what a
    user who sets nothing gets. Target: the default within 20% of the best fixed count.
``startup``
    Wall time of ``ct-plugin --version`` and ``ct-plugin --help`` (the installed console
    script), median of a few calls. Target: under 1 s.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

_CHILD = r"""
import json, sys, time, contextlib, io
payload = json.loads(sys.argv[1])
import torch
import ct_plugin
from ct_plugin.cli import main
threads = payload["threads"]
if payload["kind"] == "train":
    spec = ct_plugin.load_dataset(payload["dataset"], data_dir=payload["data_dir"], **payload["options"])
    start = time.perf_counter()
    ct_plugin.train(spec, quiet=True, threads=threads, **payload["train"])
    seconds = time.perf_counter() - start
else:
    argv = ["evaluate", *payload["runs"], "--out", payload["out"], *payload["flags"]]
    if threads is not None:
        argv += ["--threads", str(threads)]
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        status = main(argv)
    seconds = time.perf_counter() - start
    assert status == 0, status
print(json.dumps({"seconds": seconds}))
"""


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["CT_PLUGIN_PROGRESS"] = "0"
    return env


def _time_child(payload: dict[str, Any]) -> float:
    done = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(payload)], capture_output=True, text=True,
                          env=_child_env(), check=False)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark child failed: {done.stderr[-2000:]}")
    return float(json.loads(done.stdout.strip().splitlines()[-1])["seconds"])


def _compare(payload: dict[str, Any], repeats: int, counts: list[int]) -> dict[str, Any]:
    """Fastest seconds of the default and of every fixed count over ``repeats`` rounds.

    The settings are interleaved, and each round starts with a different one, so that a burst of
    load from other processes does not fall on one setting only; the minimum is the least
    disturbed figure on a shared machine.
    """
    keys = ["default", *(str(c) for c in counts)]
    times: dict[str, list[float]] = {key: [] for key in keys}
    for r in range(repeats):
        for key in keys[r % len(keys):] + keys[: r % len(keys)]:
            times[key].append(_time_child({**payload, "threads": None if key == "default" else int(key)}))
    medians = {key: min(values) for key, values in times.items()}
    best_key = min((k for k in medians if k != "default"), key=medians.__getitem__)
    return {"seconds": medians, "best_fixed": int(best_key),
            "default_over_best": medians["default"] / medians[best_key]}


def bench_threads(settings: Any, log: Callable[[str], None]) -> dict[str, Any]:
    """Default thread count against each fixed count, for training and for evaluation."""
    import ct_plugin
    from ct_plugin.threads import available_cpus, default_threads

    counts = list(range(1, available_cpus() + 1))
    epochs = 1 if settings.short else 3
    repeats = 1 if settings.short else max(settings.repeats, 3)
    nce = 200 if settings.short else 1000
    moons = {"n_samples": 1000} if settings.short else {}
    results: dict[str, Any] = {"counts": counts, "cases": {}}
    cases = [(f"train moons (batch 30, nce {nce})", "moons", moons, {"batch_size": 30})]
    if not settings.short:
        cases.append((f"train adult (batch 1000, nce {nce})", "adult", {"max_rows": 20000}, {"batch_size": 1000}))
    for label, dataset, options, train in cases:
        log(f"  {label}")
        payload = {"kind": "train", "dataset": dataset, "data_dir": settings.data_dir, "options": options,
                   "train": {"epochs": epochs, "nce": nce, "strategy": "ct", **train}}
        results["cases"][label] = _compare(payload, repeats, counts)
    with tempfile.TemporaryDirectory() as tmp:
        runs = []
        for strategy in ("vanilla", "ct"):
            out = Path(tmp) / strategy
            ct_plugin.train("moons", strategy=strategy, epochs=epochs, out=out, quiet=True, nce=nce,
                            dataset_options=moons)
            runs.append(str(out))
        rounds, factuals = ("2", "20") if settings.short else ("10", "100")
        label = f"evaluate moons ({rounds} rounds, {factuals} factuals, 1 lambda_energy)"
        log(f"  {label}")
        payload = {"kind": "evaluate", "runs": runs, "out": str(Path(tmp) / "eval"),
                   "flags": ["--rounds", rounds, "--n-factuals", factuals, "--lambda-energy", "1"]}
        results["cases"][label] = _compare(payload, repeats, counts)
        model = ct_plugin.load_model(runs[0])
    results["default_for_mlp"] = default_threads(model, 1000)
    return results


def report_threads(results: dict[str, Any], table: Callable[..., str]) -> str:
    """The table of the ``threads`` section (``table`` formats it, as in ``run.py``)."""
    counts = results["counts"]
    rows = []
    for label, case in results["cases"].items():
        seconds = case["seconds"]
        rows.append([label, f"{seconds['default']:.2f}", *(f"{seconds[str(c)]:.2f}" for c in counts),
                     case["best_fixed"], f"{case['default_over_best']:.2f}"])
    header = ("work", "default s", *(f"{c} thread{'s' if c > 1 else ''} s" for c in counts), "best", "default/best")
    return table("Threads: the library's default against fixed counts (fresh interpreter each, no OMP_NUM_THREADS)",
                 header, rows, note=f"default for the reference MLP: {results['default_for_mlp']} thread(s); "
                 "target: default/best <= 1.2")


def _cli() -> list[str]:
    script = Path(sys.executable).parent / "ct-plugin"
    if script.is_file():
        return [str(script)]
    found = shutil.which("ct-plugin")
    return [found] if found else [sys.executable, "-m", "ct_plugin.cli"]


def bench_startup(settings: Any, log: Callable[[str], None]) -> dict[str, Any]:
    """Wall seconds of ``ct-plugin --version`` and ``--help`` (median of 5 calls)."""
    results: dict[str, Any] = {"command": " ".join(_cli())}
    for flag in ("--version", "--help"):
        times = []
        for _ in range(5):
            start = time.perf_counter()
            subprocess.run([*_cli(), flag], capture_output=True, check=True, env=_child_env())
            times.append(time.perf_counter() - start)
        results[flag] = statistics.median(times)
        log(f"  ct-plugin {flag}: {results[flag]:.2f} s")
    return results


def report_startup(results: dict[str, Any], table: Callable[..., str]) -> str:
    """The table of the ``startup`` section (``table`` formats it, as in ``run.py``)."""
    rows = [[f"ct-plugin {flag}", f"{results[flag]:.2f}", "yes" if results[flag] < 1.0 else "no"]
            for flag in ("--version", "--help")]
    return table("Start-up of the command line (median of 5 calls)", ("command", "seconds", "under 1 s"), rows,
                 note=f"console script: {results['command']}")
