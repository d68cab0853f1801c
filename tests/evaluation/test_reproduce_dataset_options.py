"""``ct-plugin reproduce --dataset-option KEY=VALUE``: loader options for every dataset, over the data style's."""

from __future__ import annotations

import argparse
import json

import pytest

from ct_plugin.cli import main
from ct_plugin.cli.reproduce import command_line
from ct_plugin.cli.reproduce import register as register_reproduce
from ct_plugin.config import RESERVED_DATASET_OPTIONS
from ct_plugin.data.reference import reference_options
from ct_plugin.errors import CTPluginError
from ct_plugin.reproduce.plan import ABLATIONS, Plan, ablation_jobs


def parse(*argv: str) -> argparse.Namespace:
    commands = argparse.ArgumentParser().add_subparsers(dest="command")
    register_reproduce(commands, with_plugins=False)
    return commands.choices["reproduce"].parse_args(list(argv))


def test_user_options_merge_over_the_data_style_a_given_key_winning():
    plan = Plan.for_mode(False, dataset_options={"max_rows": 500})
    assert plan.data_options("gmsc") == {**reference_options("gmsc"), "max_rows": 500}
    assert plan.data_options("circles") == {**reference_options("circles"), "max_rows": 500}
    won = Plan.for_mode(False, dataset_options={"balance": False})
    assert won.data_options("gmsc") == {"balance": False}
    project = Plan.for_mode(False, data_style="project", dataset_options={"n_samples": 400})
    assert project.data_options("circles") == {"n_samples": 400}
    assert Plan.for_mode(False).data_options("circles") == reference_options("circles")


def test_every_training_gets_the_options_and_other_runs_directories():
    plain = Plan.for_mode(True, sources=("paper",))
    given = Plan.for_mode(True, sources=("paper",), dataset_options={"n_samples": 400})
    jobs = given.jobs("circles", {}, n_train=320)
    assert jobs and all(job.data == {**reference_options("circles"), "n_samples": 400} for job in jobs)
    assert {j.name for j in jobs}.isdisjoint({j.name for j in plain.jobs("circles", {}, n_train=320)})


def test_ablations_that_change_the_data_keep_their_own_the_others_take_the_users():
    plan = Plan.for_mode(False, dataset_options={"n_samples": 400})
    for name, dataset, _, change in ABLATIONS:
        data, jobs = ablation_jobs(plan, name, dataset, change, n_train=320)
        expected = change["data"] if "data" in change else plan.data_options(dataset)
        assert data == expected and all(job.data == expected for job in jobs), name


@pytest.mark.parametrize("key", RESERVED_DATASET_OPTIONS)
def test_a_setting_of_its_own_is_refused_as_a_dataset_option(key):
    with pytest.raises(CTPluginError, match=f"--dataset-option may not set {key}: reproduce fixes the split"):
        Plan.for_mode(False, dataset_options={key: 1})


def test_the_command_line_records_the_options():
    args = parse("--datasets", "circles", "--dataset-option", "n_samples=400", "--dataset-option", "noise=0.1")
    assert command_line(args).endswith("--dataset-option n_samples=400 --dataset-option noise=0.1")


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("features=sklearn", "dataset 'circles': unknown option 'features'"),
        ("seed=3", "--dataset-option may not set seed"),
        ("n_samples", "--dataset-option"),
    ],
)
def test_bad_options_get_one_precise_error_before_any_work(option, message, tmp_path, capsys):
    runs_dir = tmp_path / "runs"
    argv = ["reproduce", "--quick", "--datasets", "circles", "--settings", "paper", "--dataset-option", option,
            "--out", str(tmp_path / "out"), "--runs-dir", str(runs_dir), "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("error") == 1
    assert not runs_dir.exists()


@pytest.mark.slow
def test_a_quick_reproduction_trains_on_the_given_options(tmp_path):
    out, runs_dir = tmp_path / "out", tmp_path / "runs"
    argv = ["reproduce", "--quick", "--datasets", "circles", "--settings", "paper", "--dataset-option",
            "noise=0.2", "--rounds", "2", "--out", str(out), "--runs-dir", str(runs_dir), "--workers", "1",
            "--quiet"]
    assert main(argv) == 0
    settings = json.loads((out / "results" / "settings.json").read_text())
    assert settings["plan"]["dataset_options"] == {"noise": 0.2}
    assert "--dataset-option noise=0.2" in settings["command"]
    markers = list(runs_dir.glob("circles/*/reproduce.json"))
    assert len(markers) == 3
    for marker in markers:
        assert json.loads(marker.read_text())["settings"]["data"]["noise"] == 0.2
    assert "`--dataset-option` (every dataset): noise=0.2" in (out / "results.md").read_text()
