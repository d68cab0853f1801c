"""Write an :class:`~ct_plugin.evaluation.protocol.Evaluation` as CSV files, a Markdown report and PNGs."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from ct_plugin.atomic import atomic_write, make_folder
from ct_plugin.evaluation import plots
from ct_plugin.evaluation.metrics.directions import change_cell, metric_names
from ct_plugin.evaluation.protocol import Evaluation, accepts_lambda_energy


def fmt(value: float, digits: int = 3) -> str:
    """Number for a Markdown table (``-`` for nan)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if abs(value) and (abs(value) < 10 ** -digits or abs(value) >= 1e5):
        return f"{value:.2e}"
    return f"{value:.{digits}f}"


def markdown_table(frame: pd.DataFrame) -> str:
    """A DataFrame of strings as a GitHub Markdown table."""
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def summary_markdown(ev: Evaluation) -> str:
    """Metric x run table of mean ± standard error, with the reduction vs the reference."""
    rows = []
    names = metric_names(ev.config.protocol)
    comparison = ev.comparison.set_index(["run", "metric"]) if len(ev.comparison) else None
    for metric in dict.fromkeys(ev.summary.metric):
        row = {"metric": names.get(metric, metric)}
        for label in ev.labels:
            s = ev.summary[(ev.summary.run == label) & (ev.summary.metric == metric)].iloc[0]
            cell = f"{fmt(s['mean'])} ± {fmt(s['se'])}"
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

    return [
        f"* protocol: `{cfg.protocol}`{protocol}",
        f"* generator: `{cfg.generator}` ({options}{energy}), T {cfg.max_steps}",
        f"* main search (validity, IP, IP*): tau {cfg.tau}; {frozen('main')}",
        f"* protected search (cost): tau {cfg.cost_tau}; {frozen('protected')}",
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
            f"mature, last {last} epochs": fmt(sum(mature) / len(mature), 2) if mature else "- (no CT)",
            "mean search steps": fmt(sum(steps) / len(steps), 1) if steps else "-",
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
        row = {"run": label, "clean accuracy": fmt(float(clean.iloc[0]) if len(clean) else float("nan"))}
        for attack in ("fgsm", "pgd"):
            acc = part[(part.epsilon == top) & (part.attack == attack)].accuracy
            row[f"{attack.upper()} eps={top:g}"] = fmt(float(acc.iloc[0]) if len(acc) else float("nan"))
        rows.append(row)
    return markdown_table(pd.DataFrame(rows))


def write_evaluation(ev: Evaluation, out: str | Path) -> list[Path]:
    """Write CSVs, ``evaluation.md`` and the figures of one evaluation into ``out``; return the paths."""
    out = make_folder(Path(out))
    spec = ev.spec
    files: list[Path] = []
    for name in ("rounds", "summary", "comparison", "robustness", "attribution"):
        files.append(atomic_write(out / f"{name}.csv", getattr(ev, name).to_csv(index=False)))
    if ev.row_attribution is not None:
        files.append(atomic_write(out / "attribution_rows.csv", ev.row_attribution.to_csv(index=False)))
    figures = [
        plots.plot_robustness(ev.robustness, out / "robust_accuracy.png", f"{ev.dataset}: robust accuracy"),
        plots.plot_attribution(ev.attribution, out / "integrated_gradients.png", f"{ev.dataset}: IG on protected",
                               ev.row_attribution),
    ]
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
        "Mean ± standard error over rounds; in brackets the run against the reference.",
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
        markdown_table(ev.attribution.assign(protected_share=ev.attribution.protected_share.map(fmt),
                                             uniform_share=ev.attribution.uniform_share.map(fmt))),
        "",
        *[f"![{p.stem}]({p.name})" for p in figures],
        "",
        f"Evaluation wall time: {ev.seconds:.1f} s.",
        "",
    ]
    md = out / "evaluation.md"
    atomic_write(md, "\n".join(text))
    files.append(md)
    return files
