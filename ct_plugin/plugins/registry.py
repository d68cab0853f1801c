"""Registries of generators, strategies, metrics, datasets and models, filled by plugin hooks."""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from ct_plugin.errors import CTPluginError, UnknownNameError
from ct_plugin.plugins import hookspecs

KINDS = ("generator", "strategy", "metric", "dataset", "model")
_HOOK_OF_KIND = {
    "generator": "ct_plugin_generators",
    "strategy": "ct_plugin_strategies",
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


class LazyFactory:
    """``module:attribute``, imported when first called (its signature is the target's).

    Registering a plugin with lazy factories imports neither torch nor pandas: ``ct-plugin --help``
    stays fast, and the heavy module loads when the item is first built.
    """

    def __init__(self, module: str, attribute: str):
        self.module, self.attribute = module, attribute

    def resolve(self) -> Any:
        """The imported callable."""
        return getattr(importlib.import_module(self.module), self.attribute)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)

    @property
    def __signature__(self) -> inspect.Signature:
        return inspect.signature(self.resolve())

    def __repr__(self) -> str:
        return f"LazyFactory({self.module}:{self.attribute})"


class Registry:
    """All items of every kind, collected from the plugin manager's hook implementations."""

    def __init__(self, manager: pluggy.PluginManager):
        self.manager = manager
        self._items: dict[str, dict[str, PluginItem]] = {kind: {} for kind in KINDS}
        for kind, hook_name in _HOOK_OF_KIND.items():
            hook = getattr(manager.hook, hook_name)
            for impl in hook.get_hookimpls():  # registration order
                for item in impl.function() or []:
                    self._add(kind, item, impl.plugin_name)

    def _add(self, kind: str, item: PluginItem, plugin_name: str) -> None:
        if not isinstance(item, PluginItem):
            raise CTPluginError(
                f"plugin {plugin_name!r} returned {type(item).__name__} from its {kind} hook; "
                "expected ct_plugin.PluginItem objects"
            )
        existing = self._items[kind].get(item.name)
        if existing is not None:
            raise CTPluginError(
                f"{kind} {item.name!r} is registered twice: by plugin {existing.plugin!r} and by "
                f"plugin {plugin_name!r}; rename one of them"
            )
        item.plugin = plugin_name
        self._items[kind][item.name] = item

    def items(self, kind: str) -> list[PluginItem]:
        """All items of a kind, sorted by name."""
        self._check_kind(kind)
        return sorted(self._items[kind].values(), key=lambda item: item.name)

    def names(self, kind: str, available_only: bool = False) -> list[str]:
        """Registered names of a kind."""
        return [i.name for i in self.items(kind) if i.available or not available_only]

    def get(self, kind: str, name: str) -> PluginItem:
        """The item of ``kind`` called ``name``; unknown or unavailable names raise a clear error."""
        self._check_kind(kind)
        item = self._items[kind].get(name)
        if item is None:
            raise UnknownNameError(kind, name, self._items[kind])
        if not item.available:
            raise CTPluginError(f"{kind} {name!r} (plugin {item.plugin!r}) is unavailable: {item.reason}")
        return item

    def build(self, kind: str, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call the factory of ``kind``/``name`` with the given arguments."""
        return self.get(kind, name).factory(*args, **kwargs)

    def _check_kind(self, kind: str) -> None:
        if kind not in KINDS:
            raise CTPluginError(f"unknown registry kind {kind!r}; kinds are {', '.join(KINDS)}")


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
        get_registry()
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
