"""Shared fixtures: the real data folder, small linear models with known weights.

Also the report of the tests that need the real tables: when those are missing, the last line of
the run says how many such tests were skipped (they are easy to miss in the long skip list), and
with ``CT_PLUGIN_REQUIRE_DATA=1`` (as CI sets it) those tests fail instead of skipping.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import torch

from tests.realdata import real_data_dir, use_ci_data_by_default

REPO = Path(__file__).resolve().parents[1]

# the models in the tests are tiny: intra-op threads only add contention on a 2-core machine
torch.set_num_threads(1)
use_ci_data_by_default()


@pytest.fixture
def data_dir() -> Path:
    """The folder holding the real tables (ct_plugin.data.locate's order); skips if none does."""
    return real_data_dir()


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Keep VAE caches etc. out of the user's home."""
    monkeypatch.setenv("CT_PLUGIN_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


MISSING_DATA = "real table not available"
"""How tests/realdata.py words the skip of a test whose real table is in none of the searched folders."""
REQUIRE_DATA = "CT_PLUGIN_REQUIRE_DATA"
"""Set to 1 (CI does), a test skipped for a missing real table fails instead."""


def _reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    return str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)


class MissingData:
    """Notes the tests (or modules) skipped for want of a real table; fails them under CT_PLUGIN_REQUIRE_DATA."""

    name = "ct-plugin-missing-data"

    def __init__(self) -> None:
        self.required = os.environ.get(REQUIRE_DATA, "").strip() not in ("", "0")
        self.nodeids: list[str] = []
        self.files: set[str] = set()

    def _note(self, report: pytest.TestReport | pytest.CollectReport) -> None:
        if not report.skipped or MISSING_DATA not in (reason := _reason(report)):
            return
        self.nodeids.append(report.nodeid)
        self.files.update(re.findall(r"dataset file '([^']+)' not found", reason))
        if self.required:
            report.outcome = "failed"
            report.longrepr = f"{REQUIRE_DATA} is set: a missing real table is a failure here\n{reason}"

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item, call):
        report = yield
        self._note(report)
        return report

    @pytest.hookimpl(wrapper=True)
    def pytest_make_collect_report(self, collector):
        report = yield
        self._note(report)
        return report

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        """One line after pytest's own summary line, so that it is the last line `make test` prints."""
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if not self.nodeids or reporter is None:
            return
        n = len(self.nodeids)
        tests = f"{n} test(s) needing the real tables" + (" (the README test among them)" if any(
            "test_readme.py" in nodeid for nodeid in self.nodeids) else "")
        tables = ", ".join(sorted(self.files)) or "the real tables"
        where = f"CT_PLUGIN_DATA={os.environ['CT_PLUGIN_DATA']}" if os.environ.get("CT_PLUGIN_DATA") else (
            "CT_PLUGIN_DATA unset")
        if self.required:
            reporter.write_line(f"{tests} FAILED, {tables} not found ({where}; {REQUIRE_DATA} is set)", red=True)
        else:
            reporter.write_line(
                f"NOTE: {tests} SKIPPED, {tables} not found ({where}): put the tables in ../shared/data "
                "or set CT_PLUGIN_DATA=FOLDER (README: Datasets)",
                yellow=True, bold=True,
            )


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin(MissingData.name):
        config.pluginmanager.register(MissingData(), MissingData.name)


def linear_model(weight: list[list[float]], bias: list[float]) -> torch.nn.Linear:
    """A linear classifier with fixed weights (K x d)."""
    w = torch.tensor(weight, dtype=torch.float32)
    layer = torch.nn.Linear(w.shape[1], w.shape[0])
    with torch.no_grad():
        layer.weight.copy_(w)
        layer.bias.copy_(torch.tensor(bias, dtype=torch.float32))
    return layer
