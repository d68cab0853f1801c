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
    path: str | None = None,
    target: str | None = None,
    *,
    data_dir: str | None = None,
    seed: int = 0,
    test_csv: str | None = None,
    categorical: str | list[str] | None = None,
    desired: str | int | None = None,
    protected: str | list[str] | None = None,
    impute: str | None = None,
    test_size: float = 0.2,
    split_seed: int = 0,
    name: str | None = None,
) -> DatasetSpec:
    """A :class:`DatasetSpec` from a CSV file (features plus the ``target`` column): the ``csv`` dataset.

    ``ct-plugin train --csv FILE --target COLUMN`` is the dataset ``csv`` with these options, so a
    run (and a ``tune`` choice) records how its table was read and ``train --config`` reads it the
    same way.

    Args:
        path: the CSV file (features plus the label column).
        target: the label column.
        data_dir: unused (the path is given); accepted like every loader's.
        seed: the training seed; unused here: the split follows ``split_seed``, so runs of different
            seeds share one test split.
        test_csv: a given test split with the same columns (else ``test_size`` of the rows are held
            out, stratified).
        categorical: columns to one-hot encode (default: every non-numeric column); a list or a
            comma-separated string.
        desired: the favourable outcome (a class name or label value), the target of recourse.
        protected: the features the evaluation's protected setting freezes and whose attribution it
            measures (``--protect`` makes them immutable in training).
        impute: ``None`` (missing values are an error) or ``"median"``.
        test_size: share of rows held out when no ``test_csv`` is given.
        split_seed: seed of the train/test split (default 0).
        name: the dataset's name (default: the file's stem).

    Integer columns stay integers (see :func:`ct_plugin.from_dataframe`). Mutability is set
    afterwards (``--immutable`` etc., or :meth:`DatasetSpec.with_mutability`).
    """
    del data_dir, seed
    if not path:
        raise CTPluginError("--target and --test-csv need --csv FILE (your training table)")
    if not target:
        raise CTPluginError(f"--csv {path} needs --target COLUMN (the label column)")
    frame = read_csv(path)
    test = read_csv(test_csv, "--test-csv") if test_csv else None
    return from_dataframe(
        frame,
        target,
        categorical=_names(categorical) or None,
        protected=_names(protected),
        desired=desired,
        impute=impute,
        test=test,
        test_size=test_size,
        seed=split_seed,
        name=name or Path(path).stem,
        options={"csv": str(Path(path).resolve()), "test_csv": str(Path(test_csv).resolve()) if test_csv else None,
                 "split_seed": split_seed, "impute": impute},
    )


def _names(value: str | Sequence[str] | None) -> list[str]:
    """A list of column names from a list or a comma-separated string."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    return [str(item).strip() for item in items if str(item).strip()]
