"""Deprecated: moved to :mod:`ct_plugin.plugins.registry`; this alias warns and goes away in the next release."""

import warnings

from ct_plugin.plugins.registry import (
    KINDS,
    LazyFactory,
    PluginItem,
    Registry,
    call_lifecycle,
    get_registry,
    plugin_manager,
    plugin_sources,
    register_plugin,
    unregister_plugin,
)

warnings.warn(
    "ct_plugin.registry moved to ct_plugin.plugins.registry"
    " (this alias goes away in the next release)",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = [
    "KINDS",
    "LazyFactory",
    "PluginItem",
    "Registry",
    "call_lifecycle",
    "get_registry",
    "plugin_manager",
    "plugin_sources",
    "register_plugin",
    "unregister_plugin",
]
