"""``ct_plugin.explain``: recourse for people, from a run directory or a model and its spec."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ct_plugin.constraints import SearchConstraints
from ct_plugin.data.spec import DatasetSpec
from ct_plugin.errors import CTPluginError
from ct_plugin.progress import progress_bar
from ct_plugin.recourse import measures
from ct_plugin.recourse.defaults import RECOURSE_GENERATOR, search_settings
from ct_plugin.recourse.result import MEASURES, Explanation
from ct_plugin.recourse.rows import People, read_people
from ct_plugin.recourse.search import Found, find_counterfactuals
from ct_plugin.runs.load import Run, load_run
from ct_plugin.threads import thread_scope
from ct_plugin.torch_utils import check_finite_outputs, placed_on, resolve_device

Source = str | Path | Run | tuple[torch.nn.Module, DatasetSpec]


def explain(
    source: Source,
    rows: pd.DataFrame | Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    *,
    rejected: int | None = None,
    target: str | int | None = None,
    generator: str | Sequence[str] | None = None,
    generator_options: Mapping[str, Any] | None = None,
    n: int = 1,
    seed: int = 0,
    immutable: Sequence[str] = (),
    increase_only: Sequence[str] = (),
    decrease_only: Sequence[str] = (),
    max_change: Mapping[str, float] | None = None,
    tau: float | None = None,
    max_steps: int | None = None,
    recourse_defaults: bool = True,
    within_observed: bool = True,
    batch_size: int = 4096,
    progress: bool = True,
    threads: int | None = None,
    device: str | torch.device = "auto",
) -> Explanation:
    """Counterfactual explanations (recourse) for people, in the spirit of DiCE's ``generate_counterfactuals``.

    Args:
        source: a run directory (``ct-plugin train --out``), a loaded :class:`~ct_plugin.runs.load.Run`,
            or ``(model, spec)``.
        rows: the people, in original units: a DataFrame (its index gives their ids), one mapping
            (feature -> value) or a list of them. The label column may be present and is ignored.
        rejected: instead of ``rows``: the first ``rejected`` rows of the run's test split that the
            model does not give the target class (ids are their positions in the test split).
        target: the class to reach (name or index); default: the data's desired class
            (``spec.desired``); without one, the other class of a binary model.
        generator: a registered generator or a list of them (compared side by side); default
            :data:`~ct_plugin.recourse.defaults.RECOURSE_GENERATOR` with the recourse defaults.
        generator_options: options over the recourse defaults (one generator), or generator ->
            options (several).
        n: counterfactuals per person; the k-th may not change the feature that moved most in each
            earlier one (alternative plans).
        seed: seed of every random choice (generators that sample, the plausibility samples).
        immutable, increase_only, decrease_only: constraints added to the run's own (which always
            hold: a feature immutable in the run stays so).
        max_change: feature -> the largest change allowed, in original units (continuous features).
        tau: stop a search once p(target) reaches it (default
            :data:`~ct_plugin.recourse.defaults.RECOURSE_TAU`); validity is judged at 0.5 / argmax.
        max_steps: search steps at most (default :data:`~ct_plugin.recourse.defaults.RECOURSE_MAX_STEPS`).
        recourse_defaults: False: the generators' own defaults (as in training and the paper
            protocol) instead of :data:`~ct_plugin.recourse.defaults.RECOURSE_OPTIONS`.
        within_observed: keep every continuous feature inside the range the training rows show
            (no negative counts or incomes where the data have none); False: the spec's whole domain
            (the paper's tables widen it to the mean -/+ 2 sd). A person already outside keeps their value
            reachable.
        batch_size: people searched in one tensor.
        progress: a progress bar on a terminal.
        threads: torch CPU threads (default: see :mod:`ct_plugin.threads`).
        device: where the model and the searches run (``auto``: CUDA when torch sees one); the model
            is moved there for the search and back afterwards. The tables and measures come back to the CPU.

    Returns:
        An :class:`~ct_plugin.recourse.result.Explanation` (``.counterfactuals`` is a DataFrame;
        ``.to_markdown()``, ``.to_json()`` (DiCE's format), ``.save(folder)``).
    """
    model, spec, label = _resolve_source(source)
    device = resolve_device(device)
    if int(n) != n or n < 1:
        raise CTPluginError(f"n (counterfactuals per person) must be a whole number >= 1, got {n!r}")
    if int(batch_size) != batch_size or batch_size < 1:
        raise CTPluginError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
    names = [generator or RECOURSE_GENERATOR] if generator is None or isinstance(generator, str) else list(generator)
    if not names or len(set(names)) != len(names):
        raise CTPluginError(f"generators must be named once each, got {names}")
    options_of = _options_per_generator(names, generator_options)
    settings = [search_settings(name, options_of.get(name), tau, max_steps, recourse_defaults) for name in names]
    for item in settings:
        if not 0.0 < item.tau <= 1.0:
            raise CTPluginError(f"tau must lie in (0, 1], got {item.tau}")
        if item.max_steps < 1:
            raise CTPluginError(f"max_steps must be at least 1, got {item.max_steps}")
    search_spec, frozen, directions = _constrained_spec(spec, immutable, increase_only, decrease_only)
    limits, limits_shown = _max_change(spec, max_change)

    # the model is searched on the device and put back where it was (the caller's model does not move)
    with placed_on(model, device), thread_scope(threads, model, batch_size):
        people, target_index = _people(model, spec, rows, rejected, target)
        probs_before = measures.probabilities(model, people.encoded)
        predicted = probs_before.argmax(axis=1)
        to_explain = np.flatnonzero(predicted != target_index)
        constraints = SearchConstraints.from_spec(search_spec, device).narrowed(
            max_change=torch.as_tensor(limits, dtype=torch.float32, device=device))
        bounds = measures.observed_bounds(spec) if within_observed else (spec.lower, spec.upper)
        if within_observed:
            constraints.lower = torch.as_tensor(bounds[0], dtype=torch.float32, device=device)
            constraints.upper = torch.as_tensor(bounds[1], dtype=torch.float32, device=device)
        factuals = torch.as_tensor(people.encoded[to_explain], dtype=torch.float32, device=device)
        targets = torch.as_tensor(target_index[to_explain], dtype=torch.long, device=device)
        found: list[Found] = []
        total = len(settings) * len(to_explain) * n
        with progress_bar(total, f"explaining {len(to_explain)} people", quiet=not progress, unit="cf") as bar:
            for item in settings:
                found.append(find_counterfactuals(model, search_spec, factuals, targets, constraints, item,
                                                  alternatives=n, seed=seed, batch_size=batch_size, bar=bar))
        table = _counterfactual_table(model, spec, people, to_explain, target_index, probs_before, found, limits,
                                      bounds, seed)

    class_names = np.asarray(spec.class_names, dtype=object)
    frame = people.frame.copy()
    frame["predicted"] = class_names[predicted]
    frame["target"] = class_names[target_index]
    frame["p_before"] = probs_before[np.arange(len(frame)), target_index]
    frame["status"] = np.where(predicted != target_index, "explained", "already target")
    scale = {spec.class_names[t]: measures.nearest_neighbour_scale(spec, int(t), seed)
             for t in np.unique(target_index[to_explain])}
    return Explanation(
        spec=spec, people=frame, counterfactuals=table,
        settings={f.settings.generator: {"options": f.settings.options, "tau": f.settings.tau,
                                         "max_steps": f.settings.max_steps} for f in found},
        frozen=frozen, directions=directions, max_change=limits_shown, scale=scale,
        warnings=people.out_of_range, seconds={f.settings.generator: f.seconds for f in found}, source=label,
        within_observed=within_observed,
    )


# ---------------------------------------------------------------- inputs
def _resolve_source(source: Source) -> tuple[torch.nn.Module, DatasetSpec, str]:
    if isinstance(source, str | Path):
        run = load_run(source)
        model, spec, label = run.model, run.spec, str(source)
    elif isinstance(source, Run):
        model, spec, label = source.model, source.spec, str(source.path)
    elif (isinstance(source, tuple) and len(source) == 2 and isinstance(source[0], torch.nn.Module)
          and isinstance(source[1], DatasetSpec)):
        model, spec, label = source[0], source[1], "model"
    else:
        raise CTPluginError(
            f"explain needs a run directory, a loaded Run or (model, spec); got {type(source).__name__}")
    model.eval()
    probe = torch.as_tensor(spec.X_test[:256] if len(spec.X_test) else spec.X_train[:256], dtype=torch.float32)
    check_finite_outputs(model, probe, f"the model of {label}")
    return model, spec, label


def _options_per_generator(names: list[str], options: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    if not options:
        return {}
    if len(names) == 1 and not all(isinstance(v, Mapping) for v in options.values()):
        return {names[0]: dict(options)}
    unknown = sorted(set(options) - set(names))
    if unknown or not all(isinstance(v, Mapping) for v in options.values()):
        raise CTPluginError(f"with several generators, generator_options maps a generator ({', '.join(names)}) to "
                            f"its options; got keys {sorted(options)}")
    return {name: dict(value) for name, value in options.items()}


def _feature(spec: DatasetSpec, name: str, what: str) -> str:
    if name in spec.raw_feature_names:
        return name
    close = difflib.get_close_matches(name, spec.raw_feature_names, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise CTPluginError(f"{what}: {name!r} is not a feature{hint}; the model's features: "
                        f"{', '.join(spec.raw_feature_names)}")


def _constrained_spec(
    spec: DatasetSpec, immutable: Sequence[str], increase_only: Sequence[str], decrease_only: Sequence[str]
) -> tuple[DatasetSpec, dict[str, str], dict[str, str]]:
    """The run's spec with the request's constraints added; what is frozen and directed, and why."""
    kind_of = {name: spec.mutability[spec.columns_of(name)[0]] for name in spec.raw_feature_names}
    for what, names, kind in (("immutable", immutable, "none"), ("increase_only", increase_only, "increase"),
                              ("decrease_only", decrease_only, "decrease")):
        for name in names:
            _feature(spec, name, what)
            if kind_of[name] == "none" and kind != "none":
                raise CTPluginError(f"{what}: {name!r} is immutable in the run; explain can add constraints, "
                                    "not lift them")
            if kind_of[name] in ("increase", "decrease") and kind not in ("none", kind_of[name]):
                raise CTPluginError(f"{what}: {name!r} may only {kind_of[name]} in the run; explain can add "
                                    "constraints, not reverse them (make it immutable instead)")
    constrained = spec.with_mutability(immutable, increase_only, decrease_only)
    frozen = {name: "immutable in the run" for name, kind in kind_of.items() if kind == "none"}
    frozen.update({name: "immutable here" for name in immutable if name not in frozen})
    directions = {}
    for name in spec.raw_feature_names:
        kind = constrained.mutability[constrained.columns_of(name)[0]]
        if kind in ("increase", "decrease"):
            origin = "in the run" if kind_of[name] == kind else "here"
            directions[name] = f"{kind}s only ({origin})"
    return constrained, frozen, directions


def _max_change(spec: DatasetSpec, max_change: Mapping[str, float] | None) -> tuple[np.ndarray, dict[str, float]]:
    """Per encoded column the largest change in standardised units (inf: none), and the request as given."""
    limits = np.full(spec.n_features, np.inf, dtype=np.float64)
    shown: dict[str, float] = {}
    for name, amount in (max_change or {}).items():
        _feature(spec, name, "max_change")
        if name in spec.categorical:
            raise CTPluginError(f"max_change: {name!r} is categorical; make it immutable instead of limiting it")
        try:
            value = float(amount)
        except (TypeError, ValueError):
            raise CTPluginError(f"max_change: {name} needs a number, got {amount!r}") from None
        if not value >= 0 or not np.isfinite(value):
            raise CTPluginError(f"max_change: {name} must be a finite number >= 0, got {amount!r}")
        column = spec.columns_of(name)[0]
        limits[column] = value / float(spec.scale[column])
        shown[name] = value
    return limits, shown


def _targets(spec: DatasetSpec, target: str | int | None, predicted: np.ndarray) -> np.ndarray:
    """Each person's target class index."""
    if target is not None:
        return np.full(len(predicted), spec.class_index(target), dtype=np.int64)
    if spec.desired_index is not None:
        return np.full(len(predicted), spec.desired_index, dtype=np.int64)
    if spec.n_classes == 2:
        return (1 - predicted).astype(np.int64)
    raise CTPluginError(f"dataset {spec.name!r} has {spec.n_classes} classes and no desired one: name the target "
                        f"class (target=..., --target-class); its classes: {', '.join(spec.class_names)}")


def _people(
    model: torch.nn.Module, spec: DatasetSpec, rows: Any, rejected: int | None, target: str | int | None
) -> tuple[People, np.ndarray]:
    """The people to explain and their target classes."""
    if (rows is None) == (rejected is None):
        raise CTPluginError("give the people to explain: rows (a DataFrame or mappings) or rejected=N (the run's "
                            "test rows the model turns down), not both" if rows is not None else
                            "give the people to explain: rows (a DataFrame or mappings) or rejected=N (the run's "
                            "test rows the model turns down)")
    if rows is not None:
        people = read_people(rows, spec)
        predicted = measures.probabilities(model, people.encoded).argmax(axis=1)
        return people, _targets(spec, target, predicted)
    if isinstance(rejected, bool) or int(rejected) != rejected or rejected < 1:
        raise CTPluginError(f"rejected must be a whole number >= 1, got {rejected!r}")
    if spec.desired_index is None and target is None:
        raise CTPluginError(f"dataset {spec.name!r} names no desired class, so no row is 'rejected': name the "
                            f"target class (target=..., --target-class); its classes: {', '.join(spec.class_names)}")
    X = spec.X_test
    predicted = measures.probabilities(model, X).argmax(axis=1)
    goal = _targets(spec, target, predicted)
    chosen = np.flatnonzero(predicted != goal)[: int(rejected)]
    if not len(chosen):
        raise CTPluginError(f"the model gives every test row of {spec.name!r} the class "
                            f"{spec.class_names[int(goal[0])]!r}: nobody to explain")
    frame = spec.decode(X[chosen])
    ids = [int(i) for i in chosen]
    frame.index = pd.Index(ids, name="person")
    return People(frame, X[chosen].astype(np.float32), ids, []), goal[chosen]


# ---------------------------------------------------------------- outputs
def _counterfactual_table(
    model: torch.nn.Module, spec: DatasetSpec, people: People, to_explain: np.ndarray, target_index: np.ndarray,
    probs_before: np.ndarray, found: list[Found], limits: np.ndarray, bounds: tuple[np.ndarray, np.ndarray],
    seed: int,
) -> pd.DataFrame:
    """The long table: one row per person, generator and alternative."""
    names = spec.raw_feature_names
    membership = np.zeros((spec.n_features, len(names)), dtype=bool)
    for f, name in enumerate(names):
        membership[spec.columns_of(name), f] = True
    factuals = people.encoded[to_explain].astype(np.float64)
    targets = target_index[to_explain]
    parts = []
    for item in found:
        for k in range(item.counterfactuals.shape[0]):
            cf = item.counterfactuals[k].astype(np.float64)
            probs = measures.probabilities(model, cf.astype(np.float32))
            changed = measures.changed_columns(factuals, cf)
            bound = measures.at_bounds(spec, factuals, cf, bounds)
            limit = measures.at_limits(limits, factuals, cf)
            nearest, ip = measures.plausibility(cf, targets, spec, seed)
            frame = spec.decode(cf) if len(cf) else pd.DataFrame(columns=names)
            frame.insert(0, "alternative", k + 1)
            frame.insert(0, "generator", item.settings.generator)
            frame.insert(0, "person", [people.ids[i] for i in to_explain])
            frame["target"] = np.asarray(spec.class_names, dtype=object)[targets] if len(targets) else []
            frame["p_before"] = probs_before[to_explain, targets] if len(targets) else []
            frame["p_after"] = probs[np.arange(len(cf)), targets] if len(targets) else []
            frame["valid"] = probs.argmax(axis=1) == targets if len(targets) else []
            frame["cost_sd"] = np.abs(cf - factuals).sum(axis=1)
            frame["n_changed"] = (changed @ membership).astype(bool).sum(axis=1) if len(cf) else []
            frame["nearest_sd"] = nearest
            frame["ip"] = ip
            frame["on_bound"] = _names_per_row(bound, membership, names)
            frame["at_limit"] = _names_per_row(limit, membership, names)
            frame["repaired"] = item.repaired[k]
            frame["steps"] = item.steps[k]
            parts.append(frame)
    if not parts:
        return pd.DataFrame(columns=["person", "generator", "alternative", *names, "target", *MEASURES])
    table = pd.concat(parts, ignore_index=True)
    order = {person: i for i, person in enumerate(people.ids)}
    table = table.sort_values(["person", "alternative"], key=lambda c: c.map(order) if c.name == "person" else c,
                              kind="stable").reset_index(drop=True)
    return table


def _names_per_row(mask: np.ndarray, membership: np.ndarray, names: list[str]) -> list[list[str]]:
    """Per row, the raw features with any column set in ``mask``."""
    if not len(mask):
        return []
    hit = (mask @ membership).astype(bool)
    return [[names[f] for f in np.flatnonzero(row)] for row in hit]
