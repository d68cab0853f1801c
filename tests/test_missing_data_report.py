"""tests/conftest.py's report of the tests that need the real tables, on a tiny generated test file.

Without the tables those tests skip and the run's last line says so; with CT_PLUGIN_REQUIRE_DATA=1
(CI) they fail; with the tables nothing is added. Other skips are not counted.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.realdata import REPO

TESTS = '''
import pytest
from tests.realdata import real_data_dir

def test_plain():
    pass

def test_needs_gmsc():
    real_data_dir("gmsc.csv")

def test_needs_the_data_dir_fixture(data_dir):
    assert (data_dir / "adult.csv").is_file()

def test_skipped_for_another_reason():
    pytest.skip("not about data")
'''


def run(tmp_path, data, **env) -> tuple[int, list[str]]:
    (tmp_path / "test_generated.py").write_text(TESTS)
    environment = {key: value for key, value in os.environ.items() if key != "CT_PLUGIN_REQUIRE_DATA"}  # CI's
    environment.update(PYTHONPATH=str(REPO), CT_PLUGIN_DATA=str(data), XDG_CACHE_HOME=str(tmp_path / "cache"), **env)
    command = [sys.executable, "-m", "pytest", "-q", "-ra", "-p", "tests.conftest", "-p", "no:cacheprovider",
               "test_generated.py"]
    done = subprocess.run(command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300)
    return done.returncode, done.stdout.strip().splitlines()


@pytest.fixture
def empty(tmp_path):
    (tmp_path / "empty").mkdir()
    return tmp_path / "empty"


def test_without_the_tables_the_last_line_counts_the_tests_that_need_them(tmp_path, empty):
    code, lines = run(tmp_path, empty)
    assert code == 0, "\n".join(lines)
    assert "1 passed, 3 skipped" in lines[-2]
    last = lines[-1]
    assert last.startswith("NOTE: 2 test(s) needing the real tables SKIPPED, adult.csv, gmsc.csv not found"), last
    assert f"CT_PLUGIN_DATA={empty}" in lines[-1]


def test_ci_setting_turns_those_skips_into_failures(tmp_path, empty):
    code, lines = run(tmp_path, empty, CT_PLUGIN_REQUIRE_DATA="1")
    assert code == 1, "\n".join(lines)
    assert "1 failed, 1 passed, 1 skipped, 1 error" in lines[-2]  # the fixture's skip fails in set-up: an error
    assert lines[-1].startswith("2 test(s) needing the real tables FAILED, adult.csv, gmsc.csv not found"), lines[-1]
    failed = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
    assert len(failed) == 2 and all("CT_PLUGIN_REQUIRE" in line for line in failed), failed
    assert any(line.startswith("SKIPPED") and "not about data" in line for line in lines)


def test_with_the_tables_nothing_is_added(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "adult.csv").write_text("a,b\n1,2\n")
    (data / "gmsc.csv").write_text("a,b\n1,2\n")
    code, lines = run(tmp_path, data, CT_PLUGIN_REQUIRE_DATA="1")
    assert code == 0, "\n".join(lines)
    assert "3 passed, 1 skipped" in lines[-1]
