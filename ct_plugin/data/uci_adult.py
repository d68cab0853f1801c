"""UCI Adult as published, preprocessed as the paper's reference preprocessed it.

The files are the UCI Machine Learning Repository's ``adult.data`` (32,561 rows) and
``adult.test`` (16,281 rows; its first line is a comment and its labels end with a dot):
14 attributes and the income label, comma-and-space separated, no header, ``?`` for a
missing value. They are looked up in a folder ``uci_adult/`` of the data folders
(:mod:`ct_plugin.data.locate`); ``ct-plugin datasets --download uci_adult`` fetches them.

The reference's preprocessing (METHOD.md section 4): all 8 categorical attributes one-hot
encoded with every level, ``?`` a level of its own (102 columns), the 6 continuous ones
standardised with the training split's mean and standard deviation: 108 encoded columns. An
80/20 stratified split of ``adult.data`` (``test="split"``, the default) or ``adult.data`` for
training and ``adult.test`` for testing (``test="official"``). Protected feature: ``age``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ct_plugin.data.locate import find_file
from ct_plugin.errors import CTPluginError

if TYPE_CHECKING:
    import pandas as pd

    from ct_plugin.data.spec import DatasetSpec

FOLDER = "uci_adult"
CONTINUOUS = ("age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week")
CATEGORICAL = ("workclass", "education", "marital-status", "occupation", "relationship", "race", "sex",
               "native-country")
COLUMNS = ("age", "workclass", "fnlwgt", "education", "education-num", "marital-status", "occupation",
           "relationship", "race", "sex", "capital-gain", "capital-loss", "hours-per-week", "native-country",
           "income")
"""The 15 columns of ``adult.data`` and ``adult.test`` in file order (``adult.names`` lists them)."""
LABELS = ("<=50K", ">50K")
TEST_CHOICES = ("split", "official")
ONEHOT_BOUNDS = ("unit", "inferred")
ONEHOT_GROUPS = ("levels", "reference")
HOW_TO_GET = ("`ct-plugin datasets --download uci_adult` fetches adult.data, adult.test and adult.names from "
              "the UCI Machine Learning Repository into uci_adult/ of the data folder")


def read_adult_file(path: str | Path, comment_line: bool = False) -> pd.DataFrame:
    """Read one published UCI Adult file into a frame of :data:`COLUMNS` (labels without their dot).

    ``comment_line``: skip the first line (``adult.test`` starts with ``|1x3 Cross validator``).
    ``?`` stays a value (a level of its own); blank lines are skipped. A file with another number
    of columns, a non-numeric continuous value or a label other than ``<=50K``/``>50K`` (with or
    without a trailing dot) is refused naming the file and the line.
    """
    import pandas as pd

    path = Path(path)
    try:
        frame = pd.read_csv(path, header=None, names=list(COLUMNS), skipinitialspace=True, dtype=str,
                            keep_default_na=False, skiprows=1 if comment_line else 0, skip_blank_lines=True,
                            on_bad_lines="error", engine="c")
    except pd.errors.ParserError as exc:
        raise CTPluginError(f"{path} is not a UCI Adult file ({len(COLUMNS)} comma-separated columns): {exc}") from None
    except (pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise CTPluginError(f"{path} is not a UCI Adult file: {exc}") from None
    if frame.empty:
        raise CTPluginError(f"{path} holds no rows")
    short = frame[list(COLUMNS)].eq("").any(axis=1).to_numpy() | frame["income"].isna().to_numpy()
    if short.any():
        line = int(short.argmax()) + 1 + int(comment_line)
        raise CTPluginError(f"{path} line {line}: fewer than {len(COLUMNS)} values (a truncated or foreign file?)")
    frame["income"] = frame["income"].str.rstrip(".")
    bad = ~frame["income"].isin(LABELS)
    if bad.any():
        line = int(bad.to_numpy().argmax()) + 1 + int(comment_line)
        raise CTPluginError(f"{path} line {line}: income label {frame['income'][bad].iloc[0]!r} is neither "
                            f"{LABELS[0]!r} nor {LABELS[1]!r}")
    for column in CONTINUOUS:
        numbers = pd.to_numeric(frame[column], errors="coerce")
        if numbers.isna().any():
            line = int(numbers.isna().to_numpy().argmax()) + 1 + int(comment_line)
            raise CTPluginError(f"{path} line {line}: {column} is {frame[column][numbers.isna()].iloc[0]!r}, "
                                "not a number")
        frame[column] = numbers.astype("int64")
    return frame


def load_uci_adult(
    data_dir: str | Path | None = None,
    seed: int = 0,
    test: str = "split",
    test_size: float = 0.2,
    max_rows: int | None = None,
    onehot_bounds: str = "unit",
    onehot_groups: str = "levels",
) -> DatasetSpec:
    """UCI Adult as the reference preprocessed it: 108 encoded columns (see the module docstring).

    Args:
        data_dir: folder holding ``uci_adult/adult.data`` (else the usual search path).
        seed: seed of the split (and of the ``max_rows`` draw).
        test: ``split`` (a stratified ``test_size`` share of ``adult.data``, the reference's) or
            ``official`` (``adult.test``'s 16,281 rows; every row of ``adult.data`` trains).
        test_size: the held-out share with ``test="split"``.
        max_rows: a seeded subset of ``adult.data``'s rows first (for quick runs).
        onehot_bounds: the search domain of the one-hot columns: ``unit`` ([0, 1]) or ``inferred``,
            the reference's in-training domain for every column, ``[min(mean - 2 sd, min), max(mean +
            2 sd, max)]`` over the training rows (below 0 and above 1 for most levels); it matters only
            to a search that moves them as continuous columns (ECCCo ``onehot_steps=continuous``).
        onehot_groups: ``levels`` (each categorical's group is its own levels) or ``reference``, the
            reference's grouping: TaijaData gives a categorical every encoded column whose name
            contains the categorical's name (``contains`` on the lower-case, ``-`` -> ``_`` headers),
            so education's group also takes the continuous ``education-num`` and a projection sets
            it to 0 or 1 with the levels (the spec's ``grouped_with``). For reproducing the paper.
    """
    from ct_plugin.data.builder import from_dataframe  # pandas: imported when the table is loaded

    if test not in TEST_CHOICES:
        raise CTPluginError(f"uci_adult: test must be one of {', '.join(TEST_CHOICES)}, got {test!r}")
    if onehot_bounds not in ONEHOT_BOUNDS:
        choices = ", ".join(ONEHOT_BOUNDS)
        raise CTPluginError(f"uci_adult: onehot_bounds must be one of {choices}, got {onehot_bounds!r}")
    if onehot_groups not in ONEHOT_GROUPS:
        choices = ", ".join(ONEHOT_GROUPS)
        raise CTPluginError(f"uci_adult: onehot_groups must be one of {choices}, got {onehot_groups!r}")
    train_path = find_file(f"{FOLDER}/adult.data", data_dir, HOW_TO_GET)
    frame = read_adult_file(train_path)
    if max_rows is not None:
        if int(max_rows) != max_rows or max_rows < 10:
            raise CTPluginError(f"max_rows must be an integer >= 10, got {max_rows}")
        if max_rows < len(frame):
            frame = frame.sample(n=int(max_rows), random_state=seed).reset_index(drop=True)
    test_frame = None
    if test == "official":
        test_frame = read_adult_file(find_file(f"{FOLDER}/adult.test", data_dir, HOW_TO_GET), comment_line=True)
    spec = from_dataframe(
        frame,
        "income",
        categorical=list(CATEGORICAL),
        continuous=list(CONTINUOUS),
        protected=["age"],
        class_names=list(LABELS),
        desired=">50K",
        test_size=test_size,
        seed=seed,
        name="uci_adult",
        options={"seed": seed, "test": test, "test_size": test_size, "max_rows": max_rows, "source": str(train_path),
                 # only where set: the default's options (and so its cached runs' fingerprints) stay as they were
                 **({"onehot_bounds": onehot_bounds} if onehot_bounds != "unit" else {}),
                 **({"onehot_groups": onehot_groups} if onehot_groups != "levels" else {})},
        test=test_frame,
        # as the paper's other tables: the reference's domain [min(mu - 2 sd, min), max(mu + 2 sd, max)]
        integer=[],
    )
    if onehot_groups == "reference":
        spec.grouped_with = reference_grouping(spec.categorical, spec.continuous)
    if onehot_bounds == "inferred":  # the reference's infer_domain_constraints (nstd 2, Julia's n - 1 sd)
        import numpy as np

        columns = [c for group in spec.onehot_groups for c in group]
        levels = spec.X_train[:, columns].astype(np.float64)
        mean, sd = levels.mean(axis=0), levels.std(axis=0, ddof=1)
        spec.lower[columns] = np.minimum(mean - 2 * sd, levels.min(axis=0))
        spec.upper[columns] = np.maximum(mean + 2 * sd, levels.max(axis=0))
    return spec


def reference_grouping(categorical: dict[str, list[str]], continuous: list[str]) -> dict[str, list[str]]:
    """The continuous columns TaijaData's substring match puts into a categorical's one-hot group.

    Its ``get_categorical_indices`` takes, for each categorical, every encoded column whose name
    contains the categorical's name, after its header formatting (lower case, ``-`` and spaces to
    ``_``): on UCI Adult, ``education`` also takes ``education_num``.
    """
    def formatted(name: str) -> str:
        return name.lower().replace(" ", "_").replace("-", "_")

    joined = {name: [column for column in continuous if formatted(name) in formatted(column)] for name in categorical}
    return {name: columns for name, columns in joined.items() if columns}
