"""Evaluation protocols over trained runs: ``paper`` (the default) and ``strict``.

``paper`` is the paper's protocol exactly as the reference's code runs it (docs/method.md;
:mod:`ct_plugin.evaluation.paper`). ``strict`` is this project's earlier, stricter protocol,
described below: every counterfactual counts (valid or not), factual rows are paired across
models, X+ are training rows, IP is Euclidean and IP* uses a median-heuristic kernel.

For every run (the first one is the reference, normally the vanilla baseline):

1. **Main setting**: test-time counterfactuals with a post-hoc generator (ECCCo by default) at
   ``tau`` 0.95 and ``T`` 50, once per ``lambda_energy`` of the grid, for factuals drawn from the
   test split (with replacement) and targets drawn uniformly from the classes other than the
   model's prediction; metrics validity, IP, IP*, redundancy, mean steps, seconds per
   counterfactual.
2. **Protected setting**: the same draws, ``tau`` 0.5, the protected features immutable;
   metrics validity and cost (of valid counterfactuals).
3. **Bootstrap**: ``rounds`` independent draws of ``n_factuals`` factuals/targets (the same
   draws for every run, so differences are paired). A round's figure is the average over the
   ``lambda_energy`` grid. Reported: the mean over rounds, the standard error (standard deviation
   of the per-round figure), the percentage reduction of each run vs the reference, and whether
   the 99% percentile interval of the per-round paired difference excludes 0.
4. **Robust accuracy** on the test split under FGSM and PGD over an epsilon grid.
5. **Integrated gradients** of the target-class logit at test factuals (baseline: the
   training mean): share of attribution mass on the protected features (per pixel row for
   image data).

The whole protocol is seeded: the same runs and config give the same tables.
"""

from __future__ import annotations

import dataclasses
import inspect
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ct_plugin.constraints import SearchConstraints
from ct_plugin.data.spec import DatasetSpec
from ct_plugin.errors import CTPluginError
from ct_plugin.evaluation import metrics as M
from ct_plugin.generators.base import CounterfactualGenerator
from ct_plugin.registry import get_registry
from ct_plugin.rundir import Run, load_run

MAIN, PROTECTED = "main", "protected"
PROTOCOLS = ("paper", "strict")
"""Names of the evaluation protocols (``ProtocolConfig.protocol``)."""
MAIN_MUTABILITY = ("free", "spec")
"""Mutability of the main search: nothing frozen, or the run's dataset spec as trained."""
TABLE_METRICS = ("ip", "ip_star", "cost")
"""Columns of the paper's table: (metric, setting) pairs are ip/main, ip_star/main, cost/protected."""


@dataclass
class ProtocolConfig:
    """Settings of the evaluation protocol (defaults: the paper's).

    Attributes:
        protocol: ``paper`` (the reference's protocol, the default) or ``strict`` (see the module doc).
        main_mutability: ``free`` (nothing frozen in the main search: the paper's) or ``spec`` (the
            mutability the runs were trained with); None: ``free`` for paper, ``spec`` for strict.
            The protected setting always freezes the dataset's protected features on top of it.
        generator: post-hoc generator name; ``generator_options`` its extra options (None: for
            paper, ECCCo's ``preset="reference"`` with ``lambda_cost`` 0; for strict, none).
        lambda_energies: ECCCo energy weights; each gives one search per setting (ignored, with a
            single search, for generators without a ``lambda_energy`` option).
        tau, max_steps: decision threshold and steps T of the main setting.
        cost_tau: decision threshold of the protected (cost) setting.
        rounds: bootstrap rounds; n_factuals: factuals per round (None: paper 250 for 2-D data,
            100 for tables, 25 for images; strict 100).
        length_scales: fixed Gaussian-kernel length-scales of IP* (paper protocol): the first is
            reported as ``ip_star`` (5.0, as the code ran it), the others as ``ip_star_<l>``.
        pgd_steps, pgd_step_size, pgd_random_start: PGD settings (None: paper 40 steps of 0.01 with a
            random start; strict 10 steps of epsilon/4, no random start).
        ig_rounds: rounds of the integrated-gradient draw (paper protocol: median over rounds).
        epsilons: robust-accuracy grid; attack_rows: test rows attacked (seeded subsample).
        ig_rows, ig_steps: rows and Riemann steps of integrated gradients.
        max_class_samples: observed samples per class used as X+ for IP / IP* (seeded subsample).
        confidence: level of the bootstrap interval of differences.
        seed: seed of every draw.
        path_rows: factuals whose search paths are drawn for 2-D data / shown for images.
    """

    protocol: str = "paper"
    main_mutability: str | None = None
    generator: str = "eccco"
    generator_options: dict[str, Any] | None = None
    lambda_energies: tuple[float, ...] = (0.1, 0.5, 1.0, 5.0, 10.0)
    tau: float = 0.95
    max_steps: int = 50
    cost_tau: float = 0.5
    rounds: int = 100
    n_factuals: int | None = None
    length_scales: tuple[float, ...] = (5.0, 0.5)
    pgd_steps: int | None = None
    pgd_step_size: float | None = None
    pgd_random_start: bool | None = None
    ig_rounds: int = 10
    epsilons: tuple[float, ...] = tuple(round(0.01 * i, 2) for i in range(11))
    attack_rows: int = 5000
    ig_rows: int = 500
    ig_steps: int = 32
    max_class_samples: int = 1000
    confidence: float = 0.99
    seed: int = 0
    path_rows: int = 8

    def validate(self) -> ProtocolConfig:
        """Coerce every setting through :mod:`ct_plugin.validation` or raise naming it; return self."""
        from ct_plugin.validation import as_float, as_int, as_name, check_options_table

        if self.protocol not in PROTOCOLS:
            raise CTPluginError(f"unknown evaluation protocol {self.protocol!r}; choose from {', '.join(PROTOCOLS)}")
        if self.main_mutability is not None and self.main_mutability not in MAIN_MUTABILITY:
            raise CTPluginError(
                f"main_mutability must be one of {', '.join(MAIN_MUTABILITY)}, got {self.main_mutability!r}"
            )
        for name in ("rounds", "max_steps", "attack_rows", "ig_rows", "ig_steps", "max_class_samples", "ig_rounds"):
            setattr(self, name, as_int(name, getattr(self, name), 1))
        for name in ("n_factuals", "pgd_steps"):  # None: the protocol's default
            if getattr(self, name) is not None:
                setattr(self, name, as_int(name, getattr(self, name), 1))
        if self.rounds < 2:
            raise CTPluginError(f"rounds must be at least 2 for standard errors, got {self.rounds}")
        if self.ig_steps < 2:
            raise CTPluginError(f"ig_steps must be at least 2 (captum's integrated gradients), got {self.ig_steps}")
        self.seed = as_int("seed", self.seed, 0, 2**32 - 1)
        self.path_rows = as_int("path_rows", self.path_rows, 0)
        for name in ("tau", "cost_tau"):
            setattr(self, name, as_float(name, getattr(self, name), 0, 1, low_open=True))
        self.confidence = as_float("confidence", self.confidence, 0, 1, low_open=True, high_open=True)
        self.generator = as_name("generator", self.generator)
        if self.generator_options is not None:  # None: the protocol's default options
            self.generator_options = check_options_table("generator_options", self.generator_options)
        for name in ("lambda_energies", "epsilons", "length_scales"):
            values = getattr(self, name)
            if isinstance(values, str | bytes) or not isinstance(values, Sequence) or not values:
                raise CTPluginError(f"{name} must be a non-empty list of non-negative numbers, got {values!r}")
            setattr(self, name, tuple(as_float(name, v, 0) for v in values))
        if any(v <= 0 for v in self.length_scales):
            raise CTPluginError(f"length_scales must be positive numbers, got {self.length_scales}")
        if self.pgd_step_size is not None:
            self.pgd_step_size = as_float("pgd_step_size", self.pgd_step_size, 0, low_open=True)
        return self

    @property
    def main_search(self) -> str:
        """The main search's mutability: ``free`` or ``spec`` (resolved from the protocol)."""
        if self.main_mutability is not None:
            return self.main_mutability
        return "free" if self.protocol == "paper" else "spec"

    def resolved_generator_options(self) -> dict[str, Any]:
        """The post-hoc generator's options: the given ones, else the protocol's default."""
        if self.generator_options is not None:
            return dict(self.generator_options)
        if self.protocol == "paper" and self.generator in ("eccco", "generic"):
            return {"preset": "reference", "lambda_cost": 0.0}
        return {}

    def attack_options(self, attack: str) -> dict[str, Any]:
        """Keyword options of :func:`ct_plugin.evaluation.metrics.robust_accuracy` for ``attack``."""
        if attack != "pgd":
            return {}
        paper = self.protocol == "paper"
        return {
            "steps": self.pgd_steps or (40 if paper else 10),
            "step_size": self.pgd_step_size if self.pgd_step_size is not None else (0.01 if paper else None),
            "random_start": self.pgd_random_start if self.pgd_random_start is not None else paper,
        }


def search_specs(spec: DatasetSpec, config: ProtocolConfig) -> dict[str, DatasetSpec]:
    """The dataset spec of each search setting: main (free or as trained) and protected (+ protected frozen)."""
    main = spec if config.main_search == "spec" else dataclasses.replace(spec, mutability=["both"] * spec.n_features)
    protected = main.with_mutability(protect=True) if spec.protected else main
    return {MAIN: main, PROTECTED: protected}


def frozen_features(spec: DatasetSpec) -> list[str]:
    """Features that cannot move freely in a search over ``spec``: immutable or one-directional."""
    out = []
    for feature in spec.raw_feature_names:
        kinds = {spec.mutability[c] for c in spec.columns_of(feature)}
        kind = "none" if "none" in kinds else next(iter(kinds - {"both"}), "both")
        if kind != "both":
            out.append(feature if kind == "none" else f"{feature} ({kind} only)")
    return out


@dataclass
class Evaluation:
    """Everything the protocol computed; :mod:`ct_plugin.evaluation.report` writes it out."""

    dataset: str
    labels: list[str]
    runs: list[Run]
    config: ProtocolConfig
    rounds: pd.DataFrame
    summary: pd.DataFrame
    comparison: pd.DataFrame
    robustness: pd.DataFrame
    attribution: pd.DataFrame
    row_attribution: pd.DataFrame | None
    ig_maps: dict[str, np.ndarray]
    examples: dict[str, dict[str, np.ndarray]]
    seconds: float
    frozen: dict[str, list[str]] = field(default_factory=dict)
    """Per search setting, the features frozen (immutable) or restricted to one direction."""

    @property
    def spec(self) -> DatasetSpec:
        """The dataset spec of the reference run."""
        return self.runs[0].spec


# --------------------------------------------------------------------- checks
def load_runs(run_dirs: Sequence[str | Path]) -> list[Run]:
    """Load run directories (each must be complete) and check they share one dataset split."""
    if not run_dirs:
        raise CTPluginError("give at least one run directory to evaluate")
    runs = [load_run(path) for path in run_dirs]
    check_same_dataset(runs)
    return runs


def check_same_dataset(runs: Sequence[Run]) -> None:
    """Refuse runs trained on different datasets or different splits of one dataset."""
    first = runs[0]
    for run in runs[1:]:
        a, b = first.spec, run.spec
        if a.name != b.name:
            raise CTPluginError(
                f"runs were trained on different datasets: {first.path} on {a.name!r}, {run.path} on "
                f"{b.name!r}; evaluate runs of one dataset together"
            )
        same = (
            a.feature_names == b.feature_names
            and a.X_test.shape == b.X_test.shape
            and np.array_equal(a.X_test, b.X_test)
            and np.array_equal(a.y_test, b.y_test)
        )
        if not same:
            raise CTPluginError(
                f"runs {first.path} and {run.path} were trained on different splits or versions of "
                f"dataset {a.name!r} (features or test rows differ: check seed, dataset options, "
                "max_rows); evaluate runs of one split together"
            )


def run_labels(runs: Sequence[Run]) -> list[str]:
    """Unique short labels: the directory names, made unique with the parent's name if needed."""
    labels = [run.path.name for run in runs]
    if len(set(labels)) < len(labels):
        labels = [f"{run.path.parent.name}/{run.path.name}" for run in runs]
    if len(set(labels)) < len(labels):
        labels = [f"{i}:{label}" for i, label in enumerate(labels)]
    return labels


# ----------------------------------------------------------------- generators
def build_posthoc(name: str, options: dict[str, Any], lambda_energy: float | None) -> CounterfactualGenerator:
    """Build the post-hoc generator, with ``lambda_energy`` if it accepts one."""
    item = get_registry().get("generator", name)
    opts = dict(options)
    if lambda_energy is not None:
        opts["lambda_energy"] = lambda_energy
    from ct_plugin.plugin_options import build_with_options

    return build_with_options("post-hoc generator", name, item.factory, **opts)


def accepts_lambda_energy(name: str) -> bool:
    """Whether the generator's factory names a ``lambda_energy`` parameter.

    Factories that only take ``**options`` (the DiCE and CARLA adapters) do not count: they
    would reject the option, and an energy weight means nothing to them.
    """
    try:
        params = inspect.signature(get_registry().get("generator", name).factory).parameters
    except (TypeError, ValueError):
        return False
    return "lambda_energy" in params


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
        points.append(result.counterfactuals.detach().numpy())
    return np.stack(points)


# --------------------------------------------------------------------- protocol
def _class_samples(spec: DatasetSpec, cap: int, gen: torch.Generator) -> dict[int, torch.Tensor]:
    from ct_plugin.evaluation.paper import capped_class_rows

    return capped_class_rows(spec.X_train, spec.y_train, spec.n_classes, cap, gen,
                             f"the training split of {spec.name!r}")


def _targets_for(model: torch.nn.Module, factuals: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        predicted = model(factuals).argmax(dim=1)
    return offsets + (offsets >= predicted).long()


def evaluate_runs(
    runs: Sequence[Run], config: ProtocolConfig | None = None, labels: Sequence[str] | None = None,
    progress: bool = False,
) -> Evaluation:
    """Run the configured protocol (``paper`` by default) on loaded runs of one dataset; the first is the reference."""
    config = (config or ProtocolConfig()).validate()
    runs = list(runs)
    check_same_dataset(runs)
    labels = list(labels) if labels is not None else run_labels(runs)
    if config.protocol == "paper":
        from ct_plugin.evaluation.paper import evaluate_paper

        return evaluate_paper(runs, config, labels, progress)
    return evaluate_strict(runs, config, labels)


def evaluate_strict(runs: Sequence[Run], config: ProtocolConfig, labels: Sequence[str]) -> Evaluation:
    """The ``strict`` protocol (see the module doc): paired factual rows, every counterfactual counts."""
    t_start = time.perf_counter()
    torch.manual_seed(config.seed)
    spec = runs[0].spec
    specs = search_specs(spec, config)
    spec_main, spec_protected = specs[MAIN], specs[PROTECTED]
    generator_options = config.resolved_generator_options()
    constraints = {MAIN: SearchConstraints.from_spec(spec_main), PROTECTED: SearchConstraints.from_spec(spec_protected)}
    gen = torch.Generator().manual_seed(config.seed)
    samples_of = _class_samples(spec, config.max_class_samples, gen)
    bandwidth_of = {c: M.median_bandwidth(s) for c, s in samples_of.items()}
    X_test = torch.as_tensor(spec.X_test, dtype=torch.float32)
    y_test = torch.as_tensor(spec.y_test, dtype=torch.long)
    R, n, K = config.rounds, config.n_factuals or 100, spec.n_classes
    index = torch.randint(0, len(X_test), (R, n), generator=gen).reshape(-1)
    offsets = torch.randint(0, K - 1, (R * n,), generator=gen)
    factuals = X_test[index]
    attack_index = torch.randperm(len(X_test), generator=gen)[: config.attack_rows]
    ig_index = torch.randperm(len(X_test), generator=gen)[: config.ig_rows]
    ig_offsets = torch.randint(0, K - 1, (len(ig_index),), generator=gen)
    lambdas: list[float | None] = (
        [float(v) for v in config.lambda_energies] if accepts_lambda_energy(config.generator) else [None]
    )
    units = M.feature_units(spec.n_features, spec.onehot_groups)
    baseline = torch.as_tensor(spec.X_train, dtype=torch.float32).mean(dim=0)
    protected_columns = spec.protected_columns

    records: list[dict[str, Any]] = []
    robust_rows: list[dict[str, Any]] = []
    attribution_rows: list[dict[str, Any]] = []
    row_attr: list[dict[str, Any]] = []
    ig_maps: dict[str, np.ndarray] = {}
    examples: dict[str, dict[str, np.ndarray]] = {}
    example_lambda = lambdas[len(lambdas) // 2]

    for label, run in zip(labels, runs, strict=True):
        model = run.model.eval()
        targets = _targets_for(model, factuals, offsets)
        for setting, tau in ((MAIN, config.tau), (PROTECTED, config.cost_tau)):
            for lam in lambdas:
                generator = build_posthoc(config.generator, generator_options, lam)
                generator.fit(spec_main if setting == MAIN else spec_protected)
                torch.manual_seed(config.seed)
                t0 = time.perf_counter()
                result = generator.search(
                    model, factuals, targets, constraints[setting], tau=tau, max_steps=config.max_steps,
                    epsilon=0.0, rng=torch.Generator().manual_seed(config.seed),
                )
                seconds = time.perf_counter() - t0
                cfs = result.counterfactuals.detach()
                valid = M._predict(model, cfs) == targets
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
                        rec["ip"] = M._ip_metric(ctx)
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
                        "factuals": factuals[:k].numpy(), "targets": targets[:k].numpy(),
                        "counterfactuals": cfs[:k].numpy(),
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
        ig_maps[label] = attributions.abs().mean(dim=0).numpy()
        if spec.image_shape:
            shares = M.row_shares(attributions, spec.image_shape).numpy()
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


METRIC_SETTING = {
    "validity": MAIN, "ip": MAIN, "ip_star": MAIN, "redundancy": MAIN, "mean_steps": MAIN,
    "seconds_per_cf": MAIN, "cost": PROTECTED, "validity_protected": PROTECTED, "ip_star_0.5": MAIN,
}


def per_round(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (run, round) figures, averaged over the lambda grid: one column per metric.

    ``validity_protected`` is the validity of the protected (tau 0.5) setting.
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


def summary_records(rounds: pd.DataFrame, labels: Sequence[str], metrics: Sequence[str]) -> list[dict[str, Any]]:
    """Per run and metric: the mean over rounds, its standard error and the number of finite rounds."""
    rows = []
    for label in labels:
        part = rounds[rounds.run == label]
        for metric in metrics:
            values = part[metric].to_numpy(dtype=float)
            finite = values[np.isfinite(values)]
            rows.append({
                "run": label, "metric": metric, "setting": METRIC_SETTING.get(metric, MAIN),
                "mean": float(finite.mean()) if len(finite) else float("nan"),
                "se": float(finite.std(ddof=1)) if len(finite) > 1 else float("nan"),
                "rounds": len(finite),
            })
    return rows


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


def replace_config(config: ProtocolConfig, **changes: Any) -> ProtocolConfig:
    """A validated copy of ``config`` with some settings changed (None values ignored)."""
    return dataclasses.replace(config, **{k: v for k, v in changes.items() if v is not None}).validate()
