"""The compatibility layer that makes carla-recourse 0.0.5 work on modern Python: one test per fix.

Each test exercises the behaviour its fix enables, so it fails without the fix.
"""

from __future__ import annotations

import collections
import logging
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
from test_carla_common import moons_with_age, skip_without_carla, train_mlp

skip_without_carla()

from ct_plugin.adapters.carla import compat  # noqa: E402
from ct_plugin.adapters.carla.compat import aliases  # noqa: E402
from ct_plugin.errors import MissingDependencyError  # noqa: E402

pytestmark = pytest.mark.carla


@pytest.fixture(scope="module")
def carla():
    return compat.import_carla()


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300)


def test_import_works_without_tensorflow_and_leaves_other_imports_alone():
    # TensorFlow and Keras are hidden even if installed: the import must not need them
    result = _python(
        """
        import importlib.abc, sys
        class Hide(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("tensorflow", "keras"):
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        sys.meta_path.insert(0, Hide())
        from ct_plugin.adapters.carla.compat import import_carla, is_placeholder
        carla = import_carla()
        assert carla.__version__ == "0.0.5"
        from carla.recourse_methods.catalog.cem import model as cem
        assert is_placeholder(cem.tf)
        try:
            import tensorflow
        except ImportError:
            print("OK")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("OK")


def test_placeholder_fails_with_install_command_only_when_used(carla):
    from carla.recourse_methods.catalog.cem import model as cem

    if not compat.is_placeholder(cem.tf):
        pytest.skip("TensorFlow is installed here; no placeholder to test")
    with pytest.raises(MissingDependencyError, match="pip install tensorflow-cpu"):
        cem.tf.compat.v1.Session()


def test_carla_import_keeps_logging_configuration():
    result = _python(
        """
        import logging
        handler = logging.StreamHandler()
        logging.getLogger().addHandler(handler)
        logging.getLogger().setLevel(logging.ERROR)
        mine = logging.getLogger("my.library")
        from ct_plugin.adapters.carla.compat import import_carla
        import_carla()
        root = logging.getLogger()
        assert root.handlers == [handler], root.handlers
        assert root.level == logging.ERROR
        assert not mine.disabled
        assert logging.getLogger("carla").propagate is False
        print("OK")
        """
    )
    assert result.returncode == 0, result.stderr


def test_numpy_aliases_let_carla_distances_run(carla):
    from carla.evaluation.distances import get_distances

    distances = np.asarray(get_distances(np.zeros((2, 3)), np.ones((2, 3))))
    assert np.allclose(distances, [[3, 3, 3, 1], [3, 3, 3, 1]])  # L0, L1, squared L2, L-inf
    assert np.float is float and np.NaN != np.NaN and np.infty == np.inf


def test_collections_aliases():
    compat.apply()
    assert collections.Iterable is collections.abc.Iterable
    assert collections.Mapping is collections.abc.Mapping


def test_sklearn_get_feature_names_and_sparse_in_carla_pipeline(carla):
    from carla.data.pipelining import encode, fit_encoder

    frame = pd.DataFrame({"sex": ["F", "M", "F"], "race": ["a", "b", "c"]})
    encoder = fit_encoder("OneHot_drop_binary", frame)  # CARLA passes sparse= (removed in sklearn 1.4)
    assert list(encoder.get_feature_names(["sex", "race"])) == ["sex_M", "race_a", "race_b", "race_c"]
    encoded = encode(encoder, ["sex", "race"], frame)
    assert encoded.shape == (3, 4)


def test_pandas_append_restored():
    compat.apply()
    out = pd.DataFrame({"a": [1]}).append({"a": 2}, ignore_index=True)
    assert out["a"].tolist() == [1, 2]


def test_carla_loads_its_own_whole_module_checkpoints(carla, tmp_path):
    from carla.models.catalog.ANN_TORCH import AnnModel
    from carla.models.catalog.load_model import load_trained_model, save_model

    model = AnnModel(3, [4], 2)
    save_model(model, "ann", "toy", "pytorch", models_home=str(tmp_path))
    loaded = load_trained_model("ann", "toy", "pytorch", models_home=str(tmp_path))
    assert isinstance(loaded, AnnModel)
    # torch itself keeps its safe default for everyone else
    with pytest.raises(Exception, match="weights_only"):
        torch.load(tmp_path / "toy" / "ann.pt")


def test_clue_counts_parameters(carla):
    from carla.recourse_methods.catalog.clue.library.clue_ml.src.utils import BaseNet

    net = BaseNet()
    net.model = torch.nn.Linear(3, 2)
    assert net.get_nb_parameters() == 8


def test_wachter_default_bce_loss_runs(carla):
    from carla.recourse_methods.catalog.wachter.library import wachter_recourse

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Softmax(dim=1))
    x = np.array([[0.2, 0.8]], dtype=np.float32)
    out = wachter_recourse(model, x, [], loss_type="BCE", n_iter=5, t_max_min=0.01)
    assert out.shape == (2,)


def test_dice_wrapper_with_categoricals_and_immutables(carla):
    from test_carla_common import adult

    from ct_plugin.adapters.carla.wrappers import CarlaModel, SpecData

    spec = adult(1000)
    data = SpecData(spec)
    mlmodel = CarlaModel(train_mlp(spec, epochs=3), data)
    factuals = data.df_test
    factuals = factuals[mlmodel.predict(factuals)[:, 0] < 0.5].head(3).reset_index(drop=True)
    np.random.seed(0)
    out = carla.recourse_methods.Dice(mlmodel, {}).get_counterfactuals(factuals)
    found = out.dropna()
    assert len(out) == 3 and len(found) >= 1
    assert np.allclose(found["age"].to_numpy(), factuals.loc[found.index, "age"].to_numpy())  # immutable kept


def test_fixes_are_idempotent_no_ops_the_second_time():
    compat.apply()
    assert aliases.fix_pandas_append() is False
    assert aliases.fix_numpy_aliases() is False
    assert aliases.fix_sklearn_get_feature_names() is False
    assert aliases.fix_collections_aliases() is False


def test_every_fix_is_recorded(carla):
    applied = compat.applied()
    missing = set(compat.FIXES) - set(applied) - {"eager_execution"}  # that one only with real TensorFlow
    assert not missing, missing
    assert logging.getLogger("carla").handlers


def test_moons_spec_helper_is_binary():
    assert moons_with_age().n_classes == 2


def test_catalog_training_dataset_accepts_reordered_frames(carla):
    from carla.models.catalog.train_model import DataFrameDataset

    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0], "c": [5.0, 6.0]})
    reordered = frame[["c", "b", "a"]]  # pandas 3 hands out a view with negative strides here
    dataset = DataFrameDataset(reordered, pd.Series([0, 1]))
    assert dataset.X_train.tolist() == [[5.0, 3.0, 1.0], [6.0, 4.0, 2.0]]


def test_face_runs_on_a_model_without_immutable_features(carla):
    """CARLA's FACE raised UnboundLocalError (immutable_constraint_matrix1) when nothing is immutable."""
    import dataclasses

    from ct_plugin.adapters.carla.benchmark import BenchmarkModel, run_benchmark

    spec = moons_with_age(1500)
    spec = dataclasses.replace(spec, mutability=["both"] * spec.n_features)
    model = train_mlp(spec, epochs=5)
    table = run_benchmark([BenchmarkModel("free", model, spec, "vanilla")], ["carla-face"], n_factuals=3,
                          progress=False)
    assert "error" not in table.columns, table.get("error")
    assert compat.applied()["face_without_immutables"] is True
    assert table.loc[0, "Success_Rate"] > 0
