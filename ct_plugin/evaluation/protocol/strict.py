"""The ``strict`` evaluation protocol (described in :mod:`ct_plugin.evaluation.protocol`).

:func:`evaluate_strict` draws paired factual rows for every run, counts every counterfactual
(valid or not), and compares each run with the reference by the per-round difference
(:func:`summarise`). Its names are re-exported by :mod:`ct_plugin.evaluation.protocol`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from ct_plugin.constraints import SearchConstraints
from ct_plugin.data.spec import DatasetSpec
from ct_plugin.evaluation import metrics as M
from ct_plugin.evaluation.protocol.common import (
    METRIC_SETTING,
    Evaluation,
    accepts_lambda_energy,
    build_posthoc,
    capped_class_rows,
    frozen_features,
    search_specs,
    summary_records,
)
from ct_plugin.evaluation.protocol.config import MAIN, PROTECTED, ProtocolConfig
from ct_plugin.generators.base import CounterfactualGenerator
from ct_plugin.runs.load import Run
from ct_plugin.sampling import other_class
from ct_plugin.torch_utils import predict_classes, resolve_device


def search_paths(
    generator: CounterfactualGenerator,
    model: torch.nn.Module,
    factuals: torch.Tensor,
    targets: torch.Tensor,
    constraints: SearchConstraints,
    tau: float,
    max_steps: int,
    every: int = 2,
) -> np.ndarray:
    """Search iterates at steps 0, every, 2*every, ..., T: array (n_points, n, d).

    The gradient generators are deterministic, so the search with ``max_steps=t`` gives the
    t-th iterate of the full search.
    """
    points = []
    for t in [*range(0, max_steps, every), max_steps]:
        result = generator.search(model, factuals, targets, constraints, tau=tau, max_steps=t, epsilon=0.0)
        points.append(result.counterfactuals.detach().cpu().numpy())
    return np.stack(points)


# --------------------------------------------------------------------- protocol
def _class_samples(spec: DatasetSpec, cap: int, gen: torch.Generator) -> dict[int, torch.Tensor]:
    return capped_class_rows(spec.X_train, spec.y_train, spec.n_classes, cap, gen,
                             f"the training split of {spec.name!r}")


def _targets_for(model: torch.nn.Module, factuals: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        predicted = model(factuals).argmax(dim=1)
    return other_class(offsets, predicted)


def evaluate_strict(runs: Sequence[Run], config: ProtocolConfig, labels: Sequence[str],
                    device: str | torch.device = "cpu") -> Evaluation:
    """The ``strict`` protocol (see the module doc): paired factual rows, every counterfactual counts.

    Models, data, searches and metrics live on ``device``; every random draw is made on the CPU.
    """
    t_start = time.perf_counter()
    device = resolve_device(device)
    torch.manual_seed(config.seed)
    spec = runs[0].spec
    specs = search_specs(spec, config)
    spec_main, spec_protected = specs[MAIN], specs[PROTECTED]
    generator_options = config.resolved_generator_options()
    constraints = {MAIN: SearchConstraints.from_spec(spec_main, device),
                   PROTECTED: SearchConstraints.from_spec(spec_protected, device)}
    gen = torch.Generator().manual_seed(config.seed)
    samples_of = {c: rows.to(device) for c, rows in _class_samples(spec, config.max_class_samples, gen).items()}
    bandwidth_of = {c: M.median_bandwidth(s) for c, s in samples_of.items()}
    X_test = torch.as_tensor(spec.X_test, dtype=torch.float32, device=device)
    y_test = torch.as_tensor(spec.y_test, dtype=torch.long, device=device)
    R, n, K = config.rounds, config.n_factuals or 100, spec.n_classes
    index = torch.randint(0, len(X_test), (R, n), generator=gen).reshape(-1).to(device)
    offsets = torch.randint(0, K - 1, (R * n,), generator=gen).to(device)
    factuals = X_test[index]
    attack_index = torch.randperm(len(X_test), generator=gen)[: config.attack_rows].to(device)
    ig_index = torch.randperm(len(X_test), generator=gen)[: config.ig_rows].to(device)
    ig_offsets = torch.randint(0, K - 1, (len(ig_index),), generator=gen).to(device)
    lambdas: list[float | None] = (
        [float(v) for v in config.lambda_energies] if accepts_lambda_energy(config.generator) else [None]
    )
    units = M.feature_units(spec.n_features, spec.onehot_groups).to(device)
    baseline = torch.as_tensor(spec.X_train, dtype=torch.float32, device=device).mean(dim=0)
    protected_columns = spec.protected_columns

    records: list[dict[str, Any]] = []
    robust_rows: list[dict[str, Any]] = []
    attribution_rows: list[dict[str, Any]] = []
    row_attr: list[dict[str, Any]] = []
    ig_maps: dict[str, np.ndarray] = {}
    examples: dict[str, dict[str, np.ndarray]] = {}
    example_lambda = lambdas[len(lambdas) // 2]

    for label, run in zip(labels, runs, strict=True):
        model = run.model.to(device).eval()
        targets = _targets_for(model, factuals, offsets)
        for setting, tau in ((MAIN, config.tau), (PROTECTED, config.cost_tau)):
            for lam in lambdas:
                generator = build_posthoc(config.generator, generator_options, lam)
                generator.fit(spec_main if setting == MAIN else spec_protected, device)
                torch.manual_seed(config.seed)
                t0 = time.perf_counter()
                result = generator.search(
                    model, factuals, targets, constraints[setting], tau=tau, max_steps=config.max_steps,
                    epsilon=0.0, rng=torch.Generator().manual_seed(config.seed),
                )
                seconds = time.perf_counter() - t0
                cfs = result.counterfactuals.detach()
                valid = predict_classes(model, cfs) == targets
                for r in range(R):
                    rows = slice(r * n, (r + 1) * n)
                    f, c, t, v = factuals[rows], cfs[rows], targets[rows], valid[rows]
                    rec: dict[str, Any] = {
                        "run": label, "setting": setting, "lambda_energy": lam, "round": r,
                        "validity": float(v.float().mean()),
                    }
                    if setting == MAIN:
                        ctx = M.MetricContext(
                            model, f, t, c, samples_of=samples_of, steps=result.steps[rows],
                            seconds=seconds * n / (R * n), onehot_groups=spec.onehot_groups,
                            bandwidth_of=bandwidth_of,
                        )
                        rec["ip"] = M.ip_metric(ctx)
                        rec["ip_star"] = M.ip_star(c, t, samples_of, bandwidth_of)
                        rec["redundancy"] = M.redundancy(model, f, c, t, units)
                        rec["mean_steps"] = float(result.steps[rows].float().mean())
                        rec["seconds_per_cf"] = seconds / (R * n)
                    else:
                        rec["cost"] = M.cost(f, c, v)
                    records.append(rec)
                if setting == MAIN and lam == example_lambda:
                    k = min(config.path_rows, n)
                    examples[label] = {
                        "factuals": factuals[:k].cpu().numpy(), "targets": targets[:k].cpu().numpy(),
                        "counterfactuals": cfs[:k].cpu().numpy(),
                    }
                    if spec.n_features == 2:
                        examples[label]["paths"] = search_paths(
                            generator, model, factuals[:k], targets[:k], constraints[MAIN], config.tau,
                            config.max_steps,
                        )
        # robustness on the (subsampled) test split
        xa, ya = X_test[attack_index], y_test[attack_index]
        for attack in M.ATTACKS:
            accuracies = M.robust_accuracy(model, xa, ya, config.epsilons, attack, **config.attack_options(attack))
            robust_rows += [
                {"run": label, "attack": attack, "epsilon": float(eps), "accuracy": acc}
                for eps, acc in zip(config.epsilons, accuracies, strict=True)
            ]
        # integrated gradients of the target logit at test factuals
        xi = X_test[ig_index]
        ti = _targets_for(model, xi, ig_offsets)
        attributions, ig_delta = M.integrated_gradients(model, xi, ti, baseline, config.ig_steps, return_delta=True)
        attribution_rows.append({
            "run": label,
            "protected_share": (
                M.attribution_share(attributions, protected_columns) if protected_columns else float("nan")
            ),
            "protected_features": ", ".join(spec.protected) if len(spec.protected) <= 4 else
            f"{len(spec.protected)} features",
            "uniform_share": len(protected_columns) / spec.n_features,
            "ig_convergence_delta": float(ig_delta.abs().mean()) if len(ig_delta) else float("nan"),
        })
        ig_maps[label] = attributions.abs().mean(dim=0).cpu().numpy()
        if spec.image_shape:
            shares = M.row_shares(attributions, spec.image_shape).cpu().numpy()
            row_attr += [{"run": label, "row": i, "share": float(s)} for i, s in enumerate(shares)]

    frame = pd.DataFrame.from_records(records)
    summary, comparison = summarise(frame, labels, config.confidence)
    return Evaluation(
        dataset=spec.name, labels=labels, runs=runs, config=config, rounds=frame, summary=summary,
        comparison=comparison, robustness=pd.DataFrame.from_records(robust_rows),
        attribution=pd.DataFrame.from_records(attribution_rows),
        row_attribution=pd.DataFrame.from_records(row_attr) if row_attr else None,
        ig_maps=ig_maps, examples=examples, seconds=time.perf_counter() - t_start,
        frozen={name: frozen_features(s) for name, s in specs.items()},
    )


def per_round(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (run, round) figures, averaged over the lambda grid: one column per metric.

    ``validity_protected`` is the validity of the protected setting (searched at ``cost_tau``); both
    validities are the share of counterfactuals whose predicted class (argmax) is the target.
    """
    main = frame[frame.setting == MAIN].drop(columns=["setting", "lambda_energy", "cost"], errors="ignore")
    prot = frame[frame.setting == PROTECTED][["run", "round", "validity", "cost"]]
    main = main.groupby(["run", "round"], sort=False).mean(numeric_only=True)
    prot = prot.groupby(["run", "round"], sort=False).mean(numeric_only=True)
    prot = prot.rename(columns={"validity": "validity_protected"})
    return main.join(prot, how="outer").reset_index()


def bootstrap_interval(differences: np.ndarray, confidence: float) -> tuple[float, float]:
    """Percentile interval of per-round differences (nan rounds dropped)."""
    d = differences[np.isfinite(differences)]
    if len(d) == 0:
        return float("nan"), float("nan")
    alpha = (1.0 - confidence) / 2.0
    return float(np.quantile(d, alpha)), float(np.quantile(d, 1.0 - alpha))


def summarise(frame: pd.DataFrame, labels: Sequence[str], confidence: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Means and standard errors per run, and each run's comparison with the first (reference) run."""
    rounds = per_round(frame)
    metrics = [m for m in METRIC_SETTING if m in rounds.columns]
    summary_rows, comparison_rows = summary_records(rounds, labels, metrics), []
    reference = labels[0]
    ref = rounds[rounds.run == reference].set_index("round")
    for label in labels[1:]:
        other = rounds[rounds.run == label].set_index("round")
        for metric in metrics:
            a = ref[metric].to_numpy(dtype=float)
            b = other[metric].reindex(ref.index).to_numpy(dtype=float)
            diff = a - b  # positive: the run is lower than the reference
            low, high = bootstrap_interval(diff, confidence)
            base_mean = float(np.nanmean(a)) if np.isfinite(a).any() else float("nan")
            run_mean = float(np.nanmean(b)) if np.isfinite(b).any() else float("nan")
            reduction = 100.0 * (base_mean - run_mean) / abs(base_mean) if base_mean not in (0.0,) else float("nan")
            comparison_rows.append({
                "reference": reference, "run": label, "metric": metric, "setting": METRIC_SETTING[metric],
                "reference_mean": base_mean, "run_mean": run_mean, "reduction_pct": reduction,
                "diff_low": low, "diff_high": high,
                "significant": bool(np.isfinite(low) and (low > 0 or high < 0)),
            })
    return pd.DataFrame(summary_rows), pd.DataFrame(comparison_rows)
