"""Judging tune's trained cells on the validation rows: the fast protocol, each CT cell against its seed's baseline."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ct_plugin.errors import CTPluginError
from ct_plugin.evaluation.protocol import DRAW_VERSION, ProtocolConfig, evaluate_runs
from ct_plugin.grid import Cell
from ct_plugin.jobs import fingerprint, read_marker, write_marker
from ct_plugin.progress import progress_bar
from ct_plugin.runs.load import load_run

#: the fast validation protocol of tuning: the paper's five test-time energies with 4 rounds of 100
#: factuals each (20 searches, a fifth of the final evaluation's 100 rounds x 5 energies). A single
#: energy misjudges validity: Credit's lambda_reg 0.01 kept 82% validity at lambda_energy 1 but 24% at
#: 10. Robustness and integrated gradients (computed by ``evaluate_runs`` but not used to choose)
#: reduced to a minimum, and no search paths drawn
TUNE_PROTOCOL: dict[str, Any] = {
    "protocol": "paper", "rounds": 4, "n_factuals": 100, "lambda_energies": (0.1, 0.5, 1.0, 5.0, 10.0),
    "epsilons": (0.0,),
    "attack_rows": 1, "ig_rows": 2, "ig_steps": 2, "ig_rounds": 1, "path_rows": 0,
}


def protocol_config(options: Mapping[str, Any] | None = None) -> ProtocolConfig:
    """The ``ProtocolConfig`` of tuning: :data:`TUNE_PROTOCOL` updated by ``options``.

    Keys of :data:`TUNE_PROTOCOL` that this version's ``ProtocolConfig`` lacks (e.g. ``protocol``
    before the paper protocol lands) are dropped; unknown keys given in ``options`` are an error.
    """
    fields = {f.name for f in dataclasses.fields(ProtocolConfig)}
    options = dict(options or {})
    unknown = sorted(set(options) - fields)
    if unknown:
        raise CTPluginError(f"unknown evaluation protocol option(s) {unknown}; valid: {', '.join(sorted(fields))}")
    merged = {k: v for k, v in {**TUNE_PROTOCOL, **options}.items() if k in fields}
    for key in ("lambda_energies", "epsilons"):
        if key in merged and isinstance(merged[key], list | tuple):
            merged[key] = tuple(merged[key])
    return ProtocolConfig(**merged).validate()


JUDGEMENT = "tune_eval.json"
"""A CT cell's done-marker of its validation judgement (:mod:`ct_plugin.jobs`), fingerprinted by the protocol."""

#: CT runs evaluated together with the baseline in one ``evaluate_runs`` call (and cached together): the
#: default grid's 9 in one call, so the baseline is evaluated once (each run costs about 7 CPU-seconds)
EVALUATION_CHUNK = 9


def evaluate_cells(
    vanilla: Cell, cells: Sequence[Cell], out: Path, protocol: ProtocolConfig, progress: bool, need_cost: bool = False,
    device: str = "auto",
) -> dict[str, dict[str, float]]:
    """Per CT cell: IP, IP*, validity and the protected search's cost vs the baseline (cached in ``tune_eval.json``).

    ``need_cost``: a cached judgement made before cost was recorded is redone (the rule judges cost).
    ``device``: where the evaluation runs (not part of the cache key).
    """
    # the draw version too: a cached judgement made with other random draws is redone
    key = fingerprint({"protocol": dataclasses.asdict(protocol), "reference": vanilla.cell_id,
                       "draw_version": DRAW_VERSION})
    results: dict[str, dict[str, float]] = {}
    todo = []
    for cell in cells:
        cached = read_marker(out / "cells" / cell.cell_id, JUDGEMENT, key)
        if cached is not None and isinstance(cached.get("figures"), dict) and (
                not need_cost or "cost_reduction_pct" in cached["figures"]):
            results[cell.cell_id] = cached["figures"]
        else:
            todo.append(cell)
    if not todo:
        return results
    reference = load_run(out / "cells" / vanilla.cell_id)
    chunks = [todo[i:i + EVALUATION_CHUNK] for i in range(0, len(todo), EVALUATION_CHUNK)]
    bar = progress_bar(len(cells), "tune: evaluating", initial=len(results), quiet=not progress, unit="run")
    try:
        for chunk in chunks:  # the baseline is evaluated once per chunk; draws are the same in every call
            runs = [reference, *(load_run(out / "cells" / cell.cell_id) for cell in chunk)]
            evaluation = evaluate_runs(runs, protocol, labels=["vanilla", *(cell.cell_id for cell in chunk)],
                                       device=device)
            comparison = evaluation.comparison.set_index(["run", "metric"])
            for cell in chunk:
                figures: dict[str, float] = {}
                for metric in ("ip", "ip_star", "validity", "cost"):
                    row = comparison.loc[(cell.cell_id, metric)]
                    figures.update({
                        f"{metric}_reference": float(row["reference_mean"]), f"{metric}_run": float(row["run_mean"]),
                        f"{metric}_reduction_pct": float(row["reduction_pct"]),
                        f"{metric}_significant": bool(row["significant"]),
                    })
                write_marker(out / "cells" / cell.cell_id, JUDGEMENT, key, {"figures": figures})
                results[cell.cell_id] = figures
            bar.update(len(chunk))
    finally:
        bar.close()
    return results
