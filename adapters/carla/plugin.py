"""Registers the carla generators (placeholder until the carla adapter lands: registers nothing)."""

from ct_plugin.hookspecs import hookimpl


@hookimpl
def ct_plugin_generators():
    return []
