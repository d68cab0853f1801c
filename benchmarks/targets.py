"""The targets of ``benchmarks/run.py``: each with the figure measured and whether it is met.

Reads the results of every section that ran (throughput, overhead, scaling, threads, startup)
and prints one table; a section that did not run contributes no row.
"""

from __future__ import annotations

from typing import Any

from benchmarks.common import table


def targets_summary(results: dict[str, Any]) -> str:
    """The issue's targets, each with the measured figure and whether it is met."""
    rows = []
    tp = results.get("throughput", {}).get("adult")
    if tp:
        speedup = tp["speedup_eccco_vs_wachter"]
        by_name = {r["generator"]: r for r in tp["rows"]}
        ours, wachter = by_name.get("eccco", {}), by_name.get("carla-wachter", {})
        equal_validity = isinstance(wachter.get("valid"), float) and ours.get("valid", 0) >= wachter["valid"]
        rows.append(["eccco CFs/s >= 1000x CARLA Wachter on adult, validity >= Wachter's",
                     "-" if speedup is None
                     else f"{speedup:,.0f}x, valid {ours.get('valid')} vs {wachter.get('valid')}",
                     "n/a" if speedup is None else ("yes" if speedup >= 1000 and equal_validity else "no")])
    ov = results.get("overhead", {})
    if "adult" in ov:
        wall, cpu = ov["adult"]["ratio"], ov["adult"]["cpu_ratio"]
        rows.append([f"CT epoch on adult <= 2.5x vanilla ({ov['adult']['epochs']} epochs)",
                     f"{wall:.2f}x wall, {cpu:.2f}x CPU time", "yes" if min(wall, cpu) <= 2.5 else "no"])
    if "adult" in ov and ov["adult"]["epochs"] >= 100:
        s = ov["adult"]["ct"]["wall_seconds"]
        rows.append([f"{ov['adult']['epochs']}-epoch CT run on adult < 120 s", f"{s:.1f} s",
                     "yes" if s < 120 else "no"])
    sc = results.get("scaling", {})
    if sc:
        e = sc["exponents"]["epoch_vs_size"]
        rows.append(["epoch time vs training-set size: exponent <= 1.1", f"{e:.2f}", "yes" if e <= 1.1 else "no"])
        e = sc["exponents"]["search_vs_nce"]
        rows.append(["search time vs nce: exponent <= 1.1", f"{e:.2f}", "yes" if e <= 1.1 else "no"])
        g = sc["memory_over_epochs"]["growth_mib"]
        rows.append(["memory does not grow with epochs (< 5 MiB from epoch 2 to the last)", f"{g:+.1f} MiB",
                     "yes" if g < 5 else "no"])
    for label, case in results.get("threads", {}).get("cases", {}).items():
        ratio = case["default_over_best"]
        rows.append([f"default threads within 20% of the best fixed count: {label}", f"{ratio:.2f}x",
                     "yes" if ratio <= 1.2 else "no"])
    st = results.get("startup")
    if st:
        worst = max(st["--version"], st["--help"])
        rows.append(["ct-plugin --help / --version under 1 s", f"{worst:.2f} s", "yes" if worst < 1.0 else "no"])
    return table("Targets", ("target", "measured", "met"), rows)
