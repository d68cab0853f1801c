"""Makes carla-recourse 0.0.5 (2022) import and run on Python >= 3.10 with current numpy, pandas,
scikit-learn and torch, without TensorFlow.

Call :func:`import_carla` instead of ``import carla``. It applies, once and before CARLA is
imported, the fixes listed in :data:`FIXES` (each one a no-op where the environment is already
fine), then imports CARLA and returns the module. The fixes are of three kinds:

* **Placeholders for absent optional packages.** ``carla/__init__.py`` imports every recourse
  method, so TensorFlow, Keras, xgboost, lime, ``recourse``, causalgraphicalmodels, dice-ml,
  torchvision and seaborn would all be needed just to ``import carla``. An import hook serves a
  placeholder module for each one that is not installed, **only to imports made by CARLA's own
  modules** (any other importer still gets the usual ``ImportError``). Using anything from a
  placeholder raises :class:`~ct_plugin.errors.MissingDependencyError` naming the package and
  the command that installs it, so a method that truly needs it fails when called, not at import.
* **Restored aliases** that newer releases removed (``np.float``, ``np.int``, ``np.bool``,
  ``np.object``, ``np.float_``, ``np.infty``, ``np.NaN``; ``collections.Iterable`` and friends;
  ``OneHotEncoder.get_feature_names``; ``DataFrame.append``). An alias is only added when the
  name is missing, and it behaves as the removed name did.
* **CARLA-local fixes**, applied to CARLA's own functions and module namespaces only:
  ``OneHotEncoder(sparse=...)`` in CARLA's data pipeline, ``torch.load`` of CARLA's own whole-module
  checkpoints (CLUE, catalog models, autoencoders: ``weights_only=False`` there and nowhere else),
  CLUE's ``np.sum(generator)``, Wachter's float class index with the BCE loss, CARLA's
  process-wide logging configuration at import (undone; CARLA's loggers are silenced instead),
  and ``tf.compat.v1.disable_eager_execution()`` at import when a real TensorFlow is installed
  (kept from switching the whole process to graph mode).
"""

from __future__ import annotations

import collections
import collections.abc
import contextlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import inspect
import logging
import os
import sys
import textwrap
import threading
import types
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from ct_plugin.errors import CTPluginError, MissingDependencyError

CARLA_VERSION = "0.0.5"
CARLA_INSTALL = "python -m ct_plugin.adapters.carla.install"

#: optional packages CARLA imports at module level, with what needs them and how to install them
OPTIONAL_PACKAGES: dict[str, tuple[str, str]] = {
    "tensorflow": (
        "CARLA's CEM and FOCUS methods and TensorFlow catalog models",
        "pip install tensorflow-cpu",
    ),
    "keras": ("CARLA's CEM method and TensorFlow catalog models", "pip install tensorflow-cpu tf-keras"),
    "xgboost": ("CARLA's tree-ensemble models (FeatureTweak, FOCUS)", "pip install xgboost"),
    "lime": ("CARLA's ActionableRecourse", "pip install lime"),
    "recourse": ("CARLA's ActionableRecourse", "pip install actionable-recourse cplex"),
    "causalgraphicalmodels": ("CARLA's CausalRecourse", "pip install causalgraphicalmodels"),
    "dice_ml": ("CARLA's Dice method", "pip install 'dice-ml>=0.12,<0.13'"),
    "torchvision": ("nothing tabular (CLUE imports make_grid only)", "pip install torchvision"),
    "seaborn": ("CARLA's plotting helpers", "pip install seaborn"),
}

#: every fix applied by :func:`apply`, with one line saying why
FIXES: dict[str, str] = {
    "placeholders": "absent optional packages become placeholder modules for CARLA's imports only",
    "collections_aliases": "collections.Iterable & co. (removed in Python 3.10; causalgraphicalmodels)",
    "numpy_aliases": "np.float, np.int, np.bool, np.object, np.float_, np.infty, np.NaN (removed in numpy 2)",
    "sklearn_get_feature_names": "OneHotEncoder.get_feature_names (removed in scikit-learn 1.2)",
    "pandas_append": "DataFrame.append (removed in pandas 2; used by actionable-recourse)",
    "logging": "CARLA's logging.config.dictConfig at import is undone; CARLA's loggers are silenced",
    "eager_execution": "CARLA's tf.compat.v1.disable_eager_execution() at import is kept process-local",
    "onehot_sparse": "OneHotEncoder(sparse=) -> sparse_output= in CARLA's data pipeline",
    "torch_load": "torch.load(weights_only=False) for CARLA's own whole-module checkpoints",
    "clue_nb_parameters": "CLUE's np.sum(generator) (TypeError in numpy 2)",
    "wachter_bce_index": "Wachter's float 0-d tensor class index with the BCE loss",
    "dice_wrapper": "CARLA's Dice wrapper: string levels of dice-ml (pandas >= 2.2) and immutables passed on",
    "catalog_dataset": "CARLA's catalog training data copied (pandas >= 3 views with negative strides)",
    "face_without_immutables": "FACE's UnboundLocalError (immutable_constraint_matrix1) when no feature is immutable",
}

_NUMPY_ALIASES = {
    "float": float,
    "int": int,
    "bool": bool,
    "object": object,
    "float_": "float64",
    "infty": "inf",
    "NaN": "nan",
}
_COLLECTIONS_ALIASES = ("Iterable", "Mapping", "MutableMapping", "Sequence", "Callable", "Hashable", "Set")

_lock = threading.RLock()
_applied: dict[str, bool] = {}
_carla: types.ModuleType | None = None


# ------------------------------------------------------------------------------------- placeholders
class _MissingMeta(type):
    """Metaclass of placeholder attributes: attribute access chains, calling raises."""

    def __getattr__(cls, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return _missing_attribute(cls._ct_package, f"{cls.__qualname__}.{name}")

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        raise _missing_error(cls._ct_package, cls.__qualname__)

    def __repr__(cls) -> str:
        return f"<placeholder {cls.__qualname__}: {cls._ct_package} is not installed>"


def _missing_attribute(package: str, qualname: str) -> type:
    return _MissingMeta(qualname.rsplit(".", 1)[-1], (), {"_ct_package": package, "__qualname__": qualname})


def _missing_error(package: str, what: str) -> MissingDependencyError:
    needed_by, install = OPTIONAL_PACKAGES.get(package, ("CARLA", f"pip install {package}"))
    return MissingDependencyError(f"{package} (needed by {needed_by}; {what} was called)", install)


class PlaceholderModule(types.ModuleType):
    """A stand-in for an optional package that is not installed (see the module docstring)."""

    def __init__(self, name: str, package: str):
        super().__init__(name)
        self.__path__: list[str] = []  # a package, so that ``import x.y`` works
        self._ct_package = package

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        value = _missing_attribute(self._ct_package, f"{self.__name__}.{name}")
        setattr(self, name, value)
        return value

    def __repr__(self) -> str:
        return f"<placeholder module {self.__name__!r}: {self._ct_package} is not installed>"


def _disable_eager_execution_noop() -> None:
    """Without TensorFlow there is no eager mode to disable."""


class _PlaceholderLoader(importlib.abc.Loader):
    def __init__(self, package: str):
        self.package = package

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return PlaceholderModule(spec.name, self.package)

    def exec_module(self, module: types.ModuleType) -> None:
        if module.__name__ == "tensorflow":
            # run by carla.recourse_methods.autoencoder at import time
            compat = PlaceholderModule("tensorflow.compat", "tensorflow")
            compat.v1 = PlaceholderModule("tensorflow.compat.v1", "tensorflow")
            compat.v1.disable_eager_execution = _disable_eager_execution_noop
            module.compat = compat


def _importer_is_carla() -> bool:
    """Whether the import being resolved was written in one of CARLA's modules."""
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if not (name.startswith("importlib") or name == __name__ or name.startswith("_frozen_importlib")):
            return name == "carla" or name.startswith("carla.")
        frame = frame.f_back
    return False


class PlaceholderFinder(importlib.abc.MetaPathFinder):
    """Serves placeholder modules for absent optional packages, to CARLA's imports only."""

    def __init__(self, packages: set[str]):
        self.packages = packages

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        root = fullname.split(".", 1)[0]
        if root not in self.packages or not _importer_is_carla():
            return None
        if "." in fullname:
            if not isinstance(sys.modules.get(root), PlaceholderModule):
                return None  # a submodule of a real package: the normal finders handle it
        elif _real_spec(fullname) is not None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _PlaceholderLoader(root), is_package=True)


def _real_spec(name: str) -> Any:
    for finder in sys.meta_path:
        if isinstance(finder, PlaceholderFinder):
            continue
        find = getattr(finder, "find_spec", None)
        if find is None:
            continue
        try:
            spec = find(name, None)
        except (ImportError, ValueError):
            spec = None
        if spec is not None:
            return spec
    return None


def missing_optional_packages() -> list[str]:
    """Optional packages of CARLA that are not installed (each gets a placeholder)."""
    return [name for name in OPTIONAL_PACKAGES if _real_spec(name) is None]


def is_placeholder(obj: Any) -> bool:
    """Whether ``obj`` is a placeholder module or attribute made by this module."""
    return isinstance(obj, PlaceholderModule | _MissingMeta)


# -------------------------------------------------------------------------------------------- fixes
def _fix_placeholders() -> bool:
    if any(isinstance(f, PlaceholderFinder) for f in sys.meta_path):
        return False
    sys.meta_path.insert(0, PlaceholderFinder(set(OPTIONAL_PACKAGES)))
    return True


def _fix_collections_aliases() -> bool:
    changed = False
    for name in _COLLECTIONS_ALIASES:
        if not hasattr(collections, name):
            setattr(collections, name, getattr(collections.abc, name))
            changed = True
    return changed


def _fix_numpy_aliases() -> bool:
    import numpy as np

    changed = False
    for name, value in _NUMPY_ALIASES.items():
        if name in np.__dict__:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            still_provided = hasattr(np, name)  # numpy 1.x, possibly with a deprecation warning
        if still_provided:
            continue
        setattr(np, name, getattr(np, value) if isinstance(value, str) else value)
        changed = True
    return changed


def _fix_sklearn_get_feature_names() -> bool:
    from sklearn.preprocessing import OneHotEncoder

    if hasattr(OneHotEncoder, "get_feature_names"):
        return False

    def get_feature_names(self: OneHotEncoder, input_features: Any = None) -> Any:
        """Removed in scikit-learn 1.2; alias of ``get_feature_names_out`` restored for CARLA."""
        if input_features is not None:
            input_features = [str(f) for f in input_features]
        return self.get_feature_names_out(input_features)

    OneHotEncoder.get_feature_names = get_feature_names
    return True


def _fix_pandas_append() -> bool:
    import pandas as pd

    if hasattr(pd.DataFrame, "append"):
        return False

    def append(
        self: pd.DataFrame,
        other: Any,
        ignore_index: bool = False,
        verify_integrity: bool = False,
        sort: bool = False,
    ) -> pd.DataFrame:
        """Removed in pandas 2; restored (via ``pd.concat``) for actionable-recourse."""
        if isinstance(other, dict | pd.Series):
            other = pd.DataFrame([other])
        elif isinstance(other, list) and other and not isinstance(other[0], pd.DataFrame):
            other = pd.DataFrame(other)
        others = other if isinstance(other, list) else [other]
        return pd.concat([self, *others], ignore_index=ignore_index, verify_integrity=verify_integrity, sort=sort)

    pd.DataFrame.append = append
    return True


_PRE_IMPORT_FIXES: dict[str, Callable[[], bool]] = {
    "placeholders": _fix_placeholders,
    "collections_aliases": _fix_collections_aliases,
    "numpy_aliases": _fix_numpy_aliases,
    "sklearn_get_feature_names": _fix_sklearn_get_feature_names,
    "pandas_append": _fix_pandas_append,
}


@contextlib.contextmanager
def _logging_preserved() -> Iterator[None]:
    """Undo the process-wide ``logging.config.dictConfig`` that ``import carla`` runs."""
    root = logging.getLogger()
    saved_root = (root.level, list(root.handlers))
    manager = logging.Logger.manager
    saved = {
        name: (logger.disabled, logger.level, list(logger.handlers), logger.propagate)
        for name, logger in list(manager.loggerDict.items())
        if isinstance(logger, logging.Logger)
    }
    try:
        yield
    finally:
        root.setLevel(saved_root[0])
        root.handlers[:] = saved_root[1]
        for name, (disabled, level, handlers, propagate) in saved.items():
            logger = manager.loggerDict.get(name)
            if isinstance(logger, logging.Logger):
                logger.disabled, logger.level, logger.propagate = disabled, level, propagate
                logger.handlers[:] = handlers
        for name in ("tensorflow",):
            if name not in saved and isinstance(manager.loggerDict.get(name), logging.Logger):
                logger = logging.getLogger(name)
                logger.handlers.clear()
                logger.setLevel(logging.NOTSET)
                logger.propagate = True
        carla_logger = logging.getLogger("carla")
        carla_logger.handlers[:] = [logging.NullHandler()]
        carla_logger.setLevel(logging.WARNING)
        carla_logger.propagate = False
        _applied["logging"] = True


@contextlib.contextmanager
def _eager_execution_kept() -> Iterator[None]:
    """Keep a real TensorFlow in eager mode while CARLA imports (it disables it process-wide)."""
    tf = sys.modules.get("tensorflow")
    if tf is None and _real_spec("tensorflow") is not None:
        tf = importlib.import_module("tensorflow")
    v1 = getattr(getattr(tf, "compat", None), "v1", None) if tf is not None else None
    if v1 is None or is_placeholder(tf):
        yield
        return
    original = v1.disable_eager_execution
    v1.disable_eager_execution = _disable_eager_execution_noop
    _applied["eager_execution"] = True
    try:
        yield
    finally:
        v1.disable_eager_execution = original


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


def _fix_torch_load() -> bool:
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


def _fix_onehot_sparse() -> bool:
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


def _fix_clue_nb_parameters() -> bool:
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


def _fix_wachter_bce_index() -> bool:
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


def _fix_face_without_immutables() -> bool:
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


def _fix_dice_wrapper() -> bool:
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


def _fix_catalog_dataset() -> bool:
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


_POST_IMPORT_FIXES: dict[str, Callable[[], bool]] = {
    "catalog_dataset": _fix_catalog_dataset,
    "dice_wrapper": _fix_dice_wrapper,
    "onehot_sparse": _fix_onehot_sparse,
    "torch_load": _fix_torch_load,
    "clue_nb_parameters": _fix_clue_nb_parameters,
    "wachter_bce_index": _fix_wachter_bce_index,
    "face_without_immutables": _fix_face_without_immutables,
}


# --------------------------------------------------------------------------------------- public API
def apply() -> dict[str, bool]:
    """Apply the fixes that must precede ``import carla``; returns ``{fix: changed_something}``."""
    with _lock:
        for name, fix in _PRE_IMPORT_FIXES.items():
            if name not in _applied:
                _applied[name] = fix()
        return dict(_applied)


def applied() -> dict[str, bool]:
    """Which fixes ran so far and whether each one changed something (False: already fine)."""
    return dict(_applied)


def carla_installed() -> bool:
    """Whether carla-recourse is importable (without importing it)."""
    return importlib.util.find_spec("carla") is not None and _carla_version() is not None


def _carla_version() -> str | None:
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover
        return None
    try:
        return version("carla-recourse")
    except PackageNotFoundError:
        return None


def import_carla() -> types.ModuleType:
    """Apply every fix and return the ``carla`` module (carla-recourse 0.0.5).

    Raises:
        MissingDependencyError: carla-recourse is not installed (the message gives the command).
        CTPluginError: an installed version other than 0.0.5 (the fixes target 0.0.5 exactly).
    """
    global _carla
    with _lock:
        if _carla is not None:
            return _carla
        found = _carla_version()
        if found is None or importlib.util.find_spec("carla") is None:
            raise MissingDependencyError(
                f"carla-recourse {CARLA_VERSION}", f"pip install 'ct-plugin[carla]' && {CARLA_INSTALL}"
            )
        if found != CARLA_VERSION:
            raise CTPluginError(
                f"carla-recourse {found} is installed; the CARLA adapter supports {CARLA_VERSION} only "
                f"(reinstall with: {CARLA_INSTALL})"
            )
        apply()
        before = set(sys.modules)
        with _logging_preserved(), _eager_execution_kept(), _quiet_stdout():
            import carla
        for name, fix in _POST_IMPORT_FIXES.items():
            if name not in _applied:
                _applied[name] = fix()
        # placeholders stay visible to CARLA's modules (they hold references) but are taken out of
        # sys.modules, so that any other `import tensorflow` still fails as it should
        for name in set(sys.modules) - before:
            if isinstance(sys.modules[name], PlaceholderModule):
                del sys.modules[name]
        _carla = carla
        return carla


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        yield


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence CARLA's prints, progress bars, warnings and log messages inside the block."""
    with (
        open(os.devnull, "w") as sink,
        contextlib.redirect_stdout(sink),
        contextlib.redirect_stderr(sink),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        yield
