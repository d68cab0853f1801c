"""``ct-plugin reproduce``: the paper's experiment end to end (tune, train, evaluate, report).

:mod:`~ct_plugin.reproduce.plan` says what is trained, :mod:`~ct_plugin.reproduce.run` runs it,
:mod:`~ct_plugin.reproduce.tables`, :mod:`~ct_plugin.reproduce.cost`, :mod:`~ct_plugin.reproduce.sections`
and :mod:`~ct_plugin.reproduce.report` write ``results.md``.
"""
