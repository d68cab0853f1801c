"""The paper's evaluation protocol, as the reference's code runs it (METHOD.md section 5).

Differences from the project's ``strict`` protocol (:mod:`ct_plugin.evaluation.protocol.strict`):

* **Draws.** Per round and per ``lambda_energy``: a factual class drawn uniformly over the
  classes and a different target class; then, for *each model separately*, ``n`` test rows that
  this model predicts as the factual class, drawn with replacement. Rounds are paired across
  models (same classes), rows are not.
* **Generator.** ECCCo with the reference's settings (``preset="reference"``: step 0.1, energy
  ridge 1e-3, decaying energy multiplier, one-hot projection per step) and ``lambda_cost`` 0.
* **Valid counterfactuals only** (``p(y+) >= 0.5``) enter IP, IP* and cost.
* **IP** is the mean L1 distance to (up to 1000) target-class rows of the *test* split; **IP***
  the unbiased squared MMD to them with a Gaussian kernel of fixed length-scale (5.0 as the code
  ran it, 0.5 as the paper's text says), negative estimates clamped to 0.
* **Comparison.** Per round the run/reference ratio of the round means (each the average over
  the ``lambda_energy`` grid); reduction ``-(mean ratio - 1) * 100``; significant when the
  percentile interval over rounds of the difference excludes 0.
* **Robustness**: PGD with 40 steps of 0.01 and a random start; **integrated gradients** with a
  baseline drawn from U(-1, 1), the median over rounds of the protected share.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from ct_plugin.constraints import SearchConstraints
from ct_plugin.data.spec import DatasetSpec
from ct_plugin.errors import CTPluginError
from ct_plugin.evaluation import metrics as M
from ct_plugin.evaluation.protocol.common import (
    Evaluation,
    accepts_lambda_energy,
    build_posthoc,
    capped_class_rows,
    frozen_features,
    search_specs,
)
from ct_plugin.evaluation.protocol.config import MAIN, PROTECTED, ProtocolConfig
from ct_plugin.evaluation.protocol.ratios import summarise_paper
from ct_plugin.runs.load import Run
from ct_plugin.sampling import other_class
from ct_plugin.torch_utils import resolve_device

RATIO_METRICS = ("ip", "ip_star", "ip_star_0.5", "cost")
"""Metrics compared by the per-round ratio (lower is better)."""


# ------------------------------------------------------------------ metrics
def l1_implausibility(counterfactuals: torch.Tensor, samples: torch.Tensor) -> torch.Tensor:
    """Per-row IP of the paper: mean L1 distance from each counterfactual to every row of ``samples``."""
    return M.implausibility(counterfactuals, samples, p=1.0, name="l1_implausibility")


def fixed_kernel_mmd2(x: torch.Tensor, y: torch.Tensor, length_scale: float) -> float:
    """Unbiased squared MMD with ``k(a, b) = exp(-||a - b||^2 / (2 l^2))``, clamped at 0 (nan if < 2 rows).

    The kernel is KernelFunctions.jl's ``with_lengthscale(GaussianKernel(), l)``, as the reference
    evaluates it; the clamp follows the reference too (small negative estimates are numerical).
    """
    if length_scale <= 0:
        raise CTPluginError(f"length_scale must be > 0, got {length_scale}")
    if len(x) < 2 or len(y) < 2:
        return float("nan")
    return max(0.0, M.mmd2_unbiased(x, y, length_scale, M.cached_self_term(y, length_scale)))


def round_metrics(
    factuals: torch.Tensor,
    counterfactuals: torch.Tensor,
    probability: torch.Tensor,
    samples: torch.Tensor,
    length_scales: Sequence[float],
    threshold: float = 0.5,
) -> dict[str, float]:
    """Validity, IP, IP* at each length-scale and cost of one round (one target class), valid rows only.

    ``probability`` is each counterfactual's probability of the target class; a counterfactual is
    valid when it is at least ``threshold``. Metrics over an empty valid set are nan.
    """
    valid = probability >= threshold
    out = {"validity": float(valid.float().mean()) if len(valid) else float("nan")}
    good = counterfactuals[valid]
    out["ip"] = float(l1_implausibility(good, samples).mean()) if len(good) else float("nan")
    for i, scale in enumerate(length_scales):
        out[ip_star_name(scale, i)] = fixed_kernel_mmd2(good, samples, scale)
    out["cost"] = float(M.l1_cost(factuals[valid], good).mean()) if len(good) else float("nan")
    return out


def batched_round_metrics(
    factuals: torch.Tensor,
    counterfactuals: torch.Tensor,
    probability: torch.Tensor,
    target_class: torch.Tensor,
    samples_of: dict[int, torch.Tensor],
    length_scales: Sequence[float],
    threshold: float = 0.5,
    chunk: int = 16,
    feature_weights: torch.Tensor | None = None,
) -> dict[str, np.ndarray]:
    """:func:`round_metrics` for many rounds at once: tensors (rounds, n, d) / (rounds, n); arrays (rounds,).

    Every round's kernel and distance blocks are computed in batches of ``chunk`` rounds, so the
    cost does not grow with a Python loop over rounds; the samples' own kernel term is computed once
    per class and length-scale. With ``feature_weights`` (one per feature, e.g. the inverse MAD of
    :func:`~ct_plugin.evaluation.metrics.mad_weights`) also ``cost_mad``, the weighted L1 cost.
    """
    rounds, n = probability.shape
    device = counterfactuals.device
    target_class = target_class.to(device)
    valid = (probability >= threshold).float()
    count = valid.sum(dim=1)
    out = {"validity": (count / n).cpu().numpy().astype(float)}
    ip = torch.full((rounds,), float("nan"), device=device)
    stars = {ip_star_name(scale, i): torch.full_like(ip, float("nan")) for i, scale in enumerate(length_scales)}
    cost = (counterfactuals - factuals).abs().sum(dim=2)
    with_any = count > 0
    cost_mean = torch.where(with_any, (cost * valid).sum(dim=1) / count.clamp_min(1), float("nan"))
    for cls in torch.unique(target_class).tolist():
        samples = samples_of[int(cls)]
        rows = (target_class == cls).nonzero().flatten()
        for part in torch.split(rows, chunk):
            x, v, m = counterfactuals[part], valid[part], count[part]
            l1 = torch.cdist(x, samples[None].expand(len(part), -1, -1), p=1.0).mean(dim=2)  # (r, n)
            ip[part] = torch.where(m > 0, (l1 * v).sum(dim=1) / m.clamp_min(1), float("nan"))
            sq_xy = torch.cdist(x, samples[None].expand(len(part), -1, -1)).pow(2)  # (r, n, N)
            sq_xx = torch.cdist(x, x).pow(2)  # (r, n, n)
            pair = v[:, :, None] * v[:, None, :]
            pair = pair * (1 - torch.eye(n, device=device))[None]
            for i, scale in enumerate(length_scales):
                k_xy = torch.exp(-sq_xy / (2 * scale**2)).mean(dim=2)
                k_xx = torch.exp(-sq_xx / (2 * scale**2))
                term_x = (k_xx * pair).sum(dim=(1, 2)) / (m * (m - 1)).clamp_min(1)
                cross = (k_xy * v).sum(dim=1) / m.clamp_min(1)
                value = (term_x + M.cached_self_term(samples, scale) - 2 * cross).clamp_min(0.0)
                stars[ip_star_name(scale, i)][part] = torch.where(m >= 2, value, float("nan"))
    out["ip"] = ip.cpu().numpy().astype(float)
    out.update({name: values.cpu().numpy().astype(float) for name, values in stars.items()})
    out["cost"] = cost_mean.cpu().numpy().astype(float)
    if feature_weights is not None:
        weighted = ((counterfactuals - factuals).abs() * feature_weights.to(device)).sum(dim=2)
        out["cost_mad"] = torch.where(with_any, (weighted * valid).sum(dim=1) / count.clamp_min(1),
                                      float("nan")).cpu().numpy().astype(float)
    return out


def ip_star_name(length_scale: float, position: int) -> str:
    """``ip_star`` for the first length-scale (the code's 5.0), ``ip_star_<l>`` for the others."""
    return "ip_star" if position == 0 else f"ip_star_{length_scale:g}"


# -------------------------------------------------------------------- draws
#: version of the paper protocol's random draws, part of every cached evaluation's fingerprint:
#: 2 = factual rows drawn with common random numbers across models (see draw_factual_rows)
DRAW_VERSION = 2


def draw_round_classes(rounds: int, n_lambdas: int, n_classes: int, gen: torch.Generator) -> torch.Tensor:
    """(rounds, n_lambdas, 2) factual and target classes: factual uniform, target uniform among the others."""
    factual = torch.randint(0, n_classes, (rounds, n_lambdas), generator=gen)
    offset = torch.randint(0, n_classes - 1, (rounds, n_lambdas), generator=gen)
    target = other_class(offset, factual)
    return torch.stack([factual, target], dim=2)


def draw_factual_rows(
    predicted: torch.Tensor, factual_class: torch.Tensor, n: int, gen: torch.Generator
) -> torch.Tensor:
    """Row indices (…, n) of rows predicted as each draw's factual class, with replacement; -1 where none is.

    Each draw is a uniform quantile of the model's pool (``floor(u * len(pool))``, ``u`` from ``gen``,
    drawn whatever the pool), so two models evaluated with the same generator state share their
    random numbers: identical models get identical rows, similar pools mostly the same rows (common
    random numbers; each model's draw is still uniform over the rows it predicts as the class).
    """
    flat = factual_class.reshape(-1)
    rows = torch.full((len(flat), n), -1, dtype=torch.long)
    for cls in torch.unique(flat).tolist():
        pool = torch.nonzero(predicted == cls).flatten()
        where = torch.nonzero(flat == cls).flatten()
        u = torch.rand((len(where), n), generator=gen, dtype=torch.float64)
        if len(pool):
            rows[where] = pool[(u * len(pool)).long().clamp_max(len(pool) - 1)]
    return rows.reshape(*factual_class.shape, n)


def target_class_samples(spec: DatasetSpec, cap: int, gen: torch.Generator) -> dict[int, torch.Tensor]:
    """Up to ``cap`` test rows of every class (X+ of the metrics), drawn once and shared by all models."""
    return capped_class_rows(spec.X_test, spec.y_test, spec.n_classes, cap, gen, f"the test split of {spec.name!r}")


def default_n_factuals(spec: DatasetSpec) -> int:
    """The reference's factuals per round: 250 (2-D synthetic), 25 (images), 100 (tables)."""
    if spec.image_shape:
        return 25
    if spec.n_features == 2:
        return 250
    return 100


# ------------------------------------------------------------------ protocol
def evaluate_paper(runs: Sequence[Run], config: ProtocolConfig, labels: Sequence[str], progress: bool = False,
                   device: str | torch.device = "cpu") -> Evaluation:
    """Run the paper's protocol on loaded runs of one dataset (the first is the reference).

    Models, data, searches and metrics live on ``device`` (each run's model is moved there); random draws
    are made on the CPU.
    """
    t_start = time.perf_counter()
    device = resolve_device(device)
    spec = runs[0].spec
    n = config.n_factuals or default_n_factuals(spec)
    specs = search_specs(spec, config)
    constraints = {name: SearchConstraints.from_spec(s, device) for name, s in specs.items()}
    gen = torch.Generator().manual_seed(config.seed)
    samples_of = {c: rows.to(device) for c, rows in target_class_samples(spec, config.max_class_samples, gen).items()}
    lambdas: list[float | None] = (
        [float(v) for v in config.lambda_energies] if accepts_lambda_energy(config.generator) else [None]
    )
    draws = {setting: draw_round_classes(config.rounds, len(lambdas), spec.n_classes, gen) for setting in specs}
    X_test = torch.as_tensor(spec.X_test, dtype=torch.float32, device=device)
    y_test = torch.as_tensor(spec.y_test, dtype=torch.long, device=device)
    mad = M.mad_weights(torch.as_tensor(spec.X_train, dtype=torch.float32, device=device))
    options = config.resolved_generator_options()
    records: list[dict[str, Any]] = []
    examples: dict[str, dict[str, np.ndarray]] = {}
    robust_rows: list[dict[str, Any]] = []
    attribution_rows: list[dict[str, Any]] = []
    ig_maps: dict[str, np.ndarray] = {}
    for label, run in zip(labels, runs, strict=True):
        model = run.model.to(device).eval()
        with torch.no_grad():
            predicted = torch.cat([model(part).argmax(dim=1) for part in torch.split(X_test, 65536)]).cpu()
        for setting, tau in ((MAIN, config.tau), (PROTECTED, config.cost_tau)):
            if setting not in specs:
                continue
            # seeded by the setting alone: a run's draws do not depend on the other runs or on its label,
            # and every run uses the same random numbers (common random numbers, see draw_factual_rows)
            row_gen = torch.Generator().manual_seed(config.seed * 7919 + zlib.crc32(setting.encode()))
            classes = draws[setting]
            rows = draw_factual_rows(predicted, classes[..., 0], n, row_gen)  # (R, L, n)
            for li, lam in enumerate(lambdas):
                generator = build_posthoc(config.generator, options, lam)
                generator.fit(specs[setting], device)
                have = (rows[:, li, 0] >= 0).nonzero().flatten()
                if len(have):
                    index = rows[have, li].reshape(-1).to(device)
                    factuals = X_test[index]
                    targets = classes[have, li, 1].repeat_interleave(n).to(device)
                    result = generator.search(
                        model, factuals, targets, constraints[setting], tau=tau, max_steps=config.max_steps,
                        epsilon=0.0, rng=torch.Generator().manual_seed(config.seed),
                    )
                    cfs = result.counterfactuals.detach()
                    with torch.no_grad():
                        prob = torch.softmax(model(cfs), dim=1).gather(1, targets[:, None]).squeeze(1)
                    if setting == MAIN and li == len(lambdas) // 2:
                        k = min(config.path_rows, len(factuals))
                        shown = {"factuals": factuals, "targets": targets, "counterfactuals": cfs, "valid": prob >= 0.5}
                        examples[label] = {key: value[:k].cpu().numpy() for key, value in shown.items()}
                computed: dict[str, np.ndarray] = {}
                if len(have):
                    shape = (len(have), n)
                    computed = batched_round_metrics(
                        factuals.reshape(*shape, -1), cfs.reshape(*shape, -1), prob.reshape(shape),
                        classes[have, li, 1], samples_of, config.length_scales,
                        feature_weights=mad if setting == PROTECTED else None)
                    computed["mean_steps"] = result.steps.reshape(shape).float().mean(dim=1).cpu().numpy().astype(float)
                slot_of = {int(r): i for i, r in enumerate(have.tolist())}
                keep = ("validity", "cost", "cost_mad") if setting == PROTECTED else tuple(
                    k for k in computed if k != "cost")
                for r in range(config.rounds):
                    rec: dict[str, Any] = {"run": label, "setting": setting, "lambda_energy": lam, "round": r,
                                           "factual_class": int(classes[r, li, 0]),
                                           "target_class": int(classes[r, li, 1])}
                    i = slot_of.get(r)
                    # nan where the model predicts no test row as this round's factual class
                    rec.update({k: float(computed[k][i]) if i is not None else float("nan")
                                for k in (keep or ("validity",))})
                    records.append(rec)
        robust_rows += _robustness(label, model, X_test, y_test, config, gen_seed=config.seed)
        row, ig_map = _attribution(label, model, spec, X_test, config)
        attribution_rows.append(row)
        ig_maps[label] = ig_map
    frame = pd.DataFrame.from_records(records)
    summary, comparison = summarise_paper(frame, labels, config.confidence)
    return Evaluation(
        dataset=spec.name, labels=list(labels), runs=list(runs), config=config, rounds=frame, summary=summary,
        comparison=comparison, robustness=pd.DataFrame.from_records(robust_rows),
        attribution=pd.DataFrame.from_records(attribution_rows), row_attribution=None, ig_maps=ig_maps,
        examples=examples, seconds=time.perf_counter() - t_start,
        frozen={name: frozen_features(s) for name, s in specs.items()},
    )


def _robustness(label: str, model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor, config: ProtocolConfig,
                gen_seed: int) -> list[dict[str, Any]]:
    gen = torch.Generator().manual_seed(gen_seed)
    index = torch.randperm(len(X), generator=gen)[: config.attack_rows].to(X.device)
    xa, ya = X[index], y[index]
    rows = []
    for attack in M.ATTACKS:
        options = config.attack_options(attack)
        accuracies = M.robust_accuracy(model, xa, ya, config.epsilons, attack, **options)
        rows += [{"run": label, "attack": attack, "epsilon": float(eps), "accuracy": acc}
                 for eps, acc in zip(config.epsilons, accuracies, strict=True)]
    return rows


def _attribution(label: str, model: torch.nn.Module, spec: DatasetSpec, X: torch.Tensor,
                 config: ProtocolConfig) -> tuple[dict[str, Any], np.ndarray]:
    """Protected share of integrated gradients, baseline U(-1, 1) drawn per round; the median over rounds."""
    gen = torch.Generator().manual_seed(config.seed + 1)
    index = torch.randperm(len(X), generator=gen)[: config.ig_rows]
    chunks = torch.tensor_split(index, min(config.ig_rounds, len(index)))
    shares, maps, deltas = [], [], []
    for chunk in chunks:
        x = X[chunk.to(X.device)]
        with torch.no_grad():
            predicted = model(x).argmax(dim=1)
        offsets = torch.randint(0, spec.n_classes - 1, (len(x),), generator=gen).to(X.device)
        targets = other_class(offsets, predicted)
        baseline = (torch.rand(spec.n_features, generator=gen) * 2.0 - 1.0).to(X.device)
        attributions, delta = M.integrated_gradients(model, x, targets, baseline, config.ig_steps, return_delta=True)
        maps.append(attributions.abs().mean(dim=0))
        deltas.append(delta.abs())
        if spec.protected_columns:
            shares.append(M.attribution_share(attributions, spec.protected_columns))
    share = float(np.median(shares)) if shares else float("nan")
    row = {
        "run": label, "protected_share": share,
        "protected_features": ", ".join(spec.protected) if len(spec.protected) <= 4 else
        f"{len(spec.protected)} features",
        "uniform_share": len(spec.protected_columns) / spec.n_features,
        "ig_convergence_delta": float(torch.cat(deltas).mean()) if deltas else float("nan"),
    }
    return row, torch.stack(maps).mean(dim=0).cpu().numpy()
