"""Your own CSV file as a dataset (``ct-plugin train --csv FILE --target COLUMN``)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ct_plugin.data.builder import from_dataframe
from ct_plugin.data.spec import DatasetSpec
from ct_plugin.errors import CTPluginError


def read_csv(path: str | Path, what: str = "--csv") -> pd.DataFrame:
    """Read a CSV file with a clear error when it is missing or not a table."""
    path = Path(path)
    if not path.is_file():
        raise CTPluginError(f"{what} file {str(path)!r} not found")
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle), [])
    except (UnicodeDecodeError, csv.Error, OSError) as exc:
        raise CTPluginError(f"cannot read the header of {path}: {exc}") from None
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise CTPluginError(f"{path} has duplicate column names {duplicates}; every column needs a name of its own")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise CTPluginError(f"cannot parse {path} as CSV: {exc}") from exc
    if frame.shape[1] < 2:
        raise CTPluginError(f"{path} has {frame.shape[1]} column(s); need features and a label column")
    return frame


def load_csv(
    path: str | Path | None,
    target: str | None,
    *,
    test_csv: str | Path | None = None,
    categorical: Sequence[str] | None = None,
    seed: int = 0,
    name: str | None = None,
) -> DatasetSpec:
    """A :class:`DatasetSpec` from a CSV file (features plus the ``target`` column).

    ``test_csv`` is a given test split with the same columns (else 20% of the rows are held
    out, stratified). Non-numeric columns and ``categorical`` become one-hot groups; integer
    columns stay integers (see :func:`ct_plugin.from_dataframe`). Mutability is set afterwards
    (``--immutable`` etc., or :meth:`DatasetSpec.with_mutability`).
    """
    if not path:
        raise CTPluginError("--target and --test-csv need --csv FILE (your training table)")
    if not target:
        raise CTPluginError(f"--csv {path} needs --target COLUMN (the label column)")
    frame = read_csv(path)
    test = read_csv(test_csv, "--test-csv") if test_csv else None
    return from_dataframe(
        frame,
        target,
        categorical=categorical,
        test=test,
        seed=seed,
        name=name or Path(path).stem,
        options={"csv": str(Path(path).resolve()), "test_csv": str(Path(test_csv).resolve()) if test_csv else None},
    )
