"""The benchmark suite (benchmarks/run.py): its cost model, measurement helpers and a short run."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import ct_plugin
from tests.realdata import real_data_dir

REPO = Path(__file__).resolve().parents[2]
RUN = REPO / "benchmarks" / "run.py"


@pytest.fixture
def real_data() -> Path:
    return real_data_dir()


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("ct_plugin_benchmarks_run", RUN)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_ideal_ratio_matches_the_cost_model_of_the_issue(bench):
    # adult: 39,066 training rows, nce 1000, T 30 -> "about 1.9x"
    assert bench.ideal_ratio(39066, 1000, 30) == pytest.approx(1.845, abs=0.01)
    assert bench.ideal_ratio(3000, 1000, 30) == pytest.approx(12.0)
    assert bench.ideal_ratio(1000, 0, 30) == 1.0


def test_growth_exponent(bench):
    sizes = [1, 2, 4, 8]
    assert bench.growth_exponent(sizes, [3 * s for s in sizes]) == pytest.approx(1.0)
    assert bench.growth_exponent(sizes, [s**2 for s in sizes]) == pytest.approx(2.0)
    assert bench.growth_exponent(sizes, [5.0] * 4) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="resident-set sampling needs Linux /proc")
def test_memory_sampler_sees_an_allocation(bench):
    with bench.RSSSampler("cpu") as sampler:
        block = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
        block += 1
        del block
    assert sampler.increase >= 48


def test_resample_multiplies_the_training_rows_only(bench):
    spec = ct_plugin.load_dataset("moons", n_samples=200)
    bigger = bench.resample(spec, 4)
    assert bigger.X_train.shape == (4 * len(spec.X_train), spec.n_features)
    assert len(bigger.y_train) == len(bigger.X_train)
    assert np.array_equal(bigger.X_test, spec.X_test)
    assert bench.resample(spec, 1) is spec


def test_table_is_markdown(bench):
    text = bench.table("T", ("a", "b"), [["x", 1234.5], ["y", float("nan")]])
    assert "| a " in text and "1,234" in text and "| -" in text


def test_overhead_section_runs_and_reports_ratios(bench, real_data, capsys):
    code = bench.main(["--short", "--only", "overhead", "--repeats", "1", "--quiet", "--data-dir", str(real_data)])
    assert code == 0
    out = capsys.readouterr().out
    assert "Training overhead" in out and "circles" in out and "adult" in out
    assert "CT epoch on adult <= 2.5x vanilla" in out


@pytest.mark.slow
def test_short_suite_end_to_end(real_data, tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, str(RUN), "--short", "--json", str(out), "--data-dir", str(real_data)],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(out.read_text())
    assert {"throughput", "overhead", "scaling"} <= set(results)
    adult = {row["generator"]: row for row in results["throughput"]["adult"]["rows"]}
    assert adult["eccco"]["valid"] == pytest.approx(1.0, abs=0.05)
    # every peer has a row: figures, or the reason it could not run
    assert set(adult) >= {"generic", "eccco", "carla-wachter", "carla-growing-spheres", "dice-random",
                          "dice-genetic", "dice-gradient"}
    assert results["scaling"]["exponents"]["epoch_vs_size"] <= 1.1
    assert results["scaling"]["memory_over_epochs"]["growth_mib"] < 5
    assert "### Targets" in done.stdout


@pytest.mark.slow
def test_threads_and_startup_sections(bench, real_data, capsys):
    code = bench.main(["--short", "--only", "threads,startup", "--quiet", "--data-dir", str(real_data)])
    assert code == 0
    out = capsys.readouterr().out
    assert "### Threads" in out and "default/best" in out and "ct-plugin --help" in out
