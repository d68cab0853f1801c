"""CARLA-local fixes: patches applied to CARLA's own functions and module namespaces only.

``OneHotEncoder(sparse=...)`` in CARLA's data pipeline, ``torch.load`` of CARLA's own
whole-module checkpoints (CLUE, catalog models, autoencoders: ``weights_only=False`` there and
nowhere else), CLUE's ``np.sum(generator)``, Wachter's float class index with the BCE loss,
FACE without immutable features, CARLA's Dice wrapper (dice-ml's string levels, immutables
passed on) and CARLA's catalog training dataset (pandas views with negative strides).

One of the fix families applied by :mod:`ct_plugin.adapters.carla.compat`: these run right
*after* ``import carla`` (they patch modules CARLA has just loaded; a module that is not
loaded is left alone), and each returns whether it changed something.
"""

from __future__ import annotations

import inspect
import sys
import textwrap
import types
from typing import Any


class _TorchWithLegacyLoad(types.ModuleType):
    """``torch`` as seen by CARLA's checkpoint code: ``load`` defaults to ``weights_only=False``.

    CARLA saves whole pickled modules into its own cache and loads them back; torch >= 2.6
    refuses that by default. Only CARLA's modules see this proxy.
    """

    def __init__(self, torch_module: types.ModuleType):
        super().__init__("torch")
        self._torch = torch_module

    def __getattr__(self, name: str) -> Any:
        return getattr(self._torch, name)

    def load(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("weights_only", False)
        return self._torch.load(*args, **kwargs)


_TORCH_LOAD_MODULES = (
    "carla.recourse_methods.catalog.clue.library.clue_ml.src.utils",
    "carla.recourse_methods.catalog.clue.library.clue_ml.AE_models.AE.train",
    "carla.recourse_methods.catalog.clue.library.clue_ml.AE_models.AE.fc_gauss_cat",
    "carla.recourse_methods.autoencoder.models",
    "carla.models.catalog.load_model",
)


def fix_torch_load() -> bool:
    import torch

    if "weights_only" not in inspect.signature(torch.load).parameters:
        return False
    changed = False
    for name in _TORCH_LOAD_MODULES:
        module = sys.modules.get(name)
        if module is not None and module.__dict__.get("torch") is torch:
            module.torch = _TorchWithLegacyLoad(torch)
            changed = True
    return changed


def fix_onehot_sparse() -> bool:
    from sklearn import preprocessing

    if "sparse" in inspect.signature(preprocessing.OneHotEncoder).parameters:
        return False

    def fit_encoder(encoding_method: Any, df: Any) -> Any:
        """CARLA's encoder factory with scikit-learn >= 1.2's ``sparse_output``."""
        if encoding_method == "OneHot":
            return preprocessing.OneHotEncoder(handle_unknown="error", sparse_output=False).fit(df)
        if encoding_method == "OneHot_drop_binary":
            return preprocessing.OneHotEncoder(drop="if_binary", handle_unknown="error", sparse_output=False).fit(df)
        return preprocessing.FunctionTransformer(func=None, inverse_func=None)

    for name in ("carla.data.pipelining.transformers", "carla.data.pipelining", "carla.data.catalog.catalog"):
        module = sys.modules.get(name)
        if module is not None and hasattr(module, "fit_encoder"):
            module.fit_encoder = fit_encoder
    return True


def _patch_source(module_name: str, function: str, old: str, new: str, also_in: tuple[str, ...] = ()) -> bool:
    """Recompile ``module.function`` with ``old`` replaced by ``new`` (no-op if ``old`` is absent)."""
    module = sys.modules.get(module_name)
    if module is None:
        return False
    original = getattr(module, function)
    if getattr(original, "_ct_patched", False):
        return False
    source = textwrap.dedent(inspect.getsource(original))
    if old not in source:
        return False
    namespace: dict[str, Any] = {}
    code = compile(source.replace(old, new), inspect.getsourcefile(original) or module_name, "exec")
    exec(code, module.__dict__, namespace)
    patched = namespace[function]
    patched._ct_patched = True
    setattr(module, function, patched)
    for other in also_in:
        other_module = sys.modules.get(other)
        if other_module is not None and getattr(other_module, function, None) is original:
            setattr(other_module, function, patched)
    return True


def fix_clue_nb_parameters() -> bool:
    module = sys.modules.get("carla.recourse_methods.catalog.clue.library.clue_ml.src.utils")
    if module is None:
        return False
    base = module.BaseNet
    source = inspect.getsource(base.get_nb_parameters)
    if "np.sum(p.numel()" not in source:
        return False

    def get_nb_parameters(self: Any) -> int:
        """Number of parameters (CARLA's version passed a generator to np.sum)."""
        return int(sum(p.numel() for p in self.model.parameters()))

    base.get_nb_parameters = get_nb_parameters
    return True


def fix_wachter_bce_index() -> bool:
    return _patch_source(
        "carla.recourse_methods.catalog.wachter.library.wachter",
        "wachter_recourse",
        "target_class = y_target[1]",
        "target_class = int(y_target[1])",
        also_in=(
            "carla.recourse_methods.catalog.wachter.library",
            "carla.recourse_methods.catalog.wachter.model",
        ),
    )


_FACE_CONSTRAINT_LOOP = """    for i in range(len(keys_immutable)):
        immutable_constraint_matrix1, immutable_constraint_matrix2 = build_constraints(
            data, i, keys_immutable
        )
"""


def fix_face_without_immutables() -> bool:
    """FACE's ``graph_search`` binds its constraint matrices only inside a loop over the immutable
    features, so a model with none (any run trained without ``--protect``/``--immutable``) crashes
    with ``UnboundLocalError: immutable_constraint_matrix1``. Start from all-ones matrices (no
    constraint), which the loop then replaces exactly as before when there are immutables."""
    return _patch_source(
        "carla.recourse_methods.catalog.face.library.face_method",
        "graph_search",
        _FACE_CONSTRAINT_LOOP,
        "    immutable_constraint_matrix1 = np.ones((len(data), len(data)))\n"
        "    immutable_constraint_matrix2 = np.ones((len(data), len(data)))\n" + _FACE_CONSTRAINT_LOOP,
        also_in=(
            "carla.recourse_methods.catalog.face.library",
            "carla.recourse_methods.catalog.face.model",
        ),
    )


def fix_dice_wrapper() -> bool:
    module = sys.modules.get("carla.recourse_methods.catalog.dice.model")
    if module is None or getattr(module.Dice.get_counterfactuals, "_ct_patched", False):
        return False
    import numpy as np
    import pandas as pd

    check_counterfactuals = module.check_counterfactuals
    encode_feature_names = sys.modules["carla.recourse_methods.processing"].encode_feature_names

    def get_counterfactuals(self: Any, factuals: pd.DataFrame) -> pd.DataFrame:
        """CARLA's Dice wrapper, fixed for dice-ml >= 0.9 and pandas >= 2.2.

        dice-ml treats every non-continuous column as categorical with string levels ('0.0',
        '1.0') and writes those into the query frame (TypeError on pandas 3): the query's
        categorical columns are passed as those strings and the result is turned back into
        floats. The immutable features are passed to dice-ml (``features_to_vary``), which
        CARLA's wrapper did not do. A factual without a counterfactual gives a row of NaN.
        """
        query = self._model.get_ordered_features(factuals.copy())
        if not query.shape[0] > 0:
            raise ValueError("Factuals should not be empty")
        categorical = [c for c in query.columns if c not in self._continuous]
        for column in categorical:
            query[column] = query[column].astype(float).map(str).astype(object)
        immutable = encode_feature_names(self._mlmodel.data.immutables, list(query.columns))
        vary = [c for c in query.columns if c not in immutable]
        explanation = self._dice.generate_counterfactuals(
            query,
            total_CFs=self._num,
            desired_class=self._desired_class,
            posthoc_sparsity_param=self._post_hoc_sparsity_param,
            features_to_vary=vary if vary and len(vary) < query.shape[1] else "all",
        )
        rows = []
        for example in explanation.cf_examples_list:
            found = example.final_cfs_df
            if found is None or len(found) == 0:
                found = pd.DataFrame(np.nan, index=range(self._num), columns=query.columns)
            rows.append(found[list(query.columns)])
        df_cfs = pd.concat(rows, ignore_index=True).apply(pd.to_numeric, errors="coerce")
        df_cfs = check_counterfactuals(self._mlmodel, df_cfs)
        return self._mlmodel.get_ordered_features(df_cfs)

    get_counterfactuals._ct_patched = True
    module.Dice.get_counterfactuals = get_counterfactuals
    return True


def fix_catalog_dataset() -> bool:
    module = sys.modules.get("carla.models.catalog.train_model")
    if module is None or getattr(module.DataFrameDataset.__init__, "_ct_patched", False):
        return False
    import numpy as np
    import torch

    def __init__(self: Any, x: Any, y: Any) -> None:
        """CARLA's training dataset, copying the frames' values (pandas >= 3 can hand out views with
        negative strides for reordered columns, which ``torch.tensor`` refuses)."""
        device = "cuda" if torch.cuda.is_available() else "cpu"
        self.X_train = torch.tensor(np.array(x.to_numpy(), dtype=np.float32), dtype=torch.float32).to(device)
        self.Y_train = torch.tensor(np.array(y.to_numpy())).to(device)

    __init__._ct_patched = True
    module.DataFrameDataset.__init__ = __init__
    return True
