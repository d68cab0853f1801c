"""Judging tune's trained cells on the validation rows: each CT cell against its seed's baseline."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from ct_plugin.atomic import atomic_write_json
from ct_plugin.evaluation.protocol import DRAW_VERSION, ProtocolConfig, evaluate_runs
from ct_plugin.grid import Cell
from ct_plugin.progress import progress_bar
from ct_plugin.runs.load import load_run

#: CT runs evaluated together with the baseline in one ``evaluate_runs`` call (and cached together): the
#: default grid's 9 in one call, so the baseline is evaluated once (each run costs about 7 CPU-seconds)
EVALUATION_CHUNK = 9


def evaluate_cells(
    vanilla: Cell, cells: Sequence[Cell], out: Path, protocol: ProtocolConfig, progress: bool
) -> dict[str, dict[str, float]]:
    """Per CT cell: IP, IP*, validity vs the baseline (cached in the cell's ``tune_eval.json``)."""
    # the draw version too: a cached judgement made with other random draws is redone
    key = hashlib.sha1(json.dumps(
        {"protocol": dataclasses.asdict(protocol), "reference": vanilla.cell_id, "draw_version": DRAW_VERSION},
        sort_keys=True, default=str,
    ).encode()).hexdigest()[:12]
    results: dict[str, dict[str, float]] = {}
    todo = []
    for cell in cells:
        path = out / "cells" / cell.cell_id / "tune_eval.json"
        cached = json.loads(path.read_text()) if path.is_file() else {}
        if cached.get("key") == key:
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
            evaluation = evaluate_runs(runs, protocol, labels=["vanilla", *(cell.cell_id for cell in chunk)])
            comparison = evaluation.comparison.set_index(["run", "metric"])
            for cell in chunk:
                figures: dict[str, float] = {}
                for metric in ("ip", "ip_star", "validity"):
                    row = comparison.loc[(cell.cell_id, metric)]
                    figures.update({
                        f"{metric}_reference": float(row["reference_mean"]), f"{metric}_run": float(row["run_mean"]),
                        f"{metric}_reduction_pct": float(row["reduction_pct"]),
                        f"{metric}_significant": bool(row["significant"]),
                    })
                atomic_write_json(out / "cells" / cell.cell_id / "tune_eval.json", {"key": key, "figures": figures})
                results[cell.cell_id] = figures
            bar.update(len(chunk))
    finally:
        bar.close()
    return results
