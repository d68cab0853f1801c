"""Warnings about a CT run whose counterfactual terms had little to act on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

LOW_MATURITY = 0.2
"""Below this share of matured in-training counterfactuals (last epochs), the divergence term is mostly idle."""


def maturity_problems(log: Sequence[dict[str, Any]], tau: float, max_steps: int, step_size: float | None,
                      last: int = 10) -> list[str]:
    """Plain-language problems of the last ``last`` CT epochs of a training log (empty when fine).

    * fewer than :data:`LOW_MATURITY` of the in-training counterfactuals matured (reached ``tau``):
      immature ones are replaced by x+ and give the divergence term nothing to act on;
    * searches mature in a single step on average while (almost) no nascent example exists: every
      search is a jump, so neither the divergence nor the adversarial term sees the search's path.
    """
    records = [r for r in log[-last:] if r.get("mature") is not None]
    if not records:
        return []
    mature = sum(float(r["mature"]) for r in records) / len(records)
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
    if steps <= 1.0 and nascent < 0.05 and mature > 0:
        problems.append(
            f"the in-training searches mature in {steps:.1f} step on average with {nascent:.0%} nascent examples "
            f"over the last {len(records)} epochs (tau {tau:g}, search step {step}): each search is a single jump, "
            "so CT has no search path to learn from; try a smaller search step or a higher tau"
        )
    return problems
