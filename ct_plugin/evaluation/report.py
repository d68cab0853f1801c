"""Write an :class:`~ct_plugin.evaluation.protocol.Evaluation` as CSV files, a Markdown report and PNGs."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from ct_plugin.atomic import atomic_write, make_folder
from ct_plugin.evaluation import plots
from ct_plugin.evaluation.metrics.directions import change_cell, metric_names
from ct_plugin.evaluation.protocol import Evaluation, accepts_lambda_energy

SIGNIFICANT = 3
"""Significant digits of every number in a report table."""
NOISE = 1e-12
"""A spread this small relative to its mean (or a mean this small relative to its spread) is rounding noise: 0."""


def _missing(value: float | None) -> bool:
    return value is None or not math.isfinite(float(value))


def _decimals(scale: float, digits: int) -> int:
    """Decimal places that give ``scale`` ``digits`` significant digits (0 for large numbers)."""
    if scale == 0:
        return digits - 1
    scale = float(f"{scale:.{digits - 1}e}")  # 9.996 rounds to 10.0: two decimals would show four digits
    return max(0, digits - 1 - math.floor(math.log10(scale)))


def _scientific(scale: float) -> bool:
    return scale != 0 and (scale < 1e-3 or scale >= 1e6)


def fmt(value: float | None, digits: int = SIGNIFICANT) -> str:
    """A number for a report: ``digits`` significant digits (``0.550``, ``3.16``, ``158``, ``2.22e-06``).

    Fixed notation from 0.001 to a million (whole numbers are never cut: ``12345``), scientific
    notation outside it; ``-`` for None, nan and inf; ``0`` for zero.
    """
    if _missing(value):
        return "-"
    value = float(value)
    scale = abs(value)
    if scale == 0:
        return "0"
    if _scientific(scale):
        return f"{value:.{digits - 1}e}"
    text = f"{value:.{_decimals(scale, digits)}f}"
    return "0" if float(text) == 0 else text


def fmt_pm(mean: float | None, spread: float | None, digits: int = SIGNIFICANT) -> str:
    """``mean ± spread`` at one precision: that of the larger of the two at ``digits`` significant digits.

    ``0.550 ± 0.636``, ``50.0 ± 0.0``, ``2.22e-06 ± 0`` (a spread of 4e-22 is float noise), ``0.0 ± 31.2``
    (a mean far inside its spread); ``± -`` where the spread is missing (one round).
    """
    if _missing(mean):
        return "-" if _missing(spread) else f"- ± {fmt(spread, digits)}"
    if _missing(spread):
        return f"{fmt(mean, digits)} ± -"
    mean, spread = float(mean), abs(float(spread))
    if spread < NOISE * abs(mean):
        spread = 0.0
    if abs(mean) < NOISE * spread:
        mean = 0.0
    scale = max(abs(mean), spread)
    if scale == 0:
        return "0 ± 0"
    if _scientific(scale):
        exponent = math.floor(math.log10(float(f"{scale:.{digits - 1}e}")))

        def mantissa(v: float) -> str:
            text = f"{v / 10 ** exponent:.{digits - 1}f}"
            return "0" if float(text) == 0 else f"{text}e{exponent:+03d}"

        return f"{mantissa(mean)} ± {mantissa(spread)}"
    places = _decimals(scale, digits)
    shown_mean = f"{mean:.{places}f}"
    if float(shown_mean) == 0:
        shown_mean = f"{0:.{places}f}"  # no "-0.0"
    return f"{shown_mean} ± {spread:.{places}f}"


def fmt_duration(seconds: float | None) -> str:
    """A wall time: ``0.04 s``, ``1.3 s``, ``12 s``, ``3.4 min``, ``25 min``, ``2.5 h`` (``-`` when unknown)."""
    if _missing(seconds):
        return "-"
    seconds = max(0.0, float(seconds))
    if seconds < 0.995:
        return f"{seconds:.2g} s"
    if seconds < 9.95:
        return f"{seconds:.1f} s"
    if seconds < 59.5:
        return f"{seconds:.0f} s"
    minutes = seconds / 60
    if minutes < 9.95:
        return f"{minutes:.1f} min"
    if minutes < 119.5:
        return f"{minutes:.0f} min"
    return f"{minutes / 60:.1f} h"


def markdown_table(frame: pd.DataFrame) -> str:
    """A DataFrame of strings as a GitHub Markdown table."""
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def summary_markdown(ev: Evaluation) -> str:
    """Metric x run table of mean ± standard error, with the reduction vs the reference."""
    rows = []
    names = metric_names(ev.config.protocol, protected=bool(ev.spec.protected))
    comparison = ev.comparison.set_index(["run", "metric"]) if len(ev.comparison) else None
    for metric in dict.fromkeys(ev.summary.metric):
        row = {"metric": names.get(metric, metric)}
        for label in ev.labels:
            s = ev.summary[(ev.summary.run == label) & (ev.summary.metric == metric)].iloc[0]
            cell = fmt_pm(s["mean"], s["se"])
            if comparison is not None and (label, metric) in comparison.index:
                cell += f" ({change_cell(metric, comparison.loc[(label, metric)])})"
            row[label] = cell
        rows.append(row)
    return markdown_table(pd.DataFrame(rows))


def settings_lines(ev: Evaluation) -> list[str]:
    """What the evaluation searched: the protocol, the generator, and which features each search froze."""
    cfg = ev.config
    lambdas = ", ".join(f"{v:g}" for v in cfg.lambda_energies)
    energy = f", lambda_energy in {{{lambdas}}}" if accepts_lambda_energy(cfg.generator) else ""
    options = ", ".join(f"{k}={v}" for k, v in cfg.resolved_generator_options().items()) or "its defaults"
    n = cfg.n_factuals or "the protocol's default number of"
    protocol = (
        " (the paper's, as the reference's code runs it: factuals drawn per model among the test rows it predicts "
        "as the round's factual class, valid counterfactuals only, X+ from the test split)"
        if cfg.protocol == "paper" else
        " (every counterfactual counts, factual rows paired across models, X+ from the training split)"
    )

    def frozen(setting: str) -> str:
        names = ev.frozen.get(setting, [])
        return "frozen: " + ", ".join(names) if names else "nothing frozen"

    cost_search = (
        f"* protected search (cost): tau {cfg.cost_tau}; {frozen('protected')}" if ev.spec.protected else
        f"* cost search (cost and its validity): tau {cfg.cost_tau}; {frozen('protected')}; the dataset names no "
        "features to protect, so this search freezes nothing beyond the main search's"
    )
    return [
        f"* protocol: `{cfg.protocol}`{protocol}",
        f"* generator: `{cfg.generator}` ({options}{energy}), T {cfg.max_steps}",
        f"* main search (validity, IP, IP*): tau {cfg.tau}; {frozen('main')}",
        cost_search,
        f"* {cfg.rounds} rounds of {n} factuals, seed {cfg.seed}; * = the {int(cfg.confidence * 100)}% percentile "
        "interval of the per-round difference excludes 0; better/worse = the run against the reference (lower IP, "
        "IP*, cost and steps are better, higher validity is better)",
    ]


def maturity_markdown(ev: Evaluation, last: int = 10) -> str:
    """Share of in-training counterfactuals that matured over the last ``last`` epochs of each run."""
    rows = []
    for label, run in zip(ev.labels, ev.runs, strict=True):
        mature = [r["mature"] for r in run.log[-last:] if r.get("mature") is not None]
        steps = [r["mean_steps"] for r in run.log[-last:] if r.get("mean_steps") is not None]
        rows.append({
            "run": label, "strategy": run.config.strategy,
            f"mature, last {last} epochs": fmt(sum(mature) / len(mature)) if mature else "- (no CT)",
            "mean search steps": fmt(sum(steps) / len(steps)) if steps else "-",
            "training tau / T": f"{run.config.tau} / {run.config.max_steps}" if mature else "-",
        })
    return markdown_table(pd.DataFrame(rows))


def robustness_markdown(ev: Evaluation) -> str:
    """Clean accuracy and accuracy at the largest epsilon per run and attack."""
    top = max(ev.config.epsilons)
    rows = []
    for label in ev.labels:
        part = ev.robustness[ev.robustness.run == label]
        clean = part[(part.epsilon == 0.0) & (part.attack == "fgsm")].accuracy
        row = {"run": label, "clean accuracy": fmt(float(clean.iloc[0]) if len(clean) else None)}
        for attack in ("fgsm", "pgd"):
            acc = part[(part.epsilon == top) & (part.attack == attack)].accuracy
            row[f"{attack.upper()} eps={top:g}"] = fmt(float(acc.iloc[0]) if len(acc) else None)
        rows.append(row)
    return markdown_table(pd.DataFrame(rows))


def formatted(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every float column written by :func:`fmt` (the other columns as they are)."""
    return frame.assign(**{c: frame[c].map(fmt) for c in frame.columns if pd.api.types.is_float_dtype(frame[c])})


def attribution_lines(ev: Evaluation) -> list[str]:
    """The integrated-gradients section: the protected features' share per run, or why there is none."""
    if ev.spec.protected:
        return [markdown_table(formatted(ev.attribution))]
    deltas = "; ".join(f"`{r.run}` {fmt(r.ig_convergence_delta)}" for r in ev.attribution.itertuples()
                       if "ig_convergence_delta" in ev.attribution)
    return ["The dataset names no features to protect, so there is no attribution share on them to report."
            + (f" Completeness check of the integrated gradients (mean |convergence delta|): {deltas}." if deltas
               else "")]


def write_evaluation(ev: Evaluation, out: str | Path) -> list[Path]:
    """Write CSVs, ``evaluation.md`` and the figures of one evaluation into ``out``; return the paths."""
    out = make_folder(Path(out))
    spec = ev.spec
    files: list[Path] = []
    for name in ("rounds", "summary", "comparison", "robustness", "attribution"):
        files.append(atomic_write(out / f"{name}.csv", getattr(ev, name).to_csv(index=False)))
    if ev.row_attribution is not None:
        files.append(atomic_write(out / "attribution_rows.csv", ev.row_attribution.to_csv(index=False)))
    figures = [plots.plot_robustness(ev.robustness, out / "robust_accuracy.png", f"{ev.dataset}: robust accuracy")]
    if spec.protected:  # without protected features there is no share of the attributions on them to draw
        figures.append(plots.plot_attribution(ev.attribution, out / "integrated_gradients.png",
                                              f"{ev.dataset}: IG on protected", ev.row_attribution))
    if spec.n_features == 2:
        panels = [
            {"model": run.model, "example": ev.examples[label], "title": label}
            for label, run in zip(ev.labels, ev.runs, strict=True)
        ]
        figures.append(plots.plot_decision_panels(panels, spec, out / "decision_regions.png", ev.dataset))
    if spec.image_shape:
        figures.append(plots.plot_image_counterfactuals(ev.examples, spec, out / "counterfactual_images.png"))
        figures.append(plots.plot_ig_maps(ev.ig_maps, spec, out / "ig_maps.png"))
    files += figures
    text = [
        f"# Evaluation on {ev.dataset}",
        "",
        f"Runs: {', '.join(f'`{label}` ({run.path})' for label, run in zip(ev.labels, ev.runs, strict=True))}. "
        f"Reference: `{ev.labels[0]}`.",
        "",
        *settings_lines(ev),
        "",
        "Mean over rounds ± the standard deviation of the per-round figures (the bootstrap standard error of one "
        "round's figure); in brackets the run against the reference.",
        "",
        summary_markdown(ev),
        "",
        "## In-training maturity",
        "",
        maturity_markdown(ev),
        "",
        "## Robust accuracy",
        "",
        robustness_markdown(ev),
        "",
        "## Integrated gradients",
        "",
        *attribution_lines(ev),
        "",
        *[f"![{p.stem}]({p.name})" for p in figures],
        "",
        f"Evaluation wall time: {fmt_duration(ev.seconds)}.",
        "",
    ]
    md = out / "evaluation.md"
    atomic_write(md, "\n".join(text))
    files.append(md)
    return files
