"""A third-party plugin: one loss term, one update schedule, one factual selector and one strategy.

Registered through the ``ct_plugin`` entry-point group (this package's ``pyproject.toml``); ct-plugin
itself is not changed. Each part uses only ct-plugin's public plugin API.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ct_plugin import LossTerm, PluginItem, TrainingStrategy, hookimpl
from ct_plugin.torch_utils import frozen
from ct_plugin.training.factuals import FactualPool, FactualSelector
from ct_plugin.training.objective import BatchContext
from ct_plugin.training.schedules import UpdateSchedule, UpdateStep

CT_PLUGIN_API = "2.0"
"""The plugin API this plugin was written against (ct-plugin refuses it if it provides an older one)."""


def input_gradient_penalty(ctx: BatchContext) -> torch.Tensor:
    """Mean over the batch of ||d CE(M(x), y) / dx||^2 (Ross & Doshi-Velez 2018): a smoother model."""
    x = ctx.x.detach().requires_grad_(True)
    loss = F.cross_entropy(ctx.model(x), ctx.y, reduction="sum")
    (gradient,) = torch.autograd.grad(loss, x, create_graph=True)
    return gradient.pow(2).sum(dim=1).mean()


class TwoStepUpdate(UpdateSchedule):
    """One optimiser step on yloss, then one on the other active terms (the second on the updated weights)."""

    name = "two-step"

    def step(self, update: UpdateStep) -> None:
        """Descend on the classification term first, then on the rest."""
        first = [term for term in update.terms if term.name == "yloss"]
        rest = [term for term in update.terms if term.name != "yloss"]
        update.descend(first)
        if rest:
            update.descend(rest)


class LeastConfidentFactuals(FactualSelector):
    """The rows with the smallest gap between the model's two largest class probabilities."""

    name = "least-confident"

    def select(self, pool: FactualPool) -> torch.Tensor:
        """``count`` indices, least confident first (a uniform draw of the rest when asked for more rows)."""
        with frozen(pool.model), torch.no_grad():
            top2 = pool.model(pool.X).softmax(dim=1).topk(2, dim=1).values
        order = torch.argsort(top2[:, 0] - top2[:, 1]).cpu()
        if pool.count <= len(order):
            return order[: pool.count]
        extra = torch.randint(0, len(order), (pool.count - len(order),), generator=pool.rng)
        return torch.cat([order, extra])


@hookimpl
def ct_plugin_loss_terms():
    return [LossTerm("smooth", input_gradient_penalty, "input-gradient penalty ||d yloss / dx||^2",
                     default_weight=0.1, uses_counterfactuals=False)]


@hookimpl
def ct_plugin_update_schedules():
    return [PluginItem("two-step", TwoStepUpdate, "a step on yloss, then a step on the other terms")]


@hookimpl
def ct_plugin_factual_selectors():
    return [PluginItem("least-confident", LeastConfidentFactuals,
                       "the training rows the model is least sure about")]


def smooth_ct(config=None) -> TrainingStrategy:
    """Counterfactual training plus the smoothness term, with two-step updates and least-confident factuals."""
    burnin = float(getattr(config, "burnin", 0.0) or 0.0)
    return TrainingStrategy("smooth-ct", {"div", "reg", "adv", "smooth"}, burnin,
                            update_schedule="two-step", factual_selector="least-confident")


@hookimpl
def ct_plugin_strategies():
    return [PluginItem("smooth-ct", smooth_ct,
                       "CT + input-gradient penalty, two-step updates, least-confident factuals")]
