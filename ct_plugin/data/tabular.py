"""The four real tables of the paper, read from a local data directory.

The file is looked up by :mod:`ct_plugin.data.locate` (the ``data_dir`` argument, then
``$CT_PLUGIN_DATA``, then the user cache ``~/.cache/ct-plugin/data``). Nothing here touches
the network unless :func:`download` is called explicitly.
"""

from __future__ import annotations

import hashlib
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ct_plugin.atomic import atomic_write
from ct_plugin.data.locate import download_dir, find_file
from ct_plugin.errors import CTPluginError

if TYPE_CHECKING:
    import pandas as pd

    from ct_plugin.data.spec import DatasetSpec


@dataclass(frozen=True)
class TableInfo:
    """How one real table is read."""

    file: str
    target: str
    protected: str
    class_names: tuple[str, str]
    desired: str
    """The favourable class (the target of recourse)."""
    categorical: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()
    impute: str | None = None
    url: str = ""
    sha256: str = ""
    manual: str = ""
    notes: str = ""
    binarise_at_median: bool = False
    extra: dict = field(default_factory=dict)
    reference_difference: str = ""
    """How this table differs from the reference's (TaijaData) version, for comparison tables."""
    feature_sets: tuple[str, ...] = ("as-is",)
    """Values of ``load_table(features=...)`` this table accepts (the first is the default)."""


REFERENCE_BALANCED = ("gmsc", "california_housing", "credit_default")
"""Tables the reference class-balanced by undersampling (load them with ``balance=True`` to match)."""


TABLES: dict[str, TableInfo] = {
    "adult": TableInfo(
        file="adult.csv",
        target="income",
        protected="age",
        class_names=("<=50K", ">50K"),
        desired=">50K",
        categorical=("workclass", "marital-status", "occupation", "relationship", "race", "sex", "native-country"),
        url="https://raw.githubusercontent.com/carla-recourse/cf-data/main/adult.csv",
        sha256="e98ef37848b34919802d9e110718dd02ccbc8ec0369677f92bb1fd40b71eccdc",
        notes="UCI Adult as pre-processed by CARLA's cf-data (categoricals with two levels)",
        reference_difference="cf-data Adult has two-level categoricals (20 encoded columns, 48,832 rows); the "
        "reference one-hot-encodes every UCI level (108 columns, 32,561 rows), so its numbers are not "
        "directly comparable",
    ),
    "gmsc": TableInfo(
        file="gmsc.csv",
        target="SeriousDlqin2yrs",
        protected="age",
        class_names=("delinquent", "no delinquency"),
        desired="no delinquency",
        url="https://raw.githubusercontent.com/carla-recourse/cf-data/main/give_me_some_credit_test.csv",
        sha256="3654b651e0bc5ce46c7ef3f807974a6e91c6669c8f5f0b5348556179d1f6df5e",
        notes="Give Me Some Credit (CARLA's cf-data); 1 = no serious delinquency (the desired outcome)",
        reference_difference="cf-data GMSC (Kaggle's test file, 28,882 rows) is about 93/7 imbalanced and "
        "balanced keeps 3,910 rows; the reference's class-balanced GMSC has 16,714 rows",
    ),
    "california_housing": TableInfo(
        file="california_housing.csv",
        target="median_house_value",
        protected="housing_median_age",
        class_names=("below median", "above median"),
        desired="above median",
        categorical=("ocean_proximity",),
        impute="median",
        # the 1990-census table with ocean_proximity, as shipped with Geron's "Hands-on ML" (same bytes)
        url="https://raw.githubusercontent.com/ageron/handson-ml2/master/datasets/housing/housing.csv",
        sha256="8a3727f4cf54ac1a327f69b1d5b4db54c5834ea81c6e4efc0d163300022a685e",
        binarise_at_median=True,
        notes="StatLib 1990 census version with ocean_proximity; target binarised at the median; "
        "the 207 missing total_bedrooms are imputed with the training median; features='sklearn' builds "
        "scikit-learn's 8 features instead (as the reference used)",
        feature_sets=("as-is", "sklearn"),
        reference_difference="the reference used scikit-learn's 8 features; loaded with features='sklearn' they "
        "are derived from this census file's columns, its 207 missing total_bedrooms imputed (AveBedrms)",
    ),
    "credit_default": TableInfo(
        file="credit_default.csv",
        target="Y",
        protected="X5",
        class_names=("no default", "default"),
        desired="no default",
        categorical=("X2", "X3", "X4"),
        drop=("ID",),
        sha256="023eb2c3ad9efd15e7869616fa50a0143f25223105c7069ba632431530afdb61",
        manual=(
            "the UCI Machine Learning Repository ships it as an Excel file only: download "
            "https://archive.ics.uci.edu/static/public/350/default+of+credit+card+clients.zip, open "
            "'default of credit card clients.xls', keep the first header row (ID, X1..X23, Y), drop the "
            "second (LIMIT_BAL, SEX, ...) and save it as credit_default.csv (comma-separated)"
        ),
        notes="UCI default of credit card clients; X2 sex, X3 education, X4 marital status one-hot",
    ),
}


def how_to_get(name: str) -> str:
    """One sentence saying where table ``name`` comes from and how to fetch it."""
    info = TABLES[name]
    if info.url:
        return f"`ct-plugin datasets --download {name}` fetches it from {info.url}"
    return f"get it by hand: {info.manual}"


def table_path(name: str, data_dir: str | Path | None = None) -> Path:
    """Where the CSV of table ``name`` is (see :mod:`ct_plugin.data.locate`); a clear error if nowhere."""
    return find_file(TABLES[name].file, data_dir, how_to_get(name))


def load_table(
    name: str,
    data_dir: str | Path | None = None,
    seed: int = 0,
    test_size: float = 0.2,
    max_rows: int | None = None,
    balance: bool = False,
    features: str = "as-is",
) -> DatasetSpec:
    """Load one of the real tables into a :class:`DatasetSpec` (seeded stratified split).

    ``max_rows`` draws a seeded random subset of rows first (for quick runs). ``balance``
    undersamples every class to the minority count (seeded by ``seed``; after ``max_rows``,
    before the split), as the reference did for the tables in :data:`REFERENCE_BALANCED`.
    ``features``: ``as-is`` (the file's columns) or, for california_housing, ``sklearn``:
    scikit-learn's 8 features, which the reference used (:func:`sklearn_california`).
    """
    import numpy as np
    import pandas as pd

    from ct_plugin.data.builder import from_dataframe  # pandas: the table list is read at registration

    if not isinstance(balance, bool):
        raise CTPluginError(f"balance must be true or false, got {balance!r}")
    if name not in TABLES:
        raise CTPluginError(f"unknown table {name!r}; choose from {', '.join(TABLES)}")
    info = TABLES[name]
    if features not in info.feature_sets:
        raise CTPluginError(f"{name} has no feature set {features!r}; choose from {', '.join(info.feature_sets)}")
    path = table_path(name, data_dir)
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError as exc:
        raise CTPluginError(f"{path} is empty: it holds no header and no rows") from exc
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise CTPluginError(f"cannot parse {path} as CSV: {exc}") from exc
    if frame.empty:
        raise CTPluginError(f"{path} holds a header but no rows")
    if info.target not in frame.columns:
        raise CTPluginError(
            f"{path} has no target column {info.target!r}; columns: {', '.join(map(str, frame.columns))}"
        )
    frame = frame.drop(columns=[c for c in info.drop if c in frame.columns])
    if max_rows is not None:
        if int(max_rows) != max_rows or max_rows < 10:
            raise CTPluginError(f"max_rows must be an integer >= 10, got {max_rows}")
        if max_rows < len(frame):
            frame = frame.sample(n=int(max_rows), random_state=seed).reset_index(drop=True)
    if info.binarise_at_median:
        values = frame[info.target]
        frame[info.target] = (values > values.median()).astype(np.int64)
    protected = info.protected
    if features == "sklearn":
        frame, protected = sklearn_california(frame, info.target), "HouseAge"
    categorical = [c for c in info.categorical if c in frame.columns]
    continuous = [c for c in frame.columns if c not in categorical and c != info.target]
    return from_dataframe(
        frame,
        info.target,
        categorical=categorical,
        continuous=continuous,
        protected=[protected],
        class_names=list(info.class_names),
        desired=info.desired,
        impute=info.impute,
        test_size=test_size,
        seed=seed,
        name=name,
        options={"seed": seed, "test_size": test_size, "max_rows": max_rows, "source": str(path), "balance": balance,
                 "features": features},
        balance=balance,
        # the paper's tables keep the reference's domain, [min(mu - 2 sd, min), max(mu + 2 sd, max)], for every
        # numeric column (no integer rounding or observed-range bounds), so they compare with the paper
        integer=[],
    )


def download(name: str, data_dir: str | Path | None = None) -> Path:
    """Fetch table ``name`` from its public origin into the data directory (needs the network).

    Tables with a public CSV (adult, gmsc, california_housing) are fetched and their checksum
    verified; for the others the error names the exact origin and file.
    """
    info = TABLES.get(name)
    if info is None:
        raise CTPluginError(f"unknown table {name!r}; choose from {', '.join(TABLES)}")
    if not info.url:
        raise CTPluginError(f"{name} has no direct CSV download; {how_to_get(name)}")
    directory = download_dir(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / info.file
    try:
        with urllib.request.urlopen(info.url, timeout=60) as response:
            payload = response.read()
    except OSError as exc:
        raise CTPluginError(f"download of {info.url} failed (are you online?): {exc}") from exc
    digest = hashlib.sha256(payload).hexdigest()
    if info.sha256 and digest != info.sha256:
        raise CTPluginError(f"checksum mismatch for {info.url}: got {digest}, expected {info.sha256}")
    return atomic_write(target, payload)


def sklearn_california(frame: pd.DataFrame, target: str) -> pd.DataFrame:
    """scikit-learn's 8 California housing features, built from the census table's columns.

    ``fetch_california_housing`` (what the reference used) derives them from the same 1990 census
    block groups: MedInc, HouseAge, AveRooms = total_rooms / households, AveBedrms =
    total_bedrooms / households, Population, AveOccup = population / households, Latitude and
    Longitude; ``ocean_proximity`` is not among them. AveBedrms is missing where the file lacks
    total_bedrooms (207 rows); the loader imputes it with the training median.
    """
    import pandas as pd

    households = frame["households"]
    return pd.DataFrame({
        "MedInc": frame["median_income"], "HouseAge": frame["housing_median_age"],
        "AveRooms": frame["total_rooms"] / households, "AveBedrms": frame["total_bedrooms"] / households,
        "Population": frame["population"], "AveOccup": frame["population"] / households,
        "Latitude": frame["latitude"], "Longitude": frame["longitude"], target: frame[target],
    })
