"""ct-plugin adapter for DiCE (dice-ml): DiCE's methods as counterfactual generators.

``plugin`` registers them (without importing dice-ml); ``generator`` holds
:class:`~ct_plugin.adapters.dice.generator.DiceGenerator`.
"""
