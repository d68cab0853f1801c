"""The validation layer: every bad input of issue 13's list gets one CTPluginError naming the culprit."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

import ct_plugin
from ct_plugin import CTPluginError
from ct_plugin.cli import main
from ct_plugin.config import TrainConfig, load_config_file
from ct_plugin.errors import InvalidSettingError
from ct_plugin.plugins.options import check_options
from ct_plugin.settings.coerce import parse_key_values

TINY = {"epochs": 1, "nce": 10, "quiet": True, "dataset_options": {"n_samples": 100}}


def _cli_error(argv, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.startswith("ct-plugin: error: "), err
    return err


# ------------------------------------------------------------ Python API
def test_numeric_strings_are_coerced_and_rubbish_is_named():
    config = TrainConfig(tau="0.5", epochs=1e3, protect="yes", immutable="x1, x2").validate()
    assert (config.tau, config.epochs, config.protect, config.immutable) == (0.5, 1000, True, ["x1", "x2"])
    with pytest.raises(InvalidSettingError, match=r"tau must be a number in \(0, 1\], got 'half'") as info:
        TrainConfig(tau="half").validate()
    assert (info.value.setting, info.value.value) == ("tau", "half")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"device": "meta"}, "device must be one of auto, cpu, cuda, cuda:INDEX, mps, got 'meta'"),
        ({"epochs": 1e12}, r"epochs must be an integer in \[1, 1000000\]"),
        ({"nce": 10**12}, r"nce must be an integer in \[0, 10000000\]"),
        ({"lr": float("inf")}, "lr must be a finite number > 0, got inf"),
        ({"lambda_div": float("inf")}, "lambda_div must be a finite number >= 0, got inf"),
        ({"epochs": True}, "epochs must be an integer"),
        ({"dataset_options": {"seed": 3}}, "dataset_options may not set seed"),
        ({"generator_options": {"clip_grad": "abc"}}, "generator option clip_grad must be a number or none"),
        ({"model_options": {"hidden": "abc"}}, "model option hidden must be an integer or a list of integers"),
        ({"dataset_options": {"n_samples": "abc"}}, "n_samples must be an integer( or none)?, got 'abc'"),
        ({"dataset_options": {"colour": 1}}, "dataset 'moons': unknown option 'colour'; it accepts: .*n_samples"),
    ],
)
def test_train_refuses_bad_settings_with_their_name(overrides, message):
    settings = {**TINY, **overrides}
    if "dataset_options" in overrides:
        settings["dataset_options"] = overrides["dataset_options"]
    with pytest.raises(CTPluginError, match=message):
        ct_plugin.train("moons", **settings)


def test_large_learning_rate_is_warned_and_its_divergence_stops_training():
    with pytest.warns(UserWarning, match="lr=1e\\+06 is far above"), pytest.raises(
        ct_plugin.TrainingDivergedError, match="training diverged in epoch 1: .*most likely at fault: lr"
    ):
        ct_plugin.train("moons", strategy="vanilla", lr=1e6, epochs=3, quiet=True, dataset_options={"n_samples": 300})


def test_a_module_that_only_works_for_batch_size_2_is_refused_before_training():
    class OnlyTwoRows(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(2, 2))

        def forward(self, x):
            return x.T @ self.w

    with pytest.raises(CTPluginError, match=r"the model failed on input of shape \(3, 2\)"):
        ct_plugin.train("moons", OnlyTwoRows(), **TINY)


def test_init_from_a_run_of_other_data_or_architecture(tmp_path):
    source = tmp_path / "moons"
    ct_plugin.train("moons", strategy="vanilla", out=source, **TINY)
    spec = ct_plugin.load_dataset("breast_cancer")
    with pytest.raises(CTPluginError, match="that run was trained on dataset 'moons' .*fine-tuning needs the same"):
        ct_plugin.train(spec, strategy="vanilla", init_from=str(source), epochs=1, quiet=True)
    with pytest.raises(CTPluginError, match="its weights do not fit this model .*options {'hidden': \\[8\\]}"):
        ct_plugin.train("moons", init_from=str(source), model_options={"hidden": [8]}, **TINY)


def test_batch_size_above_the_training_set_is_warned():
    with pytest.warns(UserWarning, match="batch_size=1000000 exceeds the 80 training rows"):
        ct_plugin.train("moons", strategy="vanilla", batch_size=10**6, **TINY)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"y": [0, 1] * 5}), "only the target column 'y'"),
        (pd.DataFrame(np.zeros((10, 3)), columns=["a", "a", "y"]), "duplicate column names: 'a'"),
        (pd.DataFrame({"a=b": [1.0] * 6, "y": [0, 1] * 3}), "may not contain '='"),
        (pd.DataFrame({0: [1.0] * 6, "y": [0, 1] * 3}), "column names must be non-empty strings"),
    ],
)
def test_dataframes_that_cannot_be_encoded(frame, message):
    with pytest.raises(CTPluginError, match=message):
        ct_plugin.from_dataframe(frame, "y")


def test_spec_mutability_is_recorded_in_config_json(tmp_path):
    frame = pd.DataFrame({"age": np.arange(40.0), "income": np.arange(40.0) % 7, "y": [0, 1] * 20})
    spec = ct_plugin.from_dataframe(frame, "y", immutable=["age"], increase_only=["income"])
    ct_plugin.train(spec, strategy="ct", out=tmp_path / "r", epochs=1, nce=10, quiet=True)
    import json

    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["immutable"] == ["age"] and config["increase_only"] == ["income"]
    assert config["generator_options"]["lambda_energy"] == 5.0  # defaults filled in
    assert config["record"]["ct_plugin_version"] == ct_plugin.__version__
    assert config["record"]["seeds"]["data_split"] == 0


# -------------------------------------------------------- option checking
def test_options_are_typed_from_the_factory_signature():
    from ct_plugin.generators.gradient import ECCCoGenerator
    from ct_plugin.models import mlp

    assert check_options("generator", "eccco", ECCCoGenerator, {"clip_grad": "2", "step_size": 1}) == {
        "clip_grad": 2.0,
        "step_size": 1.0,
    }
    assert check_options("generator", "eccco", ECCCoGenerator, {"clip_grad": "none"}) == {"clip_grad": None}
    assert check_options("model", "mlp", mlp, {"hidden": "16,8"}) == {"hidden": [16, 8]}
    assert parse_key_values(["hidden=[4, 4]", "activation=tanh"], "--model-option") == {
        "hidden": [4, 4],
        "activation": "tanh",
    }
    with pytest.raises(CTPluginError, match="not a valid option name"):
        parse_key_values(["a b=1"], "--model-option")


# ------------------------------------------------------------------ CLI
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--device", "meta"], "device must be one of auto"),
        (["train", "--dataset-option", "n_samples=abc"], "n_samples must be an integer( or none)?, got 'abc'"),
        (["train", "--generator-option", "clip_grad=abc"], "generator option clip_grad must be a number or none"),
        (["train", "--model-option", "hidden=abc"], "model option hidden must be an integer or a list of integers"),
        (["evaluate", "nowhere", "--threads", "-1"], r"--threads must be an integer in \[1, 4096\], got -1"),
    ],
)
def test_cli_bad_options(argv, message, capsys):
    import re

    assert re.search(message, _cli_error(argv, capsys))


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.yaml", "a: [1, 2\n", "cannot parse config file .*bad.yaml: while parsing a flow sequence"),
        ("tab.yaml", "a:\n\tb: 1\n", "YAML does not allow tabs"),
        ("py.yaml", "epochs: !!python/object/apply:os.system ['echo hi']\n", "py.yaml: refused YAML tag"),
        ("deep.json", "[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ("big.toml", "epochs = 1e12\n", r"epochs must be an integer in \[1, 1000000\], got 1000000000000.0"),
        ("nce.toml", "nce = 1e12\n", r"nce must be an integer in \[0, 10000000\]"),
        ("hidden.toml", '[model_options]\nhidden = "abc"\n', "model option hidden must be an integer"),
        ("list.yaml", "- 1\n- 2\n", "must hold a table of settings, not a list"),
        ("bin.toml", None, "is not UTF-8 text"),
    ],
)
def test_config_files_that_cannot_be_read(tmp_path, capsys, name, content, message):
    import re

    path = tmp_path / name
    if content is None:
        path.write_bytes(bytes(range(256)))
    else:
        path.write_text(content)
    assert re.search(message, _cli_error(["train", "--config", str(path)], capsys))


def test_toml_string_number_is_coerced(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text('tau = "0.5"\nepochs = 1.0\n')
    config = TrainConfig.from_dict(load_config_file(path)).validate()
    assert config.tau == 0.5 and config.epochs == 1 and isinstance(config.epochs, int)


def test_grid_file_parse_errors_are_clear(tmp_path, capsys):
    path = tmp_path / "grid.toml"
    path.write_bytes(b"\xff\xfe[grid]")
    assert "grid file" in _cli_error(["grid", str(path)], capsys)


def test_empty_csv_in_the_data_directory(tmp_path, capsys):
    (tmp_path / "adult.csv").write_text("")
    assert "adult.csv is empty" in _cli_error(["train", "--dataset", "adult", "--data-dir", str(tmp_path)], capsys)


def test_no_warning_for_the_reference_defaults():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        TrainConfig().validate()
