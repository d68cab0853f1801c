"""``--posthoc-option`` merges over the protocol's own post-hoc generator options (a given key wins)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest
import torch

import ct_plugin
from ct_plugin.cli import main
from ct_plugin.evaluation.protocol import PAPER_GENERATOR_OPTIONS, ProtocolConfig, build_posthoc
from ct_plugin.generators.gradient import ECCCO_PRESETS

FAST = ["--rounds", "2", "--n-factuals", "10", "--lambda-energy", "1", "--epsilons", "0"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> list[str]:
    root = tmp_path_factory.mktemp("posthoc-runs")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = []
        for strategy in ("vanilla", "ct"):
            with warnings.catch_warnings():  # two epochs mature nothing; the warning says so, and that is fine here
                warnings.simplefilter("ignore", RuntimeWarning)
                ct_plugin.train(None, dataset="circles", strategy=strategy, out=root / strategy, quiet=True,
                                epochs=2, nce=40, dataset_options={"n_samples": 300})
            out.append(str(root / strategy))
        return out
    finally:
        torch.set_num_threads(threads)


def test_given_options_merge_over_the_paper_protocols():
    assert ProtocolConfig().resolved_generator_options() == PAPER_GENERATOR_OPTIONS == {
        "preset": "reference", "lambda_cost": 0.0}
    merged = ProtocolConfig(generator_options={"step_size": 0.05}).resolved_generator_options()
    assert merged == {"preset": "reference", "lambda_cost": 0.0, "step_size": 0.05}
    won = ProtocolConfig(generator_options={"lambda_cost": 0.001, "preset": "project"}).resolved_generator_options()
    assert won == {"preset": "project", "lambda_cost": 0.001}
    generic = ProtocolConfig(generator="generic", generator_options={"step_size": 0.2}).resolved_generator_options()
    assert generic == {**PAPER_GENERATOR_OPTIONS, "step_size": 0.2}


def test_strict_and_other_generators_have_no_protocol_options_to_merge():
    assert ProtocolConfig(protocol="strict", generator_options={"step_size": 0.05}).resolved_generator_options() == {
        "step_size": 0.05}
    assert ProtocolConfig(protocol="strict").resolved_generator_options() == {}
    assert ProtocolConfig(generator="revise", generator_options={"latent_steps": 5}).resolved_generator_options() == {
        "latent_steps": 5}


def test_the_merged_generator_keeps_the_reference_preset_and_zero_cost():
    options = ProtocolConfig(generator_options={"step_size": 0.05}).validate().resolved_generator_options()
    generator = build_posthoc("eccco", options, 1.0)
    reference = ECCCO_PRESETS["reference"]
    assert generator.step_size == 0.05
    assert generator.lambda_cost == 0.0 and generator.lambda_energy == 1.0
    assert generator.energy_decay is reference["energy_decay"] and generator.energy_reg == reference["energy_reg"]
    assert generator.onehot_steps == reference["onehot_steps"]


def evaluate(runs: list[str], out: Path, *options: str) -> pd.DataFrame:
    argv = ["evaluate", *runs, "--out", str(out), *FAST]
    for option in options:
        argv += ["--posthoc-option", option]
    assert main(argv) == 0
    return pd.read_csv(out / "rounds.csv")


def test_an_option_equal_to_the_protocols_changes_nothing_and_another_preset_wins(runs, tmp_path, capsys):
    plain = evaluate(runs, tmp_path / "plain")
    # the reference preset's own step given again: the same search as without any option
    same = evaluate(runs, tmp_path / "same", f"step_size={ECCCO_PRESETS['reference']['step_size']}")
    pd.testing.assert_frame_equal(plain, same)
    # a given preset wins over the protocol's: the project preset searches differently
    project = evaluate(runs, tmp_path / "project", "preset=project")
    assert not plain[["validity", "cost"]].equals(project[["validity", "cost"]])
    capsys.readouterr()


def test_a_bad_posthoc_option_gets_one_precise_error(runs, tmp_path, capsys):
    assert main(["evaluate", *runs, "--out", str(tmp_path / "bad"), *FAST, "--posthoc-option", "preset=bogus"]) == 2
    err = capsys.readouterr().err
    assert "unknown preset 'bogus'; choose from project, reference" in err
    assert err.count("error") == 1
