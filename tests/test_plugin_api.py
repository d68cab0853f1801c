"""The plugin API for training: loss terms, update schedules, factual selectors, strategy hooks, versions.

Each extension point is exercised by a small plugin registered at run time, on real torch models and
real (small) data; the built-in port is checked against the paper's loss computed inline.
"""

from __future__ import annotations

import math
import warnings
from typing import ClassVar

import pytest
import torch
import torch.nn.functional as F

import ct_plugin
from ct_plugin import CTPluginError, LossTerm, PluginItem, TrainingStrategy, hookimpl
from ct_plugin.config import TRAIN_SETTINGS, TrainConfig
from ct_plugin.constraints import SearchConstraints
from ct_plugin.plugins.registry import KINDS, check_api_version
from ct_plugin.training.factuals import FactualPool, FactualSelector, UniformFactuals
from ct_plugin.training.objective import BatchContext, CounterfactualBatch, batch_losses
from ct_plugin.training.schedules import JointUpdate, UpdateSchedule
from ct_plugin.tuning.axes import tuning_axes
from tests.conftest import linear_model

SMALL = {"dataset_options": {"n_samples": 300}, "epochs": 3, "nce": 60, "batch_size": 50, "lr": 0.01, "seed": 4,
         "quiet": True}


class Registered:
    """Register a plugin for the block, unregister after (the registry is process-wide)."""

    def __init__(self, plugin: object, name: str):
        self.plugin, self.name = plugin, name

    def __enter__(self):
        ct_plugin.register_plugin(self.plugin, name=self.name)
        return self.plugin

    def __exit__(self, *exc):
        ct_plugin.unregister_plugin(self.name)


def weights(result) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in result.model.state_dict().items()}


# ------------------------------------------------------------------ the port
class InlinePaperLoss(UpdateSchedule):
    """The paper's objective written out as the training loop computed it before terms were plugins."""

    name = "inline-paper"

    def step(self, update):
        trainer = update.trainer
        terms = {term.name for term in update.terms}
        x, y, cf = update.x, update.y, update.counterfactuals
        if cf is None or not len(cf) or not terms - {"yloss"}:
            logits = update.model(x)
            losses = {"yloss": F.cross_entropy(logits, y)}
        else:
            m = len(cf.targets)
            logits = update.model(torch.cat([x, cf.x_plus, cf.x_cf, cf.x_adv]))
            logits_x, logits_plus, logits_cf, logits_adv = torch.split(logits, [len(x), m, m, m])
            losses = {"yloss": F.cross_entropy(logits_x, y)}
            e_plus = -logits_plus.gather(1, cf.targets[:, None]).squeeze(1)
            e_cf = -logits_cf.gather(1, cf.targets[:, None]).squeeze(1)
            if "div" in terms:
                losses["div"] = (e_plus - e_cf).mean()
            if "reg" in terms:
                losses["reg"] = (e_plus**2 + e_cf**2).mean()
            if "adv" in terms:
                losses["adv"] = F.cross_entropy(logits_adv, cf.labels)
        total = sum(float(getattr(trainer.config, f"lambda_{name}")) * value for name, value in losses.items())
        update.optimiser.zero_grad(set_to_none=True)
        total.backward()
        update.optimiser.step()


class InlinePlugin:
    @hookimpl
    def ct_plugin_update_schedules(self):
        return [PluginItem("inline-paper", InlinePaperLoss, "the pre-plugin loss, inline (test)")]


@pytest.mark.parametrize("overrides", [
    {"strategy": "ct"},
    {"strategy": "energy", "lambda_div": 0.3},
    {"strategy": "adversarial"},
    {"strategy": "ct", "search_every": "batch", "nce": 30},
    {"strategy": "ct", "burnin": 0.5, "generator": "generic"},
])
def test_the_registered_terms_train_bit_for_bit_as_the_inline_loss_did(overrides):
    settings = {**SMALL, **overrides}
    with Registered(InlinePlugin(), "inline-paper"):
        inline = ct_plugin.train("moons", update_schedule="inline-paper", **settings)
        plugged = ct_plugin.train("moons", **settings)
    a, b = weights(inline), weights(plugged)
    assert all(torch.equal(a[k], b[k]) for k in a), "the plugin path changed the fixed-seed weights"


# ------------------------------------------------------------ the terms
def test_builtin_terms_are_registered_with_their_config_weights():
    registry = ct_plugin.get_registry()
    terms = registry.loss_terms()
    assert [t.name for t in terms][:4] == ["yloss", "div", "reg", "adv"]  # the built-ins first: the summation order
    for term in terms[:4]:
        assert term.plugin == "builtin"
        assert term.default_weight == TRAIN_SETTINGS.default(term.weight_setting)
    assert {"loss_term", "update_schedule", "factual_selector"} <= set(KINDS)
    assert registry.names("update_schedule") == ["blockwise", "joint"]
    assert registry.names("factual_selector") == ["entropy", "misclassified", "uniform"]


def test_batch_losses_by_hand_on_a_linear_model():
    model = linear_model([[1.0, 0.0], [0.0, 2.0]], [0.0, 1.0])
    x, y = torch.tensor([[1.0, 2.0]]), torch.tensor([1])
    cf = CounterfactualBatch(
        factuals=torch.tensor([[0.0, 0.0], [1.0, 1.0]]), x_cf=torch.tensor([[0.5, 1.0], [2.0, 0.0]]),
        x_plus=torch.tensor([[1.0, 2.0], [0.0, 0.0]]), x_adv=torch.tensor([[0.5, 1.0], [2.0, 0.0]]),
        targets=torch.tensor([1, 0]), labels=torch.tensor([0, 1]),
    )
    constraints = SearchConstraints.from_spec(ct_plugin.load_dataset("moons", n_samples=60))  # 2 free features
    ctx = BatchContext(model, x, y, cf, constraints, TrainConfig(), epoch=0)
    losses = batch_losses(ct_plugin.get_registry().loss_terms()[:4], ctx)
    # logits of x: [1, 5] -> CE(label 1) = log(1 + e^-4); E(x+) = [-5, -0], E(x') = [-3, -2]
    assert math.isclose(losses["yloss"].item(), math.log(1 + math.exp(-4)), rel_tol=1e-5)
    assert losses["div"].item() == 0.0          # mean([-5 + 3, 0 + 2])
    assert losses["reg"].item() == 19.0         # mean([25 + 9, 0 + 4])
    # x_adv logits [0.5, 3] vs label 0, [2, 1] vs label 1: CE = log(1 + e^2.5), log(1 + e^1)
    expected = (math.log(1 + math.exp(2.5)) + math.log(1 + math.exp(1.0))) / 2
    assert math.isclose(losses["adv"].item(), expected, rel_tol=1e-5)
    # an adversarial mask counts only its rows
    cf.adversarial_mask = torch.tensor([False, True])
    masked = batch_losses(ct_plugin.get_registry().loss_terms()[3:4], BatchContext(model, x, y, cf, constraints,
                                                                                   TrainConfig(), 0))
    assert math.isclose(masked["adv"].item(), math.log(1 + math.exp(1.0)), rel_tol=1e-5)


def test_terms_that_need_counterfactuals_are_skipped_on_a_batch_without_them():
    model = linear_model([[1.0, 0.0], [0.0, 2.0]], [0.0, 1.0])
    ctx = BatchContext(model, torch.zeros(3, 2), torch.tensor([0, 1, 0]), None, None, TrainConfig(), 0)
    assert list(batch_losses(ct_plugin.get_registry().loss_terms()[:4], ctx)) == ["yloss"]


class ScaleTerm:
    """A plugin term (the mean squared logit) that needs no counterfactuals, weighted by lambda_logit_l2."""

    calls = 0

    @hookimpl
    def ct_plugin_loss_terms(self):
        def logit_l2(ctx: BatchContext) -> torch.Tensor:
            ScaleTerm.calls += 1
            return ctx.logits_x.pow(2).mean()

        return [LossTerm("logit_l2", logit_l2, "mean squared logit", default_weight=0.5, uses_counterfactuals=False)]


def test_a_plugin_term_is_on_with_any_strategy_once_its_weight_is_set():
    with Registered(ScaleTerm(), "logit-l2"):
        off = ct_plugin.train("moons", strategy="vanilla", **SMALL)
        on = ct_plugin.train("moons", strategy="vanilla", lambda_logit_l2=0.5, **SMALL)
        assert "logit_l2" not in off.log[-1] and on.log[-1]["logit_l2"] > 0
        assert on.config.term_weights == {"logit_l2": 0.5}
        # a strategy that names it switches it on at its default weight
        with Registered(StrategyPlugin(TrainingStrategy("l2", {"logit_l2"})), "l2-strategy"):
            named = ct_plugin.train("moons", strategy="l2", **SMALL)
        assert named.log[-1]["logit_l2"] > 0 and named.log[-1]["ct_on"] is False  # no counterfactuals needed
        # the flag of the CLI and the tune axis exist while the plugin is registered
        assert "lambda_logit_l2" in tuning_axes()
    with pytest.raises(CTPluginError, match="lambda_logit_l2: no plugin registered a loss term called 'logit_l2'"):
        ct_plugin.train("moons", strategy="vanilla", lambda_logit_l2=0.5, **SMALL)


class StrategyPlugin:
    def __init__(self, strategy: TrainingStrategy):
        self.strategy = strategy

    @hookimpl
    def ct_plugin_strategies(self):
        return [PluginItem(self.strategy.name, lambda config=None: self.strategy, "test strategy")]


def test_a_strategy_naming_an_unregistered_term_is_refused_clearly():
    with Registered(StrategyPlugin(TrainingStrategy("typo", {"dvi"})), "typo-strategy"), pytest.raises(
        CTPluginError, match=r"strategy 'typo' names loss term\(s\) \['dvi'\] that no plugin registered; "
                             r"registered loss terms: adv, augment, cn_proximity, cn_validity, div, gradsup, recourse, "
                             r"reg, yloss"
    ):
        ct_plugin.train("moons", strategy="typo", **SMALL)


def test_a_loss_term_must_be_a_loss_term_with_an_identifier_name():
    class Bad:
        @hookimpl
        def ct_plugin_loss_terms(self):
            return [PluginItem("x", lambda ctx: 0.0)]

    with pytest.raises(CTPluginError, match="expected ct_plugin.LossTerm objects"):
        ct_plugin.register_plugin(Bad(), name="bad-term")

    class Dashed:
        @hookimpl
        def ct_plugin_loss_terms(self):
            return [LossTerm("my-term", lambda ctx: 0.0)]

    with pytest.raises(CTPluginError, match="must be an identifier"):
        ct_plugin.register_plugin(Dashed(), name="dashed-term")


# ------------------------------------------------------- schedules, selectors
class CountingSchedule(UpdateSchedule):
    """Two steps per batch: yloss, then the other terms; counts the steps and what each saw."""

    name = "counting"
    steps: ClassVar[list[list[str]]] = []

    def step(self, update):
        first = [t for t in update.terms if t.name == "yloss"]
        rest = [t for t in update.terms if t.name != "yloss"]
        for terms in (first, rest):
            if terms:
                CountingSchedule.steps.append([t.name for t in terms])
                update.descend(terms)


class LastRows(FactualSelector):
    """The last ``count`` training rows (a deterministic rule, to see the trainer use it)."""

    name = "last-rows"
    seen: ClassVar[list[int]] = []

    def select(self, pool: FactualPool) -> torch.Tensor:
        LastRows.seen.append(pool.count)
        return torch.arange(len(pool.X) - pool.count, len(pool.X))


class SchedulePlugin:
    @hookimpl
    def ct_plugin_update_schedules(self):
        return [PluginItem("counting", CountingSchedule, "two steps per batch (test)")]

    @hookimpl
    def ct_plugin_factual_selectors(self):
        return [PluginItem("last-rows", LastRows, "the last rows (test)")]


def test_the_update_schedule_and_the_factual_selector_are_used_per_batch_and_epoch():
    CountingSchedule.steps.clear()
    LastRows.seen.clear()
    with Registered(SchedulePlugin(), "schedules"):
        result = ct_plugin.train("moons", strategy="ct", update_schedule="counting", factual_selector="last-rows",
                                 **SMALL)
        joint = ct_plugin.train("moons", strategy="ct", factual_selector="last-rows", **SMALL)
    batches = math.ceil(240 / 50)  # 300 rows, 80% train
    assert len(CountingSchedule.steps) == 2 * batches * 3
    assert CountingSchedule.steps[0] == ["yloss"] and CountingSchedule.steps[1] == ["div", "reg", "adv"]
    assert LastRows.seen == [60] * 6  # one draw per epoch, of nce rows, in both runs
    assert result.log[-1]["skipped_batches"] == 0
    a, b = weights(result), weights(joint)
    assert not all(torch.equal(a[k], b[k]) for k in a)  # two steps per batch train another model


def test_uniform_selection_draws_without_replacement_until_it_must():
    rng = torch.Generator().manual_seed(0)
    pool = FactualPool(torch.nn.Identity(), torch.zeros(10, 2), torch.zeros(10), 10, rng, 0)
    assert sorted(UniformFactuals().select(pool).tolist()) == list(range(10))
    pool.count = 25
    drawn = UniformFactuals().select(pool)
    assert len(drawn) == 25 and drawn.max() < 10
    assert isinstance(JointUpdate(), UpdateSchedule)


def test_a_built_item_of_the_wrong_type_is_refused():
    class Wrong:
        @hookimpl
        def ct_plugin_update_schedules(self):
            return [PluginItem("wrong", lambda: object(), "not a schedule")]

    with Registered(Wrong(), "wrong"), pytest.raises(CTPluginError, match="did not build a UpdateSchedule"):
        ct_plugin.train("moons", update_schedule="wrong", **SMALL)
    with pytest.raises(ct_plugin.UnknownNameError, match="unknown update schedule 'nope'; available update schedules"):
        ct_plugin.train("moons", update_schedule="nope", **SMALL)


# ------------------------------------------------------------ strategy hooks
class HookedStrategy(TrainingStrategy):
    """Uses every hook: an auxiliary network trained beside the model, a nascent-example filter,
    an augmented epoch and a checkpointed state."""

    def setup(self, model, spec, config, device):
        self.calls = {"setup": 1, "after_search": 0, "after_update": 0, "epoch_data": 0}
        self.aux = torch.nn.Linear(spec.n_features, 1).to(device)
        self.aux_optimiser = torch.optim.SGD(self.aux.parameters(), lr=0.1)
        self.aux_steps = 0

    def after_search(self, batch, result, model):
        self.calls["after_search"] += 1
        with torch.no_grad():
            flipped = model(batch.x_adv).argmax(dim=1) != batch.labels
        batch.adversarial_mask = flipped
        return batch

    def epoch_data(self, epoch, X, y):
        self.calls["epoch_data"] += 1
        return torch.cat([X, X[:10]]), torch.cat([y, y[:10]])

    def after_update(self, step):
        self.calls["after_update"] += 1
        loss = self.aux(step.x).pow(2).mean()
        self.aux_optimiser.zero_grad()
        loss.backward()
        self.aux_optimiser.step()
        self.aux_steps += 1

    def state_dict(self):
        return {"aux": self.aux.state_dict(), "aux_optimiser": self.aux_optimiser.state_dict(),
                "aux_steps": torch.tensor(self.aux_steps)}

    def load_state_dict(self, state):
        self.aux.load_state_dict(state["aux"])
        self.aux_optimiser.load_state_dict(state["aux_optimiser"])
        self.aux_steps = int(state["aux_steps"])


class HookedPlugin:
    def __init__(self):
        self.built: list[HookedStrategy] = []

    @hookimpl
    def ct_plugin_strategies(self):
        def build(config=None):
            self.built.append(HookedStrategy("hooked", {"div", "reg", "adv"}))
            return self.built[-1]

        return [PluginItem("hooked", build, "every hook (test)")]


def test_strategy_hooks_are_called_and_their_state_survives_a_resume(tmp_path):
    plugin = HookedPlugin()
    with Registered(plugin, "hooked"):
        whole = ct_plugin.train("moons", strategy="hooked", **{**SMALL, "epochs": 4})
        strategy = plugin.built[-1]
        batches = math.ceil((240 + 10) / 50)
        assert strategy.calls == {"setup": 1, "after_search": 4, "after_update": 4 * batches, "epoch_data": 4}
        assert whole.log[-1]["train_accuracy"] <= 1.0
        # two epochs, then a resumed run for the other two: the auxiliary network continues where it was
        out = tmp_path / "run"
        ct_plugin.train("moons", strategy="hooked", out=out, **{**SMALL, "epochs": 2})
        ct_plugin.train(out=out, resume=True, quiet=True, epochs=4)
        resumed = plugin.built[-1]
    assert resumed.aux_steps == strategy.aux_steps == 4 * batches
    assert torch.equal(resumed.aux.weight, strategy.aux.weight)
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert "strategy" in state and int(state["strategy"]["aux_steps"]) == 4 * batches


def test_checkpoints_of_builtin_strategies_hold_no_strategy_state(tmp_path):
    ct_plugin.train("moons", strategy="ct", out=tmp_path / "run", **SMALL)
    assert "strategy" not in torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)


# ------------------------------------------------------------------ versions
class Versioned:
    def __init__(self, version: str):
        self.CT_PLUGIN_API = version


def test_plugin_api_versions_newer_refused_older_major_warned():
    check_api_version("fits", Versioned("2.0"))
    check_api_version("undeclared", object())
    with pytest.raises(CTPluginError, match=r"plugin 'future' needs plugin API 2\.9, this ct-plugin provides 2\.0"):
        check_api_version("future", Versioned("2.9"))
    with pytest.raises(CTPluginError, match="needs plugin API 3.0"):
        check_api_version("next", Versioned("3.0"))
    with pytest.warns(DeprecationWarning, match="written for plugin API 1.0"):
        check_api_version("old", Versioned("1.0"))
    with pytest.raises(CTPluginError, match="expected 'MAJOR.MINOR'"):
        check_api_version("bad", Versioned("two"))


def test_a_plugin_needing_a_newer_api_is_refused_when_registered():
    class Future:
        CT_PLUGIN_API = "9.0"

        @hookimpl
        def ct_plugin_generators(self):
            return []

    with pytest.raises(CTPluginError, match="needs plugin API 9.0"):
        ct_plugin.register_plugin(Future(), name="future")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ct_plugin.get_registry().collect_all()  # the refused plugin left nothing behind
