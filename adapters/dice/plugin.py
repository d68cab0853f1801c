"""Registers the dice generators (placeholder until the dice adapter lands: registers nothing)."""

from ct_plugin.hookspecs import hookimpl


@hookimpl
def ct_plugin_generators():
    return []
