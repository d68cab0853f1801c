"""Placeholders for CARLA's absent optional packages, served to CARLA's own imports only.

``carla/__init__.py`` imports every recourse method, so TensorFlow, Keras, xgboost, lime,
``recourse``, causalgraphicalmodels, dice-ml, torchvision and seaborn would all be needed just
to ``import carla``. :class:`PlaceholderFinder`, an import hook that :func:`fix_placeholders`
puts first on ``sys.meta_path``, serves a :class:`PlaceholderModule` for each one that is not
installed, **only to imports made by CARLA's own modules** (any other importer still gets the
usual ``ImportError``). Using anything from a placeholder raises
:class:`~ct_plugin.errors.MissingDependencyError` naming the package and the command that
installs it, so a method that truly needs it fails when called, not at import.

One of the fix families applied by :mod:`ct_plugin.adapters.carla.compat` (fix ``placeholders``).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types
from typing import Any

from ct_plugin.errors import MissingDependencyError

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

#: the modules of the compatibility layer (``compat`` and ``compat_*``): their frames are never
#: the importer that :func:`_importer_is_carla` looks for
_COMPAT_MODULES = __name__.rpartition(".")[0]  # the compat package: its modules are not CARLA


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


def disable_eager_execution_noop() -> None:
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
            compat.v1.disable_eager_execution = disable_eager_execution_noop
            module.compat = compat


def _importer_is_carla() -> bool:
    """Whether the import being resolved was written in one of CARLA's modules."""
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        ours = name.startswith(_COMPAT_MODULES)
        if not (name.startswith("importlib") or ours or name.startswith("_frozen_importlib")):
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
        elif real_spec(fullname) is not None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _PlaceholderLoader(root), is_package=True)


def real_spec(name: str) -> Any:
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
    return [name for name in OPTIONAL_PACKAGES if real_spec(name) is None]


def is_placeholder(obj: Any) -> bool:
    """Whether ``obj`` is a placeholder module or attribute made by this module."""
    return isinstance(obj, PlaceholderModule | _MissingMeta)


def fix_placeholders() -> bool:
    if any(isinstance(f, PlaceholderFinder) for f in sys.meta_path):
        return False
    sys.meta_path.insert(0, PlaceholderFinder(set(OPTIONAL_PACKAGES)))
    return True
