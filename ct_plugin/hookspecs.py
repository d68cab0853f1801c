"""Deprecated: moved to :mod:`ct_plugin.plugins.hookspecs`; this alias warns and goes away in the next release."""

import warnings

from ct_plugin.plugins.hookspecs import ENTRY_POINT_GROUP, PROJECT_NAME, hookimpl, hookspec

warnings.warn(
    "ct_plugin.hookspecs moved to ct_plugin.plugins.hookspecs"
    " (this alias goes away in the next release)",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "PROJECT_NAME",
    "hookimpl",
    "hookspec",
]
