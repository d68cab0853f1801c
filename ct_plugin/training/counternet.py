"""CounterNet (Guo, Nguyen & Yadav, KDD 2023) as a strategy: the classifier and a generator network trained
together, block-wise.

Per batch: one optimiser step on ``yloss`` (the classifier), then one step on CounterNet's two terms,

    cn_validity  = mean || softmax(h(g(x))) - onehot(y') ||^2     (weight --lambda-cn-validity, 0.2)
    cn_proximity = mean || g(x) - x ||_1 / d                       (weight --lambda-cn-proximity, 0.1)

which trains both the generator g (its own Adam optimiser, the run's learning rate) and the
classifier, as CounterNet's second block does. y' is a class other than h's prediction (the flip
for binary data). g is :class:`~ct_plugin.generators.counternet.GeneratorNetwork`; its weights and
optimiser state are saved in every checkpoint, so a run resumes with it. No counterfactual search
runs in training: g's forward pass replaces it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from ct_plugin.errors import CTPluginError
from ct_plugin.generators.counternet import GeneratorNetwork, flipped_targets, generator_losses
from ct_plugin.training.strategies import TrainingStrategy

if TYPE_CHECKING:
    from ct_plugin.training.objective import BatchContext
    from ct_plugin.training.schedules import UpdateStep

NAME = "counternet"
TERMS = ("cn_validity", "cn_proximity")


class CounterNetStrategy(TrainingStrategy):
    """yloss, then CounterNet's validity + proximity through a generator network trained alongside."""

    def __init__(self, burnin: float = 0.0):
        super().__init__(NAME, set(TERMS), burnin, update_schedule="blockwise")
        self.network: GeneratorNetwork | None = None
        self.optimiser: torch.optim.Optimizer | None = None
        self.rng: torch.Generator | None = None

    def setup(self, model: torch.nn.Module, spec: Any, config: Any, device: torch.device) -> None:
        """Build g and its optimiser (seeded by the run's seed)."""
        torch.manual_seed(int(config.seed) + 7919)
        self.network = GeneratorNetwork(spec.n_features, spec.n_classes).to(device)
        self.optimiser = torch.optim.Adam(self.network.parameters(), lr=config.lr)
        self.rng = torch.Generator().manual_seed(int(config.seed))

    def after_update(self, step: UpdateStep) -> None:
        """Step g's optimiser on the gradients the second block left (none when it was skipped)."""
        if self.optimiser is not None:
            self.optimiser.step()
            self.optimiser.zero_grad(set_to_none=True)

    def state_dict(self) -> dict[str, Any]:
        """g's weights and its optimiser's state."""
        if self.network is None or self.optimiser is None:
            return {}
        return {"network": self.network.state_dict(), "optimiser": self.optimiser.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore g when a run resumes."""
        if state and self.network is not None and self.optimiser is not None:
            self.network.load_state_dict(state["network"])
            self.optimiser.load_state_dict(state["optimiser"])


def _losses(ctx: BatchContext) -> tuple[torch.Tensor, torch.Tensor]:
    strategy = ctx.strategy
    if not isinstance(strategy, CounterNetStrategy) or strategy.network is None:
        raise CTPluginError(f"loss terms {', '.join(TERMS)} need strategy counternet's generator network; "
                            f"train with --strategy counternet (this run's strategy: "
                            f"{getattr(strategy, 'name', None)!r})")
    if "counternet" not in ctx.cache:
        targets = flipped_targets(ctx.model, ctx.x, strategy.network.n_classes, strategy.rng)
        ctx.cache["counternet"] = generator_losses(ctx.model, strategy.network, ctx.x, targets, ctx.constraints)
    return ctx.cache["counternet"]


def validity_term(ctx: BatchContext) -> torch.Tensor:
    """CounterNet's validity: mean squared error of the classifier's probabilities at g(x) to onehot(y')."""
    return _losses(ctx)[0]


def proximity_term(ctx: BatchContext) -> torch.Tensor:
    """CounterNet's proximity: the L1 distance from x to g(x) per feature (mean over rows and features)."""
    return _losses(ctx)[1]
