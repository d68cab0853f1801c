"""What every experiment tracker shares: flattening configs and records, the run's tracking.json."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pandas as pd

from ct_plugin.atomic import atomic_write_json
from ct_plugin.errors import RunDirectoryError
from ct_plugin.untrusted import read_json_object

TRACKING_FILE = "tracking.json"


def flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts become dotted keys: ``{"generator_options": {"step_size": 0.1}}`` gives
    ``generator_options.step_size``."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def param_text(value: Any) -> str:
    """A parameter value as text: JSON for lists and dicts, ``str`` otherwise."""
    return json.dumps(value) if isinstance(value, list | tuple | dict) else str(value)


def numeric_items(record: dict[str, Any]) -> dict[str, float]:
    """The finite numbers of a log record (booleans as 0/1; None, strings and NaN left out)."""
    out: dict[str, float] = {}
    for key, value in record.items():
        if isinstance(value, bool) or (isinstance(value, int | float) and math.isfinite(float(value))):
            out[key] = float(value)
    return out


def metric_key(*parts: Any, sep: str = "/") -> str:
    """A metric name both trackers accept: letters, digits, ``_`` and ``-`` (others become ``_``), joined by ``sep``."""
    return sep.join(re.sub(r"[^A-Za-z0-9_\- ]", "_", str(p)) for p in parts)


def evaluation_figures(tables: dict[str, pd.DataFrame], sep: str = "/") -> dict[str, float]:
    """Headline numbers of an evaluation: per run and metric the mean, the reduction vs the reference, IG shares.

    Keys are ``<run><sep><metric>`` (and ``...<sep>reduction_pct``); MLflow's file store keeps a
    metric per file, so it needs ``sep="."`` (a ``/`` would make ``a/validity`` both file and folder).
    """
    out: dict[str, float] = {}
    summary = tables.get("summary")
    if summary is not None:
        for row in summary.itertuples(index=False):
            out[metric_key(row.run, row.metric, sep=sep)] = float(row.mean)
    comparison = tables.get("comparison")
    if comparison is not None:
        for row in comparison.itertuples(index=False):
            out[metric_key(row.run, row.metric, "reduction_pct", sep=sep)] = float(row.reduction_pct)
    attribution = tables.get("attribution")
    if attribution is not None:
        for record in attribution.to_dict("records"):
            for column in ("protected_share", "ig_convergence_delta"):
                if column in record:
                    out[metric_key(record["run"], column, sep=sep)] = float(record[column])
    return {k: v for k, v in out.items() if math.isfinite(v)}


def read_tracking(run_dir: Path | None) -> dict[str, Any]:
    """The ``tracking.json`` of a run directory (``{}`` if there is none; a malformed one raises, naming it)."""
    if run_dir is None or not (Path(run_dir) / TRACKING_FILE).is_file():
        return {}
    payload = read_json_object(Path(run_dir) / TRACKING_FILE)
    if not all(isinstance(v, dict) for v in payload.values()):
        raise RunDirectoryError(f"{Path(run_dir) / TRACKING_FILE} must map each tracker to a JSON object")
    return payload


def write_tracking(run_dir: Path | None, tracker: str, info: dict[str, Any]) -> None:
    """Record where a tracker logged this run (so ``evaluate`` and ``--resume`` find it again)."""
    if run_dir is None:
        return
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    data = read_tracking(run_dir)
    data[tracker] = info
    atomic_write_json(run_dir / TRACKING_FILE, data)
