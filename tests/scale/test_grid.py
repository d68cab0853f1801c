"""Experiment grids: expansion, per-cell run directories, failures, re-runs, and executors giving the same table."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from ct_plugin import cli
from ct_plugin.errors import CTPluginError, MissingDependencyError
from ct_plugin.grid import TIMING_COLUMNS, Cell, adopt_finished_cells, load_grid, parse_grid, read_result, run_grid

GRID_TOML = """
[grid]
name = "test"
datasets = ["moons"]
strategies = ["vanilla", "ct"]
generators = ["eccco", "generic"]
seeds = [0, 1]

[grid.params]
nce = [40]

[train]
epochs = 2
batch_size = 50
max_steps = 10
device = "cpu"
dataset_options = { n_samples = 300 }

[evaluate]
enabled = true
n_factuals = 20
"""


def write_grid(tmp_path: Path, text: str = GRID_TOML) -> Path:
    path = tmp_path / "grid.toml"
    path.write_text(text)
    return path


def comparable(table: list[dict]) -> list[dict]:
    """The table without machine-speed columns (the same seeds must give the same figures)."""
    return [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in table]


def test_cells_expand_the_product_and_share_vanilla_cells(tmp_path):
    config = load_grid(write_grid(tmp_path))
    cells = config.cells()
    # 1 dataset x (1 vanilla + 2 generators) x 1 nce x 2 seeds
    assert len(cells) == 6
    assert [c.strategy for c in cells].count("vanilla") == 2
    assert {c.generator for c in cells if c.strategy == "vanilla"} == {"none"}
    assert len({c.cell_id for c in cells}) == 6
    ct = [c for c in cells if c.strategy == "ct"]
    assert all(c.config["nce"] == 40 and c.config["epochs"] == 2 for c in ct)
    # ids are stable across parses and change when a fixed setting changes
    assert [c.cell_id for c in load_grid(write_grid(tmp_path)).cells()] == [c.cell_id for c in cells]
    other = load_grid(write_grid(tmp_path, GRID_TOML.replace("epochs = 2", "epochs = 3"))).cells()
    assert not {c.cell_id for c in other} & {c.cell_id for c in cells}


@pytest.mark.parametrize(
    ("values", "culprit"),
    [
        ({"train": {}}, "[grid]"),
        ({"grid": {"datasets": ["moons"], "colour": 1}}, "colour"),
        ({"grid": {"datasets": ["moons"], "params": {"not_a_setting": [1]}}}, "not_a_setting"),
        ({"grid": {"datasets": ["moons"], "params": {"nce": []}}}, "nce"),
        ({"grid": {"datasets": ["no_such_set"]}}, "no_such_set"),
        ({"grid": {"datasets": ["moons"], "generators": ["nope"]}}, "nope"),
        ({"grid": {"datasets": ["moons"]}, "train": {"epochz": 3}}, "epochz"),
        ({"grid": {"datasets": ["moons"], "params": {"lr": [-1.0]}}}, "lr"),
        ({"grid": {"datasets": ["moons"]}, "evaluate": {"n_factual": 5}}, "n_factual"),
    ],
)
def test_bad_grid_files_name_the_culprit(values, culprit):
    with pytest.raises(CTPluginError, match=culprit.replace("[", r"\[").replace("]", r"\]")):
        parse_grid(values).cells()


def test_local_grid_writes_run_dirs_and_a_rerun_skips_completed_cells(tmp_path):
    config = load_grid(write_grid(tmp_path))
    out = tmp_path / "out"
    table = run_grid(config, out)
    assert len(table) == 6 and all(row["status"] == "ok" for row in table)
    for row in table:
        cell_dir = out / "cells" / row["cell"]
        assert (cell_dir / "model.pt").is_file() and (cell_dir / "log.jsonl").is_file()
        assert json.loads((cell_dir / "result.json").read_text())["status"] == "ok"
        assert row["epochs"] == 2 and 0.0 <= row["test_accuracy"] <= 1.0
        assert 0.0 <= row["eval_validity"] <= 1.0 and row["eval_ip"] > 0
    ct_rows = [r for r in table if r["strategy"] == "ct"]
    assert all(r["mature"] is not None for r in ct_rows)
    assert (out / "results.csv").is_file() and "| dataset |" in (out / "results.md").read_text()

    stamps = {p: p.stat().st_mtime_ns for p in out.glob("cells/*/result.json")}
    messages: list[str] = []
    again = run_grid(config, out, log=messages.append)
    assert "6 already completed, 0 to run" in messages[0]
    assert {p: p.stat().st_mtime_ns for p in out.glob("cells/*/result.json")} == stamps
    assert again == table

    # a lost result is run again, and the same seed gives the same figures
    victim = out / "cells" / table[3]["cell"]
    for path in victim.iterdir():
        path.unlink()
    messages.clear()
    third = run_grid(config, out, log=messages.append)
    assert "5 already completed, 1 to run" in messages[0]
    assert comparable(third) == comparable(table)


def test_finished_cells_of_another_folder_are_copied_not_retrained(tmp_path):
    text = GRID_TOML.replace('strategies = ["vanilla", "ct"]', 'strategies = ["vanilla"]').replace(
        "enabled = true", "enabled = false")
    config = load_grid(write_grid(tmp_path, text))
    cells = config.cells()
    first, second = tmp_path / "first", tmp_path / "second"
    run_grid(config, first)
    (second / "cells" / cells[0].cell_id).mkdir(parents=True)  # an interrupted attempt: replaced
    (second / "cells" / cells[0].cell_id / "checkpoint.pt").write_text("half a checkpoint")
    assert sorted(adopt_finished_cells(cells, second, [tmp_path / "missing", second, first])) == sorted(
        c.cell_id for c in cells)
    for cell in cells:
        assert read_result(second, cell) == read_result(first, cell)  # the same row, wall time included
        copied = second / "cells" / cell.cell_id
        assert (copied / "model.pt").read_bytes() == (first / "cells" / cell.cell_id / "model.pt").read_bytes()
        assert not (copied / "checkpoint.pt").read_bytes().startswith(b"half")
    assert not list(second.glob("cells/*.adopting"))
    stamps = {p: p.stat().st_mtime_ns for p in second.glob("cells/*/result.json")}
    assert adopt_finished_cells(cells, second, [first]) == []  # finished here: kept as they are
    assert {p: p.stat().st_mtime_ns for p in second.glob("cells/*/result.json")} == stamps
    messages: list[str] = []
    run_grid(config, second, log=messages.append)
    assert f"{len(cells)} already completed, 0 to run" in messages[0]


def test_a_failing_cell_is_reported_and_the_rest_run(tmp_path):
    text = GRID_TOML.replace('datasets = ["moons"]', 'datasets = ["moons", "adult"]').replace(
        "seeds = [0, 1]", "seeds = [0]"
    ) + '\n[datasets.adult]\ndata_dir = "/nonexistent/folder"\nbatch_size = 500\n'
    config = load_grid(write_grid(tmp_path, text))
    table = run_grid(config, tmp_path / "out")
    failed = [r for r in table if r["status"] == "failed"]
    assert {r["dataset"] for r in failed} == {"adult"} and len(failed) == 3
    assert all("nonexistent" in r["error"] or "adult" in r["error"] for r in failed)
    assert all(r["status"] == "ok" for r in table if r["dataset"] == "moons")
    assert "failed" in (tmp_path / "out" / "results.md").read_text()
    # failed cells are retried on a re-run, completed ones are not
    messages: list[str] = []
    run_grid(config, tmp_path / "out", log=messages.append)
    assert "3 already completed, 3 to run" in messages[0]


def test_cli_grid_command(tmp_path, capsys):
    path = write_grid(tmp_path, GRID_TOML.replace("seeds = [0, 1]", "seeds = [0]"))
    code = cli.main(["grid", str(path), "--out", str(tmp_path / "out"), "--quiet"])
    assert code == 0
    assert "3 cells, 0 failed" in capsys.readouterr().out
    assert cli.main(["grid", str(tmp_path / "missing.toml")]) == 2


def test_process_pool_gives_the_same_table(tmp_path):
    config = load_grid(write_grid(tmp_path))
    sequential = run_grid(config, tmp_path / "seq", workers=1)
    pooled = run_grid(config, tmp_path / "pool", workers=2)
    assert comparable(pooled) == comparable(sequential)


def test_ray_executor_without_ray_names_the_install(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    config = load_grid(write_grid(tmp_path))
    with pytest.raises(MissingDependencyError, match=r"ct-plugin\[ray\]"):
        run_grid(config, tmp_path / "out", executor="ray")


@pytest.mark.slow
def test_ray_on_two_cpus_gives_the_same_table_as_local(tmp_path):
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'ct-plugin[ray]')")
    config = load_grid(write_grid(tmp_path))
    local = run_grid(config, tmp_path / "local", workers=1)
    on_ray = run_grid(config, tmp_path / "ray", executor="ray", workers=2)
    assert all(row["status"] == "ok" for row in on_ray), [r.get("error") for r in on_ray]
    assert comparable(on_ray) == comparable(local)
    assert all((tmp_path / "ray" / "cells" / row["cell"] / "model.pt").is_file() for row in on_ray)


def test_a_cells_warnings_go_into_its_row_not_the_terminal(tmp_path, capsys):
    """A cell whose searches never mature warns in its ``warnings`` column; nothing reaches the caller."""
    text = (GRID_TOML.replace('strategies = ["vanilla", "ct"]', 'strategies = ["ct"]')
            .replace('generators = ["eccco", "generic"]', 'generators = ["eccco"]')
            .replace("seeds = [0, 1]", "seeds = [0]")
            .replace("max_steps = 10", "max_steps = 1\ntau = 0.999"))
    path = write_grid(tmp_path, text)
    with warnings.catch_warnings(record=True) as escaped:
        warnings.simplefilter("always")
        code = cli.main(["grid", str(path), "--out", str(tmp_path / "out"), "--quiet"])
    assert code == 0
    assert not [w for w in escaped if "matured" in str(w.message)]
    table = json.loads(next((tmp_path / "out" / "cells").glob("*/result.json")).read_text())
    assert "only 0% of the in-training counterfactuals matured" in table["warnings"]
    assert "1 cells, 0 failed, 1 with warnings in the table's warnings column" in capsys.readouterr().out
    assert "| warnings |" in (tmp_path / "out" / "results.md").read_text()
    assert "matured" in (tmp_path / "out" / "results.csv").read_text()


def test_cells_on_a_gpu_train_one_at_a_time_by_default():
    import torch

    from ct_plugin.grid.executors import trains_on_accelerator

    def cell(device):
        return Cell("c", "moons", "ct", "eccco", 0, {}, {"device": device})

    assert not trains_on_accelerator(cell("cpu")) and trains_on_accelerator(cell("cuda:1"))
    assert trains_on_accelerator(cell("auto")) == torch.cuda.is_available()
