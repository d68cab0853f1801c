"""Counterfactual training: ``ct_plugin.train`` and what it is made of.

:mod:`~ct_plugin.training.train` puts a run together, :mod:`~ct_plugin.training.setup` resolves its
config, data, model and generator, :mod:`~ct_plugin.training.loop` runs the epochs,
:mod:`~ct_plugin.training.objective` holds the loss terms, :mod:`~ct_plugin.training.strategies`
the strategies that switch them on, and :mod:`~ct_plugin.training.health` the divergence guard and
the maturity warnings.
"""
