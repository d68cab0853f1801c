"""The paper protocol's comparison of runs: per-round means over the energy grid, then the per-round ratio.

What the reference's code reports (METHOD.md section 5): per round the run/reference ratio of the
round means, the reduction ``-(mean ratio - 1) * 100`` and a percentile interval of the paired
differences. Used by :func:`~ct_plugin.evaluation.protocol.paper.evaluate_paper` and by ``tune``'s
selection rule.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ct_plugin.evaluation.metrics.directions import LOWER_IS_BETTER
from ct_plugin.evaluation.protocol.common import METRIC_SETTING, summary_records
from ct_plugin.evaluation.protocol.config import MAIN, PROTECTED


def per_round_means(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (run, round) means over the lambda grid (nan-aware), main and protected settings joined.

    Columns: every main metric, plus ``cost``, ``cost_mad`` (where computed) and ``validity_protected``
    from the protected setting.
    """
    main = frame[frame.setting == MAIN].drop(columns=["setting", "lambda_energy", "factual_class",
                                                      "target_class", "cost", "cost_mad"], errors="ignore")
    prot = frame[frame.setting == PROTECTED][[c for c in ("run", "round", "validity", "cost", "cost_mad")
                                              if c in frame.columns]]
    main = main.groupby(["run", "round"], sort=False).mean(numeric_only=True)
    prot = prot.groupby(["run", "round"], sort=False).mean(numeric_only=True).rename(
        columns={"validity": "validity_protected"})
    return main.join(prot, how="outer").reset_index()


def ratio_comparison(reference: np.ndarray, other: np.ndarray, confidence: float) -> dict[str, float | bool]:
    """The reference's comparison of paired per-round figures (run over reference).

    ``reduction_pct = -(mean(other / reference) - 1) * 100`` over rounds where both are finite and
    the reference is non-zero; ``se_pct = 100 * sd(ratio)``; the percentile interval of
    ``reference - other`` at ``confidence``; significant when it excludes 0.
    """
    both = np.isfinite(reference) & np.isfinite(other)
    ok = both & (reference != 0)
    ratio = other[ok] / reference[ok]
    diff = reference[both] - other[both]
    alpha = (1.0 - confidence) / 2.0
    low, high = (float(np.quantile(diff, alpha)), float(np.quantile(diff, 1 - alpha))) if len(diff) else (
        float("nan"), float("nan"))
    return {
        "reduction_pct": float(-(ratio.mean() - 1.0) * 100.0) if len(ratio) else float("nan"),
        "se_pct": float(100.0 * ratio.std(ddof=1)) if len(ratio) > 1 else float("nan"),
        "diff_low": low, "diff_high": high,
        "significant": bool(np.isfinite(low) and (low > 0 or high < 0)),
        "paired_rounds": int(both.sum()),
    }


def summarise_paper(frame: pd.DataFrame, labels: Sequence[str], confidence: float
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Means and standard errors per run; each later run against the first by the per-round ratio."""
    rounds = per_round_means(frame)
    metrics = [m for m in rounds.columns if m not in ("run", "round")]
    summary_rows, comparison_rows = summary_records(rounds, labels, metrics), []
    ref = rounds[rounds.run == labels[0]].set_index("round")
    for label in labels[1:]:
        other = rounds[rounds.run == label].set_index("round").reindex(ref.index)
        for metric in metrics:
            a, b = ref[metric].to_numpy(dtype=float), other[metric].to_numpy(dtype=float)
            stats = ratio_comparison(a, b, confidence)
            comparison_rows.append({
                "reference": labels[0], "run": label, "metric": metric,
                "setting": METRIC_SETTING.get(metric, MAIN),
                "reference_mean": float(np.nanmean(a)) if np.isfinite(a).any() else float("nan"),
                "run_mean": float(np.nanmean(b)) if np.isfinite(b).any() else float("nan"),
                "lower_is_better": metric in LOWER_IS_BETTER, **stats,
            })
    return pd.DataFrame(summary_rows), pd.DataFrame(comparison_rows)
