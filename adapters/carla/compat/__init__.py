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

This package's face holds the public API and the import itself (:func:`apply`, :func:`import_carla`,
:func:`quiet`; the process-wide side effects of ``import carla`` on logging and TensorFlow's
eager mode are undone here). Each family of fixes lives in a module of its own:
:mod:`~ct_plugin.adapters.carla.compat.placeholders` (placeholders),
:mod:`~ct_plugin.adapters.carla.compat.aliases` (restored aliases) and
:mod:`~ct_plugin.adapters.carla.compat.patches` (CARLA-local fixes).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import os
import sys
import threading
import types
import warnings
from collections.abc import Callable, Iterator

from ct_plugin.adapters.carla.compat.aliases import (
    fix_collections_aliases,
    fix_numpy_aliases,
    fix_pandas_append,
    fix_sklearn_get_feature_names,
)
from ct_plugin.adapters.carla.compat.patches import (
    fix_catalog_dataset,
    fix_clue_nb_parameters,
    fix_dice_wrapper,
    fix_face_without_immutables,
    fix_onehot_sparse,
    fix_torch_load,
    fix_wachter_bce_index,
)
from ct_plugin.adapters.carla.compat.placeholders import (
    OPTIONAL_PACKAGES,
    PlaceholderModule,
    disable_eager_execution_noop,
    fix_placeholders,
    is_placeholder,
    missing_optional_packages,
    real_spec,
)
from ct_plugin.errors import CTPluginError, MissingDependencyError

CARLA_VERSION = "0.0.5"
CARLA_INSTALL = "python -m ct_plugin.adapters.carla.install"

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

_lock = threading.RLock()
_applied: dict[str, bool] = {}
_carla: types.ModuleType | None = None


# ------------------------------------------------------------------------------------ the import
_PRE_IMPORT_FIXES: dict[str, Callable[[], bool]] = {
    "placeholders": fix_placeholders,
    "collections_aliases": fix_collections_aliases,
    "numpy_aliases": fix_numpy_aliases,
    "sklearn_get_feature_names": fix_sklearn_get_feature_names,
    "pandas_append": fix_pandas_append,
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
    if tf is None and real_spec("tensorflow") is not None:
        tf = importlib.import_module("tensorflow")
    v1 = getattr(getattr(tf, "compat", None), "v1", None) if tf is not None else None
    if v1 is None or is_placeholder(tf):
        yield
        return
    original = v1.disable_eager_execution
    v1.disable_eager_execution = disable_eager_execution_noop
    _applied["eager_execution"] = True
    try:
        yield
    finally:
        v1.disable_eager_execution = original


_POST_IMPORT_FIXES: dict[str, Callable[[], bool]] = {
    "catalog_dataset": fix_catalog_dataset,
    "dice_wrapper": fix_dice_wrapper,
    "onehot_sparse": fix_onehot_sparse,
    "torch_load": fix_torch_load,
    "clue_nb_parameters": fix_clue_nb_parameters,
    "wachter_bce_index": fix_wachter_bce_index,
    "face_without_immutables": fix_face_without_immutables,
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
    return importlib.util.find_spec("carla") is not None and carla_version() is not None


def carla_version() -> str | None:
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
        found = carla_version()
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


__all__ = [
    "CARLA_INSTALL",
    "CARLA_VERSION",
    "FIXES",
    "OPTIONAL_PACKAGES",
    "applied",
    "apply",
    "carla_installed",
    "carla_version",
    "import_carla",
    "is_placeholder",
    "missing_optional_packages",
    "quiet",
]
