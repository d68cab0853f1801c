"""Benchmark section ``throughput`` of ``benchmarks/run.py``.

Counterfactuals per second of the batched ``generic`` and ``eccco`` searches (T 50, tau 0.95)
against CARLA's Wachter and Growing Spheres and DiCE's random / genetic / gradient methods, all
through the generator registry, on the same trained model and the same factuals (moons and
adult), with the validity of each. A method whose host library is missing prints
``not installed`` / ``unavailable: reason``.
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch

import ct_plugin
from benchmarks.common import Settings, _sync, _train, load, median, table
from ct_plugin.constraints import SearchConstraints
from ct_plugin.data.spec import DatasetSpec
from ct_plugin.errors import CTPluginError, UnknownNameError

OUR_GENERATORS = ("generic", "eccco")
PEER_GENERATORS = ("carla-wachter", "carla-growing-spheres", "dice-random", "dice-genetic", "dice-gradient")


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
