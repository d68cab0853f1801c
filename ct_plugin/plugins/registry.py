"""The registry of everything plugins provide, filled by their hooks (:mod:`ct_plugin.plugins.hookspecs`).

Kinds: generators, training strategies, loss terms, update schedules, factual selectors, metrics,
datasets and models. Each item is a :class:`PluginItem` (a loss term a :class:`LossTerm`), named,
with a factory and the plugin that registered it. The process-wide plugin manager loads every
``ct_plugin`` entry point; the built-ins register through the same hooks, by module name when
they are not installed as an entry point (:data:`BUILTIN_PLUGINS`).
"""

from __future__ import annotations

import importlib
import inspect
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from ct_plugin.errors import CTPluginError, UnknownNameError
from ct_plugin.plugins import hookspecs

KINDS = ("generator", "strategy", "loss_term", "update_schedule", "factual_selector", "metric", "dataset", "model")
HOOK_OF_KIND = {
    "generator": "ct_plugin_generators",
    "strategy": "ct_plugin_strategies",
    "loss_term": "ct_plugin_loss_terms",
    "update_schedule": "ct_plugin_update_schedules",
    "factual_selector": "ct_plugin_factual_selectors",
    "metric": "ct_plugin_metrics",
    "dataset": "ct_plugin_datasets",
    "model": "ct_plugin_models",
}
BUILTIN_PLUGINS = ("ct_plugin.builtin",)
"""Modules of the built-in plugins, registered by name when no entry point provides them (a source
checkout that was never pip-installed), the way pytest loads its default plugins."""


@dataclass
class PluginItem:
    """One registered thing: its name, how to build it, and where it came from.

    Attributes:
        name: registry key (lower-case, dashes allowed).
        factory: builds the thing; its signature depends on the kind (see the hook specs).
        description: one line for ``ct-plugin plugins``.
        available: False when a dependency is missing; ``reason`` says which and how to install it.
        plugin: name of the plugin that registered it (filled in by the registry).
    """

    name: str
    factory: Callable[..., Any]
    description: str = ""
    available: bool = True
    reason: str = ""
    plugin: str = field(default="", compare=False)
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass
class LossTerm(PluginItem):
    """A term of the training objective: ``factory(context) -> scalar tensor``, weighted by ``lambda_<name>``.

    ``factory`` is the term's batched function over a
    :class:`~ct_plugin.training.objective.BatchContext` (the batch, its logits, the counterfactual
    batch if any, the model, the constraints, the config). Its weight is the setting
    ``lambda_<name>`` (the flag ``--lambda-<name>``, a ``tune``/grid axis), ``default_weight``
    unless set. A term is on when the strategy names it (after burn-in) or when the user sets its
    weight above 0 (plugin terms, with any strategy).

    Attributes:
        default_weight: the weight when the user sets none.
        uses_counterfactuals: the term needs the batch's counterfactuals (a search runs for it,
            and it is skipped on batches without any).
        explodes_above: a mean value beyond this means the run diverged (the divergence guard).
        suspect: the setting most likely at fault when the term goes non-finite (after its own
            weight, when that is above 100).
        blamed_weights: terms whose weight above 10 is blamed first when this term goes non-finite.
        needs_desired_class: the term aims at the dataset's favourable class (``spec.desired``): training
            a dataset without one is refused before anything is written.
    """

    default_weight: float = 1.0
    uses_counterfactuals: bool = True
    needs_desired_class: bool = False
    explodes_above: float = 1e4
    suspect: str = "lr"
    blamed_weights: tuple[str, ...] = ()

    @property
    def weight_setting(self) -> str:
        """The setting that weights this term: ``lambda_<name>``."""
        return f"lambda_{self.name}"

    def compute(self, context: Any) -> Any:
        """The term's value on one batch (a scalar tensor the gradient flows through)."""
        return self.factory(context)


class LazyFactory:
    """``module:attribute``, imported when first called (its signature is the target's).

    Registering a plugin with lazy factories imports neither torch nor pandas: ``ct-plugin --help``
    stays fast, and the heavy module loads when the item is first built.
    """

    def __init__(self, module: str, attribute: str):
        self.module, self.attribute = module, attribute
        self._target: Callable[..., Any] | None = None

    def resolve(self) -> Any:
        """The imported callable (imported once)."""
        if self._target is None:
            self._target = getattr(importlib.import_module(self.module), self.attribute)
        return self._target

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)

    @property
    def __signature__(self) -> inspect.Signature:
        return inspect.signature(self.resolve())

    def __repr__(self) -> str:
        return f"LazyFactory({self.module}:{self.attribute})"


class Registry:
    """All items of every kind, collected from the plugin manager's hook implementations.

    A kind is collected when it is first asked for (the loss terms a command line needs for its
    flags do not load the metrics, which import torch); :meth:`collect_all` collects every kind.
    """

    def __init__(self, manager: pluggy.PluginManager):
        self.manager = manager
        for name, plugin in manager.list_name_plugin():
            check_api_version(name, plugin)
        self._items: dict[str, dict[str, PluginItem]] = {}

    def _kind(self, kind: str) -> dict[str, PluginItem]:
        """The items of ``kind`` by name, in registration order (collected on first use)."""
        self._check_kind(kind)
        if kind not in self._items:
            collected: dict[str, PluginItem] = {}
            for impl in getattr(self.manager.hook, HOOK_OF_KIND[kind]).get_hookimpls():  # registration order
                for item in impl.function() or []:
                    self._add(collected, kind, item, impl.plugin_name)
            self._items[kind] = collected
        return self._items[kind]

    def collect_all(self) -> Registry:
        """Collect every kind now (a bad item of any plugin raises here); returns self."""
        for kind in KINDS:
            self._kind(kind)
        return self

    @staticmethod
    def _add(collected: dict[str, PluginItem], kind: str, item: PluginItem, plugin_name: str) -> None:
        expected = LossTerm if kind == "loss_term" else PluginItem
        if not isinstance(item, expected):
            raise CTPluginError(
                f"plugin {plugin_name!r} returned {type(item).__name__} from its {kind} hook; "
                f"expected ct_plugin.{expected.__name__} objects"
            )
        if kind == "loss_term" and not item.name.isidentifier():
            raise CTPluginError(
                f"plugin {plugin_name!r} registers loss term {item.name!r}; a term's name must be an identifier "
                f"(its weight is the setting lambda_<name>)"
            )
        existing = collected.get(item.name)
        if existing is not None:
            raise CTPluginError(
                f"{kind} {item.name!r} is registered twice: by plugin {existing.plugin!r} and by "
                f"plugin {plugin_name!r}; rename one of them"
            )
        item.plugin = plugin_name
        collected[item.name] = item

    def items(self, kind: str) -> list[PluginItem]:
        """All items of a kind, sorted by name."""
        return sorted(self._kind(kind).values(), key=lambda item: item.name)

    def loss_terms(self) -> list[LossTerm]:
        """Every registered loss term: the built-in plugin's first, then by registration order.

        Terms are summed in this order, so a run's objective is the same whichever order the
        plugins were loaded in.
        """
        terms = list(self._kind("loss_term").values())
        return sorted(terms, key=lambda term: term.plugin != "builtin")  # type: ignore[return-value]

    def loss_term(self, name: str) -> LossTerm:
        """The loss term ``name`` (a clear error listing the registered ones otherwise)."""
        return self.get("loss_term", name)  # type: ignore[return-value]

    def names(self, kind: str, available_only: bool = False) -> list[str]:
        """Registered names of a kind."""
        return [i.name for i in self.items(kind) if i.available or not available_only]

    def get(self, kind: str, name: str) -> PluginItem:
        """The item of ``kind`` called ``name``; unknown or unavailable names raise a clear error."""
        items = self._kind(kind)
        item = items.get(name)
        if item is None:
            raise UnknownNameError(kind, name, items)
        if not item.available:
            raise CTPluginError(f"{kind} {name!r} (plugin {item.plugin!r}) is unavailable: {item.reason}")
        return item

    def build(self, kind: str, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call the factory of ``kind``/``name`` with the given arguments."""
        return self.get(kind, name).factory(*args, **kwargs)

    def _check_kind(self, kind: str) -> None:
        if kind not in KINDS:
            raise CTPluginError(f"unknown registry kind {kind!r}; kinds are {', '.join(KINDS)}")


def check_api_version(name: str, plugin: object) -> None:
    """Refuse a plugin written for a newer plugin API than this one; warn about one for an older major version.

    A plugin declares the API it was written against as ``CT_PLUGIN_API = "MAJOR.MINOR"``
    (see :mod:`ct_plugin.plugins.hookspecs`); without it, it is taken to fit.
    """
    declared = getattr(plugin, "CT_PLUGIN_API", None)
    if declared is None:
        return
    ours = _version_tuple(hookspecs.API_VERSION)
    try:
        theirs = _version_tuple(str(declared))
    except ValueError:
        raise CTPluginError(f"plugin {name!r} declares CT_PLUGIN_API = {declared!r}; expected 'MAJOR.MINOR'") from None
    if theirs[0] > ours[0] or (theirs[0] == ours[0] and theirs[1] > ours[1]):
        raise CTPluginError(
            f"plugin {name!r} needs plugin API {declared}, this ct-plugin provides {hookspecs.API_VERSION}: "
            "upgrade ct-plugin (pip install -U ct-plugin) or use an older version of the plugin"
        )
    if theirs[0] < ours[0]:
        warnings.warn(
            f"plugin {name!r} was written for plugin API {declared}; this ct-plugin provides "
            f"{hookspecs.API_VERSION} (see docs/plugins.md for what changed)",
            DeprecationWarning,
            stacklevel=3,
        )


def _version_tuple(text: str) -> tuple[int, int]:
    major, _, minor = text.strip().partition(".")
    return int(major), int(minor or 0)


_manager: pluggy.PluginManager | None = None
_registry: Registry | None = None


def plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager: built-ins and every ``ct_plugin`` entry point loaded."""
    global _manager
    if _manager is None:
        manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        manager.add_hookspecs(hookspecs)
        manager.load_setuptools_entrypoints(hookspecs.ENTRY_POINT_GROUP)
        loaded = {_module_name(p) for p in manager.get_plugins()}
        for module in BUILTIN_PLUGINS:
            if module not in loaded:  # a source tree that was never pip-installed: no entry points exist
                manager.register(importlib.import_module(module), name=module.rsplit(".", 1)[-1])
        _manager = manager
    return _manager


def get_registry() -> Registry:
    """The registry built from the current plugin manager (rebuilt after :func:`register_plugin`)."""
    global _registry
    if _registry is None:
        _registry = Registry(plugin_manager())
    return _registry


def register_plugin(plugin: object, name: str | None = None) -> str:
    """Register a plugin object or module at run time (as an entry point would) and refresh the registry."""
    global _registry
    manager = plugin_manager()
    registered = manager.register(plugin, name=name)
    if registered is None:
        raise CTPluginError(f"plugin {name or plugin!r} is already registered or blocked")
    _registry = None
    try:
        get_registry().collect_all()
    except CTPluginError:
        manager.unregister(plugin)
        _registry = None
        raise
    return registered


def unregister_plugin(name: str) -> None:
    """Remove a plugin registered under ``name`` and refresh the registry."""
    global _registry
    plugin = plugin_manager().get_plugin(name)
    if plugin is None:
        raise CTPluginError(f"no plugin named {name!r} is registered")
    plugin_manager().unregister(plugin)
    _registry = None


def plugin_sources() -> list[tuple[str, str]]:
    """(plugin name, where it came from) for every registered plugin."""
    manager = plugin_manager()
    dists = {id(plugin): dist for plugin, dist in manager.list_plugin_distinfo()}
    rows = []
    for name, plugin in manager.list_name_plugin():
        dist = dists.get(id(plugin))
        if dist is not None:
            origin = f"entry point of {dist.metadata['name']} {dist.version}"
        else:
            origin = f"registered at run time ({_module_name(plugin)})"
        rows.append((name, origin))
    return rows


def call_lifecycle(hook_name: str, event: object) -> None:
    """Call a lifecycle hook on every plugin."""
    getattr(plugin_manager().hook, hook_name)(event=event)


def _module_name(plugin: object) -> str:
    if isinstance(plugin, type(sys)):
        return plugin.__name__
    return type(plugin).__module__ + "." + type(plugin).__qualname__
