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
# This file is the driver (command line, sections in order, targets, JSON). Each section lives in
# a module of its own beside it: throughput.py, overhead.py, scaling.py and threads_startup.py,
# with what they share in common.py and the targets table in targets.py. Every name they define
# is re-exported here, so code that loads this file (tests/scale/test_benchmarks.py) finds them.

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from anywhere without installing
    sys.path.insert(0, str(REPO))

from benchmarks.common import (  # noqa: E402, F401
    RSSSampler,
    Settings,
    _epoch_figures,
    _EpochProbe,
    _fmt,
    _sync,
    _train,
    epoch_probe,
    load,
    median,
    table,
)
from benchmarks.overhead import bench_overhead, ideal_ratio, report_overhead  # noqa: E402, F401
from benchmarks.scaling import (  # noqa: E402, F401
    _exponents,
    _grouped,
    _timed_run,
    bench_scaling,
    growth_exponent,
    measure_memory,
    memory_child,
    report_scaling,
    resample,
)
from benchmarks.targets import targets_summary  # noqa: E402
from benchmarks.throughput import (  # noqa: E402, F401
    OUR_GENERATORS,
    PEER_GENERATORS,
    THROUGHPUT_HEADER,
    _build_generator,
    bench_throughput,
    report_throughput,
    time_search,
)
from ct_plugin.errors import CTPluginError  # noqa: E402

SECTIONS = ("throughput", "overhead", "scaling", "threads", "startup")


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
