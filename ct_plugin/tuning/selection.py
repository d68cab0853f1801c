"""The selection rule of ``ct-plugin tune``: which grid configuration wins, and the fallback.

Every configuration is judged against the vanilla baseline trained on the same carved split:

1. **accuracy**: validation accuracy at most ``max_accuracy_drop`` (1 point) below vanilla's,
   after a margin of ``margin_se`` (1) standard errors of the measured drop;
2. **maturity**: share of mature counterfactuals in training (the log's ``mature``) at least
   ``min_maturity`` (50%) on average over the last ``maturity_epochs`` (10) epochs;
3. **validity**: validation validity at most ``max_validity_drop`` (5 points) below vanilla's,
   after the same margin;
4. the IP reduction vs vanilla must be measurable (some valid counterfactuals).

**Margin.** A drop is judged as ``measured drop + margin_se x its standard error`` (the criteria
table's ``accuracy_se`` and ``validity_se``, :mod:`ct_plugin.tuning.criteria`): a configuration
passes only where the validation split shows it within the tolerance with some confidence, not
where it sits on the edge (GMSC's 4.9 validation points of validity loss became 6.8 on test).
``margin_se=0`` judges the measured drops alone; a table without the standard-error columns is
judged without a margin.

Among the configurations passing all four, those whose validation IP is *significantly* lower
than vanilla's (``ip_significant`` and a positive reduction) rank first; within each group the
largest validation IP reduction wins, ties go to the larger IP* reduction, then to the first in
grid order. When none passes (a flagged fallback), the one that violates the constraints least
wins: the smallest sum of the shortfalls beyond each threshold in percentage points (accuracy,
maturity, validity), ties broken as above; configurations whose IP cannot be measured come last.

**Significance.** ``ip_significant`` is the evaluation protocol's own test of the IP difference
(:func:`ct_plugin.evaluation.protocol.ratios.ratio_comparison`): the percentile interval over the
rounds of the paired per-round differences, at the protocol's ``confidence`` (99% by default),
excludes 0; with several training seeds it must hold in every seed, in the same direction
(:func:`ct_plugin.tuning.seeds.mean_figures`). It is the ``*`` of the comparison tables.

**CT or vanilla.** Vanilla is always a candidate: it meets every constraint by definition and its
IP reduction is 0. CT is recommended only when a configuration passes *and* lowers validation IP
significantly; a reduction the interval does not separate from 0 (e.g. 2.1% over 4 rounds) is
noise, and :attr:`Choice.recommend_ct` is then False: ``tune`` writes a vanilla ``chosen.json``
(the best CT configuration is still reported, and ``always_ct`` writes it instead).

**No recommendation.** Before judging, the vanilla baseline itself must be measurable
(:func:`baseline_problems`): in every seed validation accuracy above the majority-class share,
validation validity at least ``min_baseline_validity`` (10%) and a finite IP. A baseline that
fails (typically: too few epochs) makes every comparison meaningless, so ``tune`` recommends
nothing (:attr:`Choice.recommendation` ``"none"``) instead of "vanilla". The validity floor is
low on purpose: a converged vanilla model can validate few of the protocol's counterfactuals
(circles: 48% at 100% accuracy, ``docs/results.md``) and still be a sound baseline; below 10%
its IP rests on a handful of searches per round.

**Resolution.** :func:`resolution_warning` flags a validation split whose single row is worth
more accuracy than the rule's tolerance (``1 / n_validation > max_accuracy_drop``): there the
accuracy check only passes configurations that misclassify no more validation rows than vanilla.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from ct_plugin.errors import CTPluginError

#: columns the rule reads from the criteria table
CRITERIA = (
    "accuracy", "vanilla_accuracy", "mature_last", "validity", "vanilla_validity",
    "ip_reduction_pct", "ip_significant", "ip_star_reduction_pct",
)


@dataclass(frozen=True)
class SelectionRule:
    """Thresholds of the selection rule (fractions, not points: 0.01 is one point)."""

    max_accuracy_drop: float = 0.01
    min_maturity: float = 0.5
    maturity_epochs: int = 10
    max_validity_drop: float = 0.05
    min_baseline_validity: float = 0.1
    margin_se: float = 1.0
    """Standard errors of the measured accuracy and validity drops added to them before the tolerances apply."""
    max_cost_increase: float | None = None
    """Off by default. A fraction: a configuration whose validation cost of recourse (the protected search's
    mean L1, valid counterfactuals) exceeds vanilla's by more than this share fails the rule (0: no higher)."""

    def validate(self) -> SelectionRule:
        """Raise :class:`CTPluginError` naming an impossible threshold; return self."""
        for name in ("max_accuracy_drop", "min_maturity", "max_validity_drop", "min_baseline_validity"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
                raise CTPluginError(f"selection rule: {name} must be a fraction in [0, 1], got {value!r}")
        margin = self.margin_se
        if not isinstance(margin, int | float) or isinstance(margin, bool) or not 0.0 <= margin <= 10.0:
            raise CTPluginError(f"selection rule: margin_se must be a number of standard errors in [0, 10], "
                                f"got {margin!r}")
        cost = self.max_cost_increase
        if cost is not None and (not isinstance(cost, int | float) or isinstance(cost, bool) or not 0.0 <= cost < 100):
            raise CTPluginError(f"selection rule: max_cost_increase must be None or a fraction >= 0 (0.1 = 10%), "
                                f"got {cost!r}")
        if not isinstance(self.maturity_epochs, int) or self.maturity_epochs < 1:
            value = self.maturity_epochs
            raise CTPluginError(f"selection rule: maturity_epochs must be a positive integer, got {value!r}")
        return self

    def describe(self) -> str:
        """The rule in one sentence."""
        return (
            f"best validation IP reduction among configurations with validation accuracy at most "
            f"{100 * self.max_accuracy_drop:g} point(s) below vanilla, in-training maturity >= "
            f"{100 * self.min_maturity:g}% on average over the last {self.maturity_epochs} epochs, and "
            f"validation validity at most {100 * self.max_validity_drop:g} points below vanilla"
            + ("" if self.margin_se == 0 else
               f" (each drop judged with a margin of {self.margin_se:g} standard error(s) added)")
            + ("" if self.max_cost_increase is None else
               f", and validation cost of recourse at most {100 * self.max_cost_increase:g}% above vanilla's") + "; "
            "if none passes: the least violation of these constraints (flagged); CT is recommended only when "
            "the chosen configuration passes and its IP reduction is significant at the protocol's interval, "
            "and nothing is recommended when the vanilla baseline cannot be measured (validation accuracy not "
            f"above the majority class, validity below {100 * self.min_baseline_validity:g}% or no valid "
            "counterfactuals)"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (written into the chosen config's metadata)."""
        return asdict(self)


@dataclass(frozen=True)
class Choice:
    """The outcome of :func:`choose` (or of :func:`unmeasured` when the baseline cannot be measured).

    ``index`` is the best CT configuration's row; ``unmeasured`` the reasons the vanilla baseline
    could not be measured (then nothing is recommended).
    """

    index: int
    passed: bool
    message: str
    recommend_ct: bool = True
    unmeasured: tuple[str, ...] = ()

    @property
    def fallback(self) -> bool:
        """Whether no configuration passed and the least-violating one was taken."""
        return not self.passed

    @property
    def recommendation(self) -> str:
        """``"ct"``, ``"vanilla"``, or ``"none"`` when the baseline could not be measured."""
        if self.unmeasured:
            return "none"
        return "ct" if self.recommend_ct else "vanilla"


def _number(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number


def apply_rule(table: pd.DataFrame, rule: SelectionRule) -> pd.DataFrame:
    """The criteria table with per-criterion pass columns, ``violation_pts``, ``pass`` and ``reasons``."""
    missing = [c for c in CRITERIA if c not in table.columns]
    if missing:
        raise CTPluginError(f"criteria table lacks column(s) {missing}")
    out = table.copy()
    acc_short, mat_short, val_short, cost_short, ok_rows, reasons = [], [], [], [], [], []
    for _, row in out.iterrows():
        acc, acc0 = _number(row["accuracy"]), _number(row["vanilla_accuracy"])
        mat, val, val0 = _number(row["mature_last"]), _number(row["validity"]), _number(row["vanilla_validity"])
        ip = _number(row["ip_reduction_pct"])
        acc_margin = rule.margin_se * _standard_error(row, "accuracy_se")
        val_margin = rule.margin_se * _standard_error(row, "validity_se")
        # shortfalls beyond the thresholds, in points (nan figures count as a full 100-point miss)
        a = 100.0 * max(0.0, (acc0 - rule.max_accuracy_drop) - (acc - acc_margin)) if math.isfinite(acc) else 100.0
        # a method that runs no in-training search has no maturity: only a rule asking for none passes it
        m = 100.0 * max(0.0, rule.min_maturity - mat) if math.isfinite(mat) else (
            0.0 if rule.min_maturity <= 0 else 100.0)
        v = 100.0 * max(0.0, (val0 - rule.max_validity_drop) - (val - val_margin)) if math.isfinite(val) else 100.0
        c = 0.0
        if rule.max_cost_increase is not None:  # cost reduction in %: -12 means 12% costlier than vanilla
            cost = _number(row.get("cost_reduction_pct"))
            c = max(0.0, -cost - 100.0 * rule.max_cost_increase) if math.isfinite(cost) else 100.0
        why = []
        if a > 1e-9:
            why.append(f"accuracy {100 * acc:.2f}% vs vanilla {100 * acc0:.2f}%{_with_margin(acc_margin, rule)}")
        if m > 1e-9:
            why.append(f"maturity {100 * mat:.2f}% < {100 * rule.min_maturity:g}%")
        if v > 1e-9:
            why.append(f"validity {100 * val:.2f}% vs vanilla {100 * val0:.2f}%{_with_margin(val_margin, rule)}")
        if c > 1e-9:
            above = -_number(row.get("cost_reduction_pct"))
            why.append(f"cost of recourse {above:.2f}% above vanilla's (rule: at most "
                       f"{100 * (rule.max_cost_increase or 0):g}%)")
        if not math.isfinite(ip):
            why.append("IP not measurable (no valid counterfactuals)")
        acc_short.append(a)
        mat_short.append(m)
        val_short.append(v)
        cost_short.append(c)
        ok_rows.append(not why)
        reasons.append("; ".join(why))
    out["accuracy_ok"] = [s <= 1e-9 for s in acc_short]
    out["maturity_ok"] = [s <= 1e-9 for s in mat_short]
    out["validity_ok"] = [s <= 1e-9 for s in val_short]
    if rule.max_cost_increase is not None:
        out["cost_ok"] = [s <= 1e-9 for s in cost_short]
    out["violation_pts"] = [a + m + v + c for a, m, v, c in zip(acc_short, mat_short, val_short, cost_short,
                                                                  strict=True)]
    out["pass"] = ok_rows
    out["reasons"] = reasons
    return out


def _standard_error(row: Mapping[str, Any], column: str) -> float:
    """A criteria row's standard error in ``column`` (0 where the table has none or it is not finite)."""
    value = _number(row.get(column))
    return value if math.isfinite(value) and value > 0 else 0.0


def _with_margin(margin: float, rule: SelectionRule) -> str:
    return "" if margin <= 0 else f" (with the {rule.margin_se:g}-SE margin of {100 * margin:.2f} points)"


def significantly_lower_ip(row: Mapping[str, Any]) -> bool:
    """Whether a criteria row's validation IP is significantly below vanilla's (significant, reduction > 0)."""
    ip = _number(row["ip_reduction_pct"])
    return bool(math.isfinite(ip) and ip > 0 and _flag(row.get("ip_significant")))


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "1")
    try:
        return bool(value) and not (isinstance(value, float) and math.isnan(value))
    except (TypeError, ValueError):
        return False


def _ranking_key(row: pd.Series, position: int) -> tuple[float, float, int]:
    ip, ip_star = _number(row["ip_reduction_pct"]), _number(row["ip_star_reduction_pct"])
    return (-ip if math.isfinite(ip) else math.inf, -ip_star if math.isfinite(ip_star) else math.inf, position)


def _interval(confidence: float | None) -> str:
    return "the protocol's interval" if confidence is None else f"the protocol's {100 * confidence:g}% interval"


def choose(judged: pd.DataFrame, confidence: float | None = None) -> Choice:
    """Pick a row of a table returned by :func:`apply_rule` (see the module docstring for the rule).

    ``confidence``: the evaluation protocol's interval level, named in the message.
    """
    if judged.empty:
        raise CTPluginError("no configuration to choose from: every grid cell failed")
    rows = list(judged.reset_index(drop=True).iterrows())
    passing = [(i, row) for i, row in rows if bool(row["pass"])]
    if passing:
        better = [(i, row) for i, row in passing if significantly_lower_ip(row)]
        index = min(better or passing, key=lambda item: _ranking_key(item[1], item[0]))[0]
        row = judged.iloc[index]
        best = _number(row["ip_reduction_pct"])
        head = f"{len(passing)} of {len(rows)} configurations pass"
        if better:
            return Choice(index, True, f"{head}, {len(better)} with a validation IP reduction significant at "
                                       f"{_interval(confidence)}; chosen: IP reduction {best:.2f}% (significant)")
        if best > 0:
            why = f"IP reduction {best:.2f}% is not significant at {_interval(confidence)}"
        else:
            why = f"IP reduction {best:.2f}% (no passing configuration reduces IP on the validation split)"
        return Choice(index, True, f"{head}; best CT configuration: {why}: vanilla recommended", recommend_ct=False)

    def fallback_key(item: tuple[int, pd.Series]) -> tuple[int, float, tuple[float, float, int]]:
        i, row = item
        unmeasured = int(not math.isfinite(_number(row["ip_reduction_pct"])))
        return (unmeasured, round(float(row["violation_pts"]), 9), _ranking_key(row, i))

    index = min(rows, key=fallback_key)[0]
    row = judged.iloc[index]
    return Choice(index, False, f"NO configuration passes the selection rule; FALLBACK: the least violation "
                                f"({float(row['violation_pts']):.2f} points: {row['reasons']}); vanilla "
                                "recommended", recommend_ct=False)


def unmeasured(index: int, passed: bool, problems: Sequence[str]) -> Choice:
    """The choice when the vanilla baseline cannot be measured: nothing recommended, the causes and the fix named."""
    return Choice(index, passed, "NO RECOMMENDATION: the vanilla baseline could not be measured on the validation "
                                 f"split ({'; '.join(problems)}), so no comparison with it means anything; "
                                 "train it longer (more --epochs / epochs=..., or a larger lr) and run tune again",
                  recommend_ct=False, unmeasured=tuple(problems))


def baseline_problems(per_seed: Sequence[Mapping[str, Any]], majority_share: float, rule: SelectionRule) -> list[str]:
    """Why the vanilla baseline cannot be measured (empty when it can), one entry per seed and cause.

    ``per_seed``: per training seed ``{"seed", "accuracy", "validity", "ip"}`` of the vanilla run on
    the validation split (validity and IP from the protocol; a missing figure is skipped).
    ``majority_share``: the share of the validation split's most common class. A seed fails when its
    accuracy is not above ``majority_share`` (it learned nothing a constant prediction does not
    know), its validity is below ``rule.min_baseline_validity``, or its IP is not finite (no valid
    counterfactual in some round).
    """
    problems = []
    for figures in per_seed:
        seed = figures.get("seed")
        where = "" if seed is None else f"seed {seed}: "
        accuracy, validity, ip = (_number(figures.get(k)) for k in ("accuracy", "validity", "ip"))
        if not math.isfinite(accuracy) or accuracy <= majority_share + 1e-12:
            problems.append(f"{where}vanilla validation accuracy {100 * accuracy:.1f}% is no better than always "
                            f"predicting the majority class ({100 * majority_share:.1f}%)")
        if "validity" in figures and not (math.isfinite(validity) and validity >= rule.min_baseline_validity):
            problems.append(f"{where}vanilla validation validity {100 * validity:.1f}% is below "
                            f"{100 * rule.min_baseline_validity:g}%")
        if "ip" in figures and not math.isfinite(ip):
            problems.append(f"{where}vanilla IP is undefined (no valid counterfactuals)")
    return problems


def resolution_warning(n_validation: int, rule: SelectionRule) -> str | None:
    """A warning when one validation row is worth more accuracy than the rule allows to lose (else None).

    With ``n`` rows one misclassification moves accuracy by ``1 / n``; when that exceeds
    ``max_accuracy_drop`` the accuracy check cannot tell a 1-point loss from a single extra error.
    """
    if n_validation < 1:
        return f"the validation split has no rows (n = {n_validation})"
    step = 1.0 / n_validation
    if step <= rule.max_accuracy_drop or rule.max_accuracy_drop == 0:  # 0: no extra error allowed, by request
        return None
    return (f"the validation split has {n_validation} rows: one misclassified row moves validation accuracy by "
            f"{100 * step:.2f} points, more than the rule's {100 * rule.max_accuracy_drop:g}-point tolerance, so the "
            "accuracy check only passes configurations that misclassify no more validation rows than vanilla; "
            f"use at least {math.ceil(1 / rule.max_accuracy_drop)} validation rows (--validation-size, or more data)")
