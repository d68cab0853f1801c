"""Training health: stop a run that diverged, and say when its counterfactual terms had little to act on.

**Divergence guard.** Stop a run whose weights or loss went non-finite instead of saving NaNs.

The trainer skips a single update whose loss is non-finite (with a warning). This module
decides, at the end of each epoch and before its checkpoint is written, whether the run has
diverged: non-finite weights, more than :data:`MAX_SKIPPED_SHARE` of the epoch's updates
skipped, or a loss that exploded far beyond anything a classifier reaches while learning. It
then raises :class:`~ct_plugin.errors.TrainingDivergedError` naming the epoch, the term and the
setting most likely at fault; the previous epoch's checkpoint stays on disk so that
``ct-plugin train --resume --out DIR --lr 1e-4`` continues from it with other settings.

**Maturity warnings.** :func:`maturity_problems` says, after training, when few in-training
counterfactuals matured (below :data:`LOW_MATURITY`, 20%, a floor for any run) or every search was
a single jump (the divergence term then has little to act on). A configuration chosen by
``ct-plugin tune`` is held to tune's own, stricter rule (``min_maturity``, 50% by default, over its
``maturity_epochs``), which tune checked on its carved training rows only:
:func:`tuned_maturity_problem` compares the full training run with it (``ct-plugin train --config
chosen.json`` prints it). Both read the same figure, :func:`mature_share`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ct_plugin.config import TrainConfig
from ct_plugin.errors import TrainingDivergedError
from ct_plugin.plugins.registry import LossTerm

PATH_FREE_TERMS = frozenset({"yloss", "augment", "recourse"})
"""Loss terms that do not learn from the in-training search's path (a single-jump search is no problem for them)."""

MAX_SKIPPED_SHARE = 0.1
"""Largest share of an epoch's updates that may be skipped for a non-finite loss."""



@dataclass
class EpochHealth:
    """What one epoch saw: updates done and skipped, and the first non-finite term."""

    batches: int = 0
    skipped: int = 0
    first_bad_term: str | None = None
    bad_terms: dict[str, int] = field(default_factory=dict)

    def record_skip(self, terms: list[str]) -> None:
        """One update skipped because of the non-finite ``terms``."""
        self.skipped += 1
        for term in terms:
            self.bad_terms[term] = self.bad_terms.get(term, 0) + 1
        if self.first_bad_term is None and terms:
            self.first_bad_term = terms[0]


def non_finite_parameters(model: torch.nn.Module) -> list[str]:
    """Names of the parameters holding NaN or inf (one fused check, one sync)."""
    named = [(name, p) for name, p in model.named_parameters()]
    if not named:
        return []
    flags = torch.stack([torch.isfinite(p.detach()).all() for _, p in named]).tolist()
    return [name for (name, _), ok in zip(named, flags, strict=True) if not ok]


def suspect_setting(config: TrainConfig, term: str, terms: Sequence[LossTerm]) -> str:
    """The setting most likely at fault when ``term`` went non-finite (a heuristic, said as such).

    A weight above 100 of the term itself, then the weight above 10 of a term it names in
    ``blamed_weights``, then the term's own ``suspect`` (``lr`` by default).
    """
    by_name = {t.name: t for t in terms}
    if term in by_name and config.term_weight(term, by_name[term].default_weight) > 100:
        return by_name[term].weight_setting
    if term not in by_name:
        return "lr"
    for blamed in by_name[term].blamed_weights:
        if blamed in by_name and config.term_weight(blamed, by_name[blamed].default_weight) > 10:
            return by_name[blamed].weight_setting
    return by_name[term].suspect


def check_epoch(
    model: torch.nn.Module,
    record: dict[str, Any],
    health: EpochHealth,
    config: TrainConfig,
    terms: Sequence[LossTerm],
    checkpoint: str | None,
) -> None:
    """Raise :class:`TrainingDivergedError` if the epoch just trained diverged."""
    epoch = int(record["epoch"])
    bad_parameters = non_finite_parameters(model)
    exploded = [
        term.name for term in terms
        if isinstance(record.get(term.name), float) and abs(record[term.name]) > term.explodes_above
    ]
    limits = {term.name: term.explodes_above for term in terms}
    share = health.skipped / max(health.batches, 1)
    if bad_parameters:
        term = health.first_bad_term or "weights"
        problem = f"the weights went non-finite ({', '.join(bad_parameters[:3])})"
    elif share > MAX_SKIPPED_SHARE:
        term = health.first_bad_term or "loss"
        problem = (
            f"{health.skipped} of {health.batches} updates ({share:.0%}, more than {MAX_SKIPPED_SHARE:.0%}) were "
            f"skipped for a non-finite loss (first term: {term})"
        )
    elif exploded:
        term = exploded[0]
        problem = f"the loss exploded ({term} = {record[term]:.3g} on average, beyond {limits[term]:g})"
    else:
        return
    suspect = suspect_setting(config, term, terms)
    value = _setting_value(config, suspect)
    where = (
        f"; the last good checkpoint is {checkpoint}: continue from it with other settings, e.g. "
        f"`ct-plugin train --resume --out {_run_dir(checkpoint)} --lr ...`"
        if checkpoint
        else ""
    )
    raise TrainingDivergedError(
        f"training diverged in epoch {epoch}: {problem}; most likely at fault: {suspect}{value}{where}",
        epoch=epoch,
        term=term,
        suspect=suspect,
        checkpoint=checkpoint,
    )


def _setting_value(config: TrainConfig, suspect: str) -> str:
    name = suspect.split(" ", 1)[0]
    if name.startswith("lambda_") and not hasattr(config, name):
        value: Any = config.term_weights.get(name[len("lambda_"):])
    else:
        value = getattr(config, name, None)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f" (= {value:g})" if math.isfinite(float(value)) else f" (= {value})"
    return ""


def _run_dir(checkpoint: str) -> str:
    return str(Path(checkpoint).parent)


# ----------------------------------------------------------------- maturity
LOW_MATURITY = 0.2
"""Below this share of matured in-training counterfactuals (last epochs), the divergence term is mostly idle."""


def mature_share(log: Sequence[dict[str, Any]], last: int = 10) -> float | None:
    """Mean share of matured in-training counterfactuals over the last ``last`` epochs (None: none searched)."""
    values = [float(r["mature"]) for r in log[-last:] if r.get("mature") is not None]
    return sum(values) / len(values) if values else None


def tuned_maturity_problem(log: Sequence[dict[str, Any]], min_maturity: float, last: int = 10,
                           tuned: float | None = None) -> str | None:
    """A warning when a run trained from a ``tune`` choice matures less than tune's rule requires (else None).

    ``min_maturity`` and ``last`` are the rule's ``min_maturity`` and ``maturity_epochs``; ``tuned`` the
    share tune measured for the configuration on its carved training rows (named in the warning).
    """
    share = mature_share(log, last)
    if share is None or share >= min_maturity:
        return None
    epochs = sum(1 for r in log[-last:] if r.get("mature") is not None)
    measured = "" if tuned is None or not math.isfinite(tuned) else (
        f"; tune measured {100 * tuned:.1f}% on its carved training rows")
    return (f"the tuned configuration matured {100 * share:.1f}% of its in-training counterfactuals over the last "
            f"{epochs} epochs on the full training split, below tune's rule of at least {100 * min_maturity:g}%"
            f"{measured}: the choice does not carry over to this training (other rows, batches or epochs); check "
            "the run, or tune again with this training's settings")


def maturity_problems(log: Sequence[dict[str, Any]], tau: float, max_steps: int, step_size: float | None,
                      last: int = 10, path_terms: bool = True) -> list[str]:
    """Plain-language problems of the last ``last`` CT epochs of a training log (empty when fine).

    * fewer than :data:`LOW_MATURITY` of the in-training counterfactuals matured (reached ``tau``):
      immature ones are replaced by x+ and give the divergence term nothing to act on;
    * searches mature in a single step on average while (almost) no nascent example exists: every
      search is a jump, so neither the divergence nor the adversarial term sees the search's path.
      Only where ``path_terms``: a term that learns from the search's path is on (see
      :data:`PATH_FREE_TERMS`); CAT's augmentation learns from the counterfactuals found, and its
      factuals are the uncertain rows next to the boundary, one step from it by design.
    """
    records = [r for r in log[-last:] if r.get("mature") is not None]
    mature = mature_share(log, last)
    if mature is None:
        return []
    steps = sum(float(r.get("mean_steps") or 0.0) for r in records) / len(records)
    nascent = sum(float(r.get("nascent") or 0.0) for r in records) / len(records)
    step = "its default" if step_size is None else f"{step_size:g}"
    problems = []
    if mature < LOW_MATURITY:
        problems.append(
            f"only {mature:.0%} of the in-training counterfactuals matured over the last {len(records)} epochs "
            f"(tau {tau:g}, T {max_steps}, search step {step}): immature ones are replaced by x+ and give the "
            "divergence term nothing to act on; try a lower tau, a larger T or step, or `ct-plugin tune`"
        )
    if path_terms and steps <= 1.0 and nascent < 0.05 and mature > 0:
        problems.append(
            f"the in-training searches mature in {steps:.1f} step on average with {nascent:.0%} nascent examples "
            f"over the last {len(records)} epochs (tau {tau:g}, search step {step}): each search is a single jump, "
            "so CT has no search path to learn from; try a smaller search step or a higher tau"
        )
    return problems
