"""The real tables for the tests, found by the product's own resolver (ct_plugin.data.locate).

CI places them in ../shared/data beside the checkout; when $CT_PLUGIN_DATA is unset and that
folder exists, it becomes $CT_PLUGIN_DATA (the same default the Makefile uses). Tests needing a
table skip, with the resolver's list of searched folders, when none holds it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ct_plugin.data.locate import DataNotFoundError, find_file

REPO = Path(__file__).resolve().parents[1]
CI_DATA = (REPO.parent / "shared" / "data").resolve()


def use_ci_data_by_default() -> None:
    """Point $CT_PLUGIN_DATA at ../shared/data when unset and that folder exists."""
    if not os.environ.get("CT_PLUGIN_DATA") and CI_DATA.is_dir():
        os.environ["CT_PLUGIN_DATA"] = str(CI_DATA)


def real_data_dir(file: str = "adult.csv") -> Path:
    """The folder the resolver finds ``file`` in; skips the test (with the places searched) if none."""
    try:
        return find_file(file).parent
    except DataNotFoundError as exc:
        pytest.skip(f"real table not available: {exc}")
