"""``ct-plugin compare``: CT, the paper's leads and the peer methods trained and judged on one protocol.

:mod:`~ct_plugin.compare.methods` names the methods and their tuning grids, :mod:`~ct_plugin.compare.run`
tunes, trains and evaluates them (reusing :mod:`ct_plugin.reproduce`'s plan, jobs and caches), and
:mod:`~ct_plugin.compare.report` writes ``strategies.md``.
"""

from ct_plugin.compare.methods import DEFAULT_METHODS, METHODS, Method, resolve_methods

__all__ = ["DEFAULT_METHODS", "METHODS", "Method", "resolve_methods"]
