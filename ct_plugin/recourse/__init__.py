"""Recourse for people: ``ct_plugin.explain`` and ``ct-plugin explain``.

:func:`explain` takes people in original units (or a run's rejected test rows), searches their
counterfactuals in one batched search per generator with the test-time defaults of
:mod:`~ct_plugin.recourse.defaults`, and returns an :class:`Explanation`: a DataFrame-backed result
with Markdown, CSV, DiCE-style JSON and a figure per person.
"""

from ct_plugin.recourse.api import explain
from ct_plugin.recourse.defaults import RECOURSE_GENERATOR, RECOURSE_MAX_STEPS, RECOURSE_OPTIONS, RECOURSE_TAU
from ct_plugin.recourse.result import Explanation
from ct_plugin.recourse.rows import OutOfRangeWarning

__all__ = [
    "RECOURSE_GENERATOR",
    "RECOURSE_MAX_STEPS",
    "RECOURSE_OPTIONS",
    "RECOURSE_TAU",
    "Explanation",
    "OutOfRangeWarning",
    "explain",
]
