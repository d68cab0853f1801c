"""The plugin kernel: hook specifications, the registry they fill, and the lifecycle events.

It imports no plugin: built-ins register through the ``ct_plugin`` entry point like any third
party (:data:`~ct_plugin.plugins.registry.BUILTIN_PLUGINS` are loaded by name when no entry point
exists). :mod:`~ct_plugin.plugins.hookspecs` documents every hook, :mod:`~ct_plugin.plugins.registry`
holds the registry and :class:`~ct_plugin.plugins.registry.PluginItem`,
:mod:`~ct_plugin.plugins.events` the payloads of the lifecycle hooks and
:mod:`~ct_plugin.plugins.options` types a plugin's options against its signature.
"""
