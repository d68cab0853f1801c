"""ct-plugin adapter for DiCE (dice-ml): DiCE's methods as counterfactual generators.

``plugin`` registers them (without importing dice-ml); ``generator`` holds
:class:`~ct_plugin.adapters.dice.generator.DiceGenerator`, with its parts in ``explainers``
(dice-ml itself), ``wrappers`` (the model and data DiCE is given), ``queries`` (one factual as
one DiCE query) and ``results`` (DiCE's answers back into our encoding).
"""
