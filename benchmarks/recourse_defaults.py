"""Which search should ``ct-plugin explain`` run by default? Evidence from validation rows, then the test rows.

For each table (the four real tables and a CSV the project never loads by name: UCI Adult exactly as
published, read through ``--csv``), carve a validation split from the training rows, train a vanilla
model and a CT model (``tune``'s choice for the table in docs/results/settings.json, the best CT
configuration where it recommends vanilla; the CSV, which was never tuned, the training defaults) on
the rest, with the protected feature immutable, and run every candidate search through
``ct_plugin.explain`` (the user's path) on up to 500 validation rows the model turns down.

The rule, fixed before any figure was seen: a candidate qualifies when on every table and model its
validity (the model gives the target class) is at least 0.95, at most 5% of the continuous features
it changes end on a domain bound the person was not on, no immutable feature changes, and its median
cost (L1, sd; over the people both it and the yardstick make valid) is no higher than the
yardstick's (ECCCo with the reference's preset, 300 steps, tau 0.6); among the qualifying ones the
lowest geometric-mean cost ratio against the yardstick wins. Only then are the test rows read, for
the chosen candidate, the yardstick and the old default (the report's second table). Writes
``--out`` (default docs/recourse_defaults.md)::

    python benchmarks/recourse_defaults.py --data-dir DATA [--epochs 30] [--people 500]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import ct_plugin
from ct_plugin.data.spec import DatasetSpec
from ct_plugin.recourse import RECOURSE_MAX_STEPS, RECOURSE_OPTIONS, RECOURSE_TAU
from ct_plugin.recourse.measures import at_bounds

TABLES = ("adult", "gmsc", "california_housing", "credit_default")
UCI_COLUMNS = ["age", "workclass", "fnlwgt", "education", "education-num", "marital-status", "occupation",
               "relationship", "race", "sex", "capital-gain", "capital-loss", "hours-per-week", "native-country",
               "income"]
YARDSTICK = "eccco reference, tau 0.6, 300 steps"
OLD_DEFAULT = "eccco project, tau 0.75, 50 steps"

#: candidate -> (generator, options, tau, max_steps); the generators' own defaults underneath
CANDIDATES: dict[str, tuple[str, dict[str, Any], float, int]] = {
    OLD_DEFAULT: ("eccco", {}, 0.75, 50),
    YARDSTICK: ("eccco", {"preset": "reference"}, 0.6, 300),
    "generic reference (step 0.1), tau 0.6, 300 steps": ("generic", {"preset": "reference"}, 0.6, 300),
    "generic step 0.1 clip 1, tau 0.6, 300 steps": ("generic", {"step_size": 0.1, "clip_grad": 1.0}, 0.6, 300),
    "generic step 0.05 clip 1, tau 0.6, 300 steps": ("generic", {"step_size": 0.05, "clip_grad": 1.0}, 0.6, 300),
    "generic normalised step 0.1, tau 0.6, 300 steps": (
        "generic", {"step_size": 0.1, "normalise_grad": True, "lambda_cost": 0.0}, 0.6, 300),
    "generic normalised step 0.05, tau 0.6, 300 steps": (
        "generic", {"step_size": 0.05, "normalise_grad": True, "lambda_cost": 0.0}, 0.6, 300),
    "generic normalised step 0.02, tau 0.6, 600 steps": (
        "generic", {"step_size": 0.02, "normalise_grad": True, "lambda_cost": 0.0}, 0.6, 600),
    "generic normalised step 0.1 projected, tau 0.6, 300 steps": (
        "generic", {"step_size": 0.1, "normalise_grad": True, "lambda_cost": 0.0, "onehot_steps": "projected"},
        0.6, 300),
    "generic normalised step 0.05 projected, tau 0.6, 300 steps": (
        "generic", {"step_size": 0.05, "normalise_grad": True, "lambda_cost": 0.0, "onehot_steps": "projected"},
        0.6, 300),
    "generic normalised step 0.02 projected, tau 0.6, 600 steps": (
        "generic", {"step_size": 0.02, "normalise_grad": True, "lambda_cost": 0.0, "onehot_steps": "projected"},
        0.6, 600),
    "generic normalised step 0.05 projected sparse 0.25, tau 0.6, 300 steps": (
        "generic", {"step_size": 0.05, "normalise_grad": True, "lambda_cost": 0.0, "onehot_steps": "projected",
                    "sparse_steps": 0.25}, 0.6, 300),
    "generic normalised step 0.05 projected sparse 0.5, tau 0.6, 300 steps": (
        "generic", {"step_size": 0.05, "normalise_grad": True, "lambda_cost": 0.0, "onehot_steps": "projected",
                    "sparse_steps": 0.5}, 0.6, 300),
    "generic normalised step 0.05 projected sparse 0.75, tau 0.6, 300 steps": (
        "generic", {"step_size": 0.05, "normalise_grad": True, "lambda_cost": 0.0, "onehot_steps": "projected",
                    "sparse_steps": 0.75}, 0.6, 300),
    "generic normalised step 0.02 projected sparse 0.5, tau 0.6, 600 steps": (
        "generic", {"step_size": 0.02, "normalise_grad": True, "lambda_cost": 0.0, "onehot_steps": "projected",
                    "sparse_steps": 0.5}, 0.6, 600),
    "eccco reference normalised step 0.05, tau 0.6, 300 steps": (
        "eccco", {"preset": "reference", "step_size": 0.05, "normalise_grad": True}, 0.6, 300),
}


def uci_adult_csv(data_dir: Path, folder: Path) -> Path:
    """UCI Adult as published (no header, ', '-separated), written as the CSV a user would bring."""
    frame = pd.read_csv(data_dir / "uci_adult" / "adult.data", header=None, names=UCI_COLUMNS,
                        skipinitialspace=True)
    path = folder / "uci_adult.csv"
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def tables(data_dir: Path, folder: Path) -> dict[str, DatasetSpec]:
    """Every table's spec (the protected feature immutable)."""
    specs = {name: ct_plugin.load_dataset(name, data_dir=str(data_dir), seed=0, protect=True) for name in TABLES}
    csv = uci_adult_csv(data_dir, folder)
    specs["own csv (UCI Adult)"] = ct_plugin.load_dataset(
        "csv", path=str(csv), target="income", desired=">50K", protected=["age"], protect=True)
    return specs


def ct_settings(name: str, settings_file: Path) -> dict[str, Any]:
    """tune's choice for the table (its best CT configuration), or nothing (the training defaults)."""
    tuned = json.loads(settings_file.read_text()).get("tuned", {})
    return dict(tuned.get(name, {}).get("overrides", {}))


def train_models(spec: DatasetSpec, name: str, runs: Path, epochs: int, settings_file: Path) -> dict[str, Path]:
    """A vanilla and a CT run on the training rows left after the validation carve (reused when present)."""
    carved = spec.validation_split(seed=0)
    dirs = {}
    kinds = (("vanilla", {"strategy": "vanilla"}), ("ct", {"strategy": "ct", **ct_settings(name, settings_file)}))
    for kind, extra in kinds:
        out = runs / name.split(" ")[0] / kind
        if not (out / "manifest.json").is_file():
            ct_plugin.train(carved, out=out, epochs=epochs, batch_size=1000, nce=1000, seed=0, quiet=True,
                            overwrite=True, **extra)
        dirs[kind] = out
    return dirs


def measure(run: ct_plugin.Run, spec: DatasetSpec, candidate: str, people: int) -> dict[str, Any]:
    """One candidate on up to ``people`` rejected rows of ``spec``'s test part."""
    generator, options, tau, steps = CANDIDATES[candidate]
    start = time.perf_counter()
    # the yardstick and the old default search the spec's whole domain, as the issue measured them; the
    # candidates for explain's default keep each feature inside its training range, as explain does
    within = candidate not in (YARDSTICK, OLD_DEFAULT)
    result = ct_plugin.explain((run.model, spec), rejected=people, generator=generator, generator_options=options,
                               tau=tau, max_steps=steps, recourse_defaults=False, within_observed=within,
                               progress=False)
    seconds = time.perf_counter() - start
    table = result.counterfactuals
    continuous_changed = sum(
        sum(1 for f in spec.continuous if not math.isclose(row[f], result.people.loc[row.person, f],
                                                            rel_tol=1e-6, abs_tol=1e-9))
        for _, row in table.iterrows())
    # the measure: the spec's domain (explain's own on_bound uses the training range it searched in)
    factuals = spec.encode(result.people.loc[table.person, spec.raw_feature_names]) if len(table) else None
    on_bound = int(at_bounds(spec, factuals, spec.encode(table[spec.raw_feature_names])).sum()) if len(table) else 0
    immutable = [f for f in spec.raw_feature_names if spec.mutability[spec.columns_of(f)[0]] == "none"]
    before = result.people.loc[table.person]
    moved = sum(int((table[f].astype(str).to_numpy() != before[f].astype(str).to_numpy()).sum()) for f in immutable)
    return {
        "people": len(table), "validity": float(table.valid.mean()),
        "on_bound": on_bound / continuous_changed if continuous_changed else 0.0,
        "immutable_changed": moved, "cost": table.cost_sd.to_numpy(), "valid": table.valid.to_numpy(),
        "nearest": table.nearest_sd.to_numpy(), "seconds": seconds,
        "p_after": float(table.p_after.median()),
    }


def paired_median(a: dict[str, Any], b: dict[str, Any]) -> tuple[float, float]:
    """Median cost of ``a`` and ``b`` over the people both make valid."""
    both = a["valid"] & b["valid"]
    if not both.any():
        return float("nan"), float("nan")
    return float(np.median(a["cost"][both])), float(np.median(b["cost"][both]))


def rows_of(figures: dict[tuple[str, str, str], dict[str, Any]]) -> pd.DataFrame:
    """One row per (table, model, candidate) with the cost ratio against the yardstick."""
    rows = []
    for (table, model, candidate), f in figures.items():
        mine, theirs = paired_median(f, figures[(table, model, YARDSTICK)])
        valid = f["valid"]
        rows.append({
            "table": table, "model": model, "candidate": candidate, "people": f["people"],
            "validity": f["validity"], "on bound": f["on_bound"], "immutable changed": f["immutable_changed"],
            "median cost (own valid)": float(np.median(f["cost"][valid])) if valid.any() else float("nan"),
            "median nearest (own valid)": float(np.median(f["nearest"][valid])) if valid.any() else float("nan"),
            "cost ratio vs yardstick": mine / theirs if theirs else float("nan"),
            "seconds": f["seconds"],
        })
    return pd.DataFrame(rows)


def choose(frame: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    """The rule of the module docstring: qualifying candidates, then the lowest geometric-mean cost ratio."""
    per = frame.groupby("candidate", sort=False).agg(
        min_validity=("validity", "min"), max_on_bound=("on bound", "max"),
        immutable_changed=("immutable changed", "sum"), max_ratio=("cost ratio vs yardstick", "max"),
        geo_ratio=("cost ratio vs yardstick", lambda r: float(np.exp(np.log(r.clip(lower=1e-9)).mean()))),
    )
    per["qualifies"] = ((per.min_validity >= 0.95) & (per.max_on_bound <= 0.05) & (per.immutable_changed == 0)
                        & (per.max_ratio <= 1.0 + 1e-9))
    per["criteria failed"] = ((per.min_validity < 0.95).astype(int) + (per.max_on_bound > 0.05).astype(int)
                              + (per.immutable_changed > 0).astype(int) + (per.max_ratio > 1.0 + 1e-9).astype(int))
    # none qualifying: the fewest criteria failed, then the lowest geometric-mean cost ratio
    best = per.sort_values(["criteria failed", "geo_ratio"], kind="stable")
    return str(best.index[0]), per.reset_index()


def markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    """A DataFrame as a Markdown table with rounded numbers."""
    def cell(value: Any) -> str:
        if isinstance(value, float | np.floating):
            return "-" if math.isnan(value) else f"{value:.{digits}g}"
        return str(value)

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="folder with the real tables and uci_adult/")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--people", type=int, default=500)
    parser.add_argument("--runs", default="runs/recourse-defaults", help="where the trained runs go (reused)")
    parser.add_argument("--settings", default="docs/results/settings.json", help="tune's choices per table")
    parser.add_argument("--out", default="docs/recourse_defaults.md")
    parser.add_argument("--tables", help="comma-separated subset (default: all)")
    args = parser.parse_args()
    start = time.perf_counter()
    data_dir, runs = Path(args.data_dir), Path(args.runs)
    specs = tables(data_dir, runs / "data")
    if args.tables:
        specs = {k: v for k, v in specs.items() if k.split(" ")[0] in args.tables.split(",")}
    validation: dict[tuple[str, str, str], dict[str, Any]] = {}
    loaded: dict[tuple[str, str], ct_plugin.Run] = {}
    for name, spec in specs.items():
        dirs = train_models(spec, name, runs, args.epochs, Path(args.settings))
        carved = spec.validation_split(seed=0)
        for kind, folder in dirs.items():
            loaded[(name, kind)] = run = ct_plugin.load_run(folder)
            for candidate in CANDIDATES:
                validation[(name, kind, candidate)] = measure(run, carved, candidate, args.people)
                print(f"{name} {kind} {candidate}: validity {validation[(name, kind, candidate)]['validity']:.2f}",
                      flush=True)
    frame = rows_of(validation)
    chosen, per = choose(frame)
    # only now the test rows: the chosen candidate, the yardstick and the old default
    test: dict[tuple[str, str, str], dict[str, Any]] = {}
    for (name, kind), run in loaded.items():
        for candidate in dict.fromkeys([chosen, YARDSTICK, OLD_DEFAULT]):
            test[(name, kind, candidate)] = measure(run, specs[name], candidate, args.people)
    test_frame = rows_of(test)
    ct_vs_vanilla = []
    for name in specs:
        for candidate in dict.fromkeys([chosen, YARDSTICK]):
            ct, vanilla = test[(name, "ct", candidate)], test[(name, "vanilla", candidate)]
            ct_cost = np.median(ct["cost"][ct["valid"]]) if ct["valid"].any() else float("nan")
            vanilla_cost = np.median(vanilla["cost"][vanilla["valid"]]) if vanilla["valid"].any() else float("nan")
            ct_vs_vanilla.append({"table": name, "candidate": candidate, "median cost CT": ct_cost,
                                  "median cost vanilla": vanilla_cost, "CT / vanilla": ct_cost / vanilla_cost})
    current = (RECOURSE_OPTIONS.get("generic"), RECOURSE_TAU, RECOURSE_MAX_STEPS)
    chosen_test = test_frame[test_frame.candidate == chosen]
    missed = [f"{r.table} {r.model}: " + ", ".join(
        part for part, bad in ((f"validity {r.validity:.3f}", r.validity < 0.95),
                               (f"{r['on bound']:.1%} of changed features on a bound", r["on bound"] > 0.05),
                               (f"cost {r['cost ratio vs yardstick']:.3f}x the yardstick's",
                                r["cost ratio vs yardstick"] > 1.0)) if bad)
        for _, r in chosen_test.iterrows()
        if r.validity < 0.95 or r["on bound"] > 0.05 or r["cost ratio vs yardstick"] > 1.0]
    verdict = ("On the test rows the chosen search meets every target on every table and model." if not missed else
               "On the test rows the chosen search misses a target on: " + "; ".join(missed) + ".")
    text = "\n".join([
        "# The search `ct-plugin explain` runs by default",
        "",
        f"Generated by `python benchmarks/recourse_defaults.py --data-dir DATA --epochs {args.epochs} "
        f"--people {args.people}` ({time.perf_counter() - start:.0f} s). Models: vanilla and CT ({'tune'}'s "
        "choice per table, docs/results/settings.json; the CSV never tuned: training defaults), trained on the "
        "training rows left after a validation carve, batch 1000, nce 1000, the protected feature immutable. "
        "People: validation rows the model turns down (the choice), then test rows (the report). The yardstick "
        "and the old default search the spec's whole domain (as the issue measured them); every other candidate "
        "keeps each feature inside its training range, as `explain` does by default (`--full-domain` turns it off). "
        "'on bound' is measured against the spec's domain for all.",
        "",
        "Rule, fixed before the figures: on every table and model validity >= 0.95, at most 5% of changed "
        "continuous features ending on a domain bound the person was not on, no immutable feature changed, median "
        f"cost no higher than the yardstick's ({YARDSTICK}) over the people both make valid; then the lowest "
        "geometric-mean cost ratio.",
        "",
        "How the candidates came about: the rule and the first candidates (the old default, the yardstick, the "
        "reference's Generic, clipped steps) came first; the validation rows showed clipped and plain steps "
        "failing validity on flat models, so normalised steps were added; relaxed one-hot steps changing "
        "categorical levels at a cost of 2 each, so projected ones; the cost still at the yardstick's, so sparse "
        "steps; counterfactuals with negative counts and incomes (the paper's domains reach mean - 2 sd), so "
        "the training-range bounds. Every choice was made on validation rows. One caveat: the negative values "
        "were first noticed on test rows (looking at which features a GMSC miss put on a bound) and then found "
        "on the validation rows too (hundreds of negative counts among 500 GMSC CT counterfactuals).",
        "",
        "## Validation rows: every candidate",
        "",
        markdown(frame.drop(columns=["people"])),
        "",
        "## The rule per candidate",
        "",
        markdown(per),
        "",
        f"**Chosen: {chosen}.** The library's defaults (ct_plugin/recourse/defaults.py): generic options "
        f"{current[0]}, tau {current[1]}, {current[2]} steps.",
        "",
        "## Test rows: the chosen search, the yardstick and the old default",
        "",
        markdown(test_frame.drop(columns=["people"])),
        "",
        verdict,
        "",
        "## What CT costs against vanilla (test rows; a figure, not a target: the model side is the strategies' work)",
        "",
        markdown(pd.DataFrame(ct_vs_vanilla)),
        "",
    ])
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
