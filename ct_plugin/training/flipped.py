"""The misclassification rule for nascent examples (after Freiesleben 2022), as a strategy.

Freiesleben argues that an adversarial example implies a misclassification while a counterfactual
explanation does not. CT's adversarial term classifies every nascent counterfactual (the search's
last iterate within epsilon of the factual) with the factual's true label. ``ct_flipped`` keeps CT's
terms but counts in that term only the nascent examples the model misclassifies at search time
(predicted class != true label): a nascent example the model still gets right is not adversarial.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ct_plugin.torch_utils import predict_classes
from ct_plugin.training.strategies import TrainingStrategy

if TYPE_CHECKING:
    import torch

    from ct_plugin.generators.base import SearchResult
    from ct_plugin.training.objective import CounterfactualBatch

NAME = "ct_flipped"


class FlippedAdversarialStrategy(TrainingStrategy):
    """CT (``div``, ``reg``, ``adv``) whose ``adv`` term sees only misclassified nascent examples."""

    def __init__(self, burnin: float = 0.0):
        super().__init__(NAME, {"div", "reg", "adv"}, burnin)

    def after_search(
        self, batch: CounterfactualBatch, result: SearchResult, model: torch.nn.Module
    ) -> CounterfactualBatch:
        """Mark the nascent examples whose predicted class is not the factual's label."""
        batch.adversarial_mask = predict_classes(model, batch.x_adv) != batch.labels
        return batch
