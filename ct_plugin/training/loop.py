"""The training loop: the :class:`Trainer` of one run, epoch by epoch.

Per epoch, the strategy decides which loss terms are on (:mod:`ct_plugin.training.strategies`).
When terms that need counterfactuals are on, the factual selector draws ``nce`` training rows, their
targets are drawn uniformly from the classes other than the model's prediction, and one observed
sample x+ of each target class is drawn; the generator searches their counterfactuals (one batched
search per epoch, or per batch with ``search_every="batch"``), and the results are spread over the
epoch's batches. Each batch's terms (:mod:`ct_plugin.training.objective`) update the model through
the update schedule (:mod:`ct_plugin.training.schedules`); a non-finite step is skipped with a
warning. The epoch's log record, the run files and checkpoints it writes and restores, and its
warnings about slow or idle counterfactual searches live here too.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import torch

from ct_plugin.config import TrainConfig
from ct_plugin.constraints import SearchConstraints
from ct_plugin.data.spec import DatasetSpec
from ct_plugin.errors import CTPluginError
from ct_plugin.generators.base import CounterfactualGenerator, SearchResult
from ct_plugin.plugins.events import BatchEvent, EpochEvent, SearchEvent, TrainEndEvent, TrainStartEvent
from ct_plugin.plugins.registry import LossTerm, call_lifecycle, get_registry
from ct_plugin.progress import progress_bar
from ct_plugin.runs.checkpoint import load_checkpoint, save_checkpoint
from ct_plugin.runs.files import read_log, write_log, write_manifest, write_run_files, write_weights
from ct_plugin.runs.record import resolved_config
from ct_plugin.sampling import ClassSampler, sample_targets
from ct_plugin.torch_utils import check_logits, frozen, predict_classes, resolve_device
from ct_plugin.training import objective
from ct_plugin.training.factuals import FactualPool, FactualSelector
from ct_plugin.training.health import PATH_FREE_TERMS, EpochHealth, check_epoch, maturity_problems
from ct_plugin.training.objective import BatchContext, CounterfactualBatch, batch_losses, counterfactual_batch
from ct_plugin.training.schedules import UpdateSchedule
from ct_plugin.training.setup import build_generator, resolve_terms
from ct_plugin.training.strategies import TrainingStrategy

STRATEGY_STATE = "strategy"
"""Key of the strategy's own state (:meth:`TrainingStrategy.state_dict`) in a checkpoint, when it has any."""


class Trainer:
    """Runs one training job; use :func:`~ct_plugin.training.train.train` unless you need the pieces."""

    def __init__(
        self,
        spec: DatasetSpec,
        model: torch.nn.Module,
        model_description: dict[str, Any],
        config: TrainConfig,
        out: Path | None = None,
        quiet: bool = False,
    ):
        self.spec, self.config, self.out, self.quiet = spec, config, out, quiet
        self.device = resolve_device(config.device)
        self.model = model.to(self.device)
        self.model_description = model_description
        check_logits(self.model, spec.n_features, spec.n_classes, sizes=(2, 3, min(config.batch_size, 64)))
        if config.batch_size > len(spec.y_train):
            warnings.warn(
                f"batch_size={config.batch_size} exceeds the {len(spec.y_train)} training rows: "
                "every epoch is a single full-batch update",
                UserWarning,
                stacklevel=3,
            )
        registry = get_registry()
        strategy = registry.build("strategy", config.strategy, config)
        if not isinstance(strategy, TrainingStrategy):
            raise CTPluginError(f"strategy {config.strategy!r} did not build a TrainingStrategy")
        self.strategy = strategy
        self.terms = resolve_terms(strategy, config)
        self.weights = {term.name: config.term_weight(term.name, term.default_weight) for term in self.terms}
        self.weighted = [name for name in config.term_weights if config.weight_is_set(name)]
        self.schedule = _build(registry, "update_schedule", config.update_schedule or strategy.update_schedule,
                               UpdateSchedule)
        self.selector = _build(registry, "factual_selector", config.factual_selector or strategy.factual_selector,
                               FactualSelector)
        self.search_every = strategy.search_every or config.search_every
        self.generator: CounterfactualGenerator | None = None
        if config.nce > 0 and any(term.uses_counterfactuals for term in self.terms):
            self.generator = build_generator(config.generator, config.generator_options)
        self.generator = strategy.in_training_generator(self.generator)
        if self.generator is not None:
            self.generator.fit(spec, self.device)
        self.X = torch.as_tensor(spec.X_train, dtype=torch.float32, device=self.device)
        self.y = torch.as_tensor(spec.y_train, dtype=torch.long, device=self.device)
        self.X_test = torch.as_tensor(spec.X_test, dtype=torch.float32, device=self.device)
        self.y_test = torch.as_tensor(spec.y_test, dtype=torch.long, device=self.device)
        self.sampler = ClassSampler(self.X, self.y, spec.n_classes)
        self.constraints = SearchConstraints.from_spec(spec, self.device)
        self.optimiser = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.rng = torch.Generator().manual_seed(config.seed)
        self.log: list[dict[str, Any]] = []
        self.start_epoch = 0
        self.health = EpochHealth()
        strategy.setup(self.model, spec, config, self.device)

    def weight_of(self, name: str) -> float:
        """The weight of loss term ``name`` in this run."""
        return self.weights[name]

    def active_terms(self, epoch: int) -> list[LossTerm]:
        """The loss terms on in ``epoch``, in summation order."""
        names = self.strategy.active_terms(epoch, self.config.epochs, self.weighted)
        return [term for term in self.terms if term.name in names]

    # ------------------------------------------------------------ persistence
    def write_run_files(self) -> None:
        """Config, dataset spec and model description (written before the first epoch)."""
        if self.out is None:
            return
        write_run_files(self.out, resolved_config(self.config, self.spec, self.generator), self.model_description,
                        self.spec)

    def checkpoint(self, epoch: int) -> None:
        """Atomically save everything needed to continue after ``epoch`` (1-based count of done epochs)."""
        if self.out is None:
            return
        # the log first: a kill between the two leaves an extra record, which restore() drops
        write_log(self.out, self.log)
        state = {
            "epoch": epoch,
            "model": self.model.state_dict(),
            "optimiser": self.optimiser.state_dict(),
            "rng": self.rng.get_state(),
        }
        strategy_state = self.strategy.state_dict()
        if strategy_state:
            state[STRATEGY_STATE] = strategy_state
        save_checkpoint(self.out, state)

    def restore(self, previous: bool = False, restart: bool = False) -> None:
        """Continue from ``checkpoint.pt`` (or ``checkpoint.prev.pt``) of the output directory.

        Without a checkpoint: from the first epoch if the log holds at most one record (killed before the
        first checkpoint); more records mean lost checkpoints, refused unless ``restart``.
        """
        if self.out is None:
            return
        state = load_checkpoint(self.out, self.device, previous=previous)
        if state is None:
            if len(done := read_log(self.out)) > 1 and not restart:
                raise CTPluginError(
                    f"{self.out} finished {len(done)} epoch(s) but has no checkpoint left (checkpoint.pt and "
                    "checkpoint.prev.pt are both missing): nothing to continue from; train it again from its "
                    "first epoch with its stored settings: --restart (resume='restart')"
                )
            return
        try:
            self.model.load_state_dict(state["model"])
        except RuntimeError as exc:
            raise CTPluginError(f"the checkpoint in {self.out} does not fit this model: "
                                f"{str(exc).splitlines()[0]}") from exc
        self.optimiser.load_state_dict(state["optimiser"])
        for group in self.optimiser.param_groups:  # a resumed run may change lr (e.g. after a divergence)
            group["lr"] = self.config.lr
        self.rng.set_state(state["rng"].cpu())
        if STRATEGY_STATE in state:
            self.strategy.load_state_dict(state[STRATEGY_STATE])
        self.start_epoch = int(state["epoch"])
        self.log = read_log(self.out)[: self.start_epoch]

    # --------------------------------------------------------------- training
    def run(self) -> list[dict[str, Any]]:
        """Train from ``start_epoch`` to ``config.epochs``; returns the log."""
        config = self.config
        self._warn_slow_generator()
        bar = progress_bar(config.epochs, f"{config.strategy} on {self.spec.name}", initial=self.start_epoch,
                           quiet=self.quiet, unit="epoch")
        call_lifecycle("ct_plugin_train_start",
                       TrainStartEvent(config, self.spec, self.model, self.out, self.start_epoch))
        for epoch in range(self.start_epoch, config.epochs):
            record = self.train_epoch(epoch)
            last_good = self.out / "checkpoint.pt" if self.out is not None and epoch > 0 else None
            check_epoch(self.model, record, self.health, self.config, self.terms,
                        str(last_good) if last_good else None)
            self.log.append(record)
            self.write_safely(f"the checkpoint of epoch {epoch + 1}", partial(self.checkpoint, epoch + 1))
            call_lifecycle("ct_plugin_epoch_end", EpochEvent(epoch, record, self.model))
            shown = [*(term.name for term in self.terms), "mature", "nascent"]
            bar.set_postfix({k: f"{record[k]:.3g}" for k in shown if record.get(k) is not None}, refresh=False)
            bar.update(1)
        bar.close()
        if self.out is not None:
            self.write_safely("model.pt", lambda: write_weights(self.out, self.model.state_dict()))
            self.write_safely("manifest.json", lambda: write_manifest(self.out))
        self._warn_idle_counterfactuals()
        call_lifecycle("ct_plugin_train_end", TrainEndEvent(config, self.spec, self.model, self.log, self.out))
        return self.log

    def write_safely(self, what: str, write: Any) -> None:
        """Run ``write``; a full disk or a read-only folder becomes one clear error naming the intact checkpoint."""
        try:
            write()
        except OSError as exc:
            assert self.out is not None
            last = self.out / "checkpoint.pt"
            kept = (f"the last good checkpoint {last} is intact: free the space and continue with "
                    f"`ct-plugin train --resume --out {self.out}`" if last.is_file()
                    else "no epoch was saved yet")
            raise CTPluginError(f"writing {what} into {self.out} failed ({exc.strerror or exc}); nothing half-written "
                                f"was left behind; {kept}") from None

    def _warn_idle_counterfactuals(self) -> None:
        step = getattr(self.generator, "step_size", None)
        path_terms = bool(self.strategy.active_terms(self.config.epochs - 1, self.config.epochs, self.weighted)
                          - PATH_FREE_TERMS)  # a single-jump search matters only to terms that use its path
        for problem in maturity_problems(self.log, self.config.tau, self.config.max_steps, step, path_terms=path_terms):
            warnings.warn(f"{self.config.strategy} on {self.spec.name}: {problem}", RuntimeWarning, stacklevel=3)

    def _warn_slow_generator(self) -> None:
        estimate = getattr(self.generator, "estimated_seconds", None)
        if callable(estimate):
            n_epochs = self.config.epochs - self.start_epoch
            seconds = float(estimate(self.config.nce)) * n_epochs
            if seconds > 60:
                warnings.warn(f"generator {self.config.generator!r} needs about {seconds / 60:.1f} minutes of "
                              f"search for {self.config.nce} counterfactuals x {n_epochs} epochs", stacklevel=3)

    def search(self, epoch: int, index: torch.Tensor) -> tuple[CounterfactualBatch, SearchResult, float]:
        """Counterfactuals of the training rows ``index`` under the current model."""
        factuals, labels = self.X[index], self.y[index]
        start = time.perf_counter()
        with frozen(self.model), torch.no_grad():
            predicted = self.model(factuals).argmax(dim=1)
        targets = sample_targets(predicted, self.spec.n_classes, self.rng)
        x_plus = self.sampler.sample(targets, self.rng)
        assert self.generator is not None
        result = self.generator.search(
            self.model,
            factuals,
            targets,
            self.constraints,
            tau=self.config.tau,
            max_steps=self.config.max_steps,
            epsilon=self.config.epsilon,
            rng=self.rng,
        ).detach()
        seconds = time.perf_counter() - start
        call_lifecycle("ct_plugin_after_search", SearchEvent(epoch, factuals, targets, result, seconds))
        mutability = self.constraints.mutability
        x_cf, x_plus = counterfactual_batch(result.counterfactuals, result.converged, x_plus, mutability)
        batch = CounterfactualBatch(factuals, x_cf, x_plus, result.adversarial, targets, labels)
        return self.strategy.after_search(batch, result, self.model), result, seconds

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        """One pass over the training data; returns the epoch's log record."""
        config = self.config
        t_epoch = time.perf_counter()
        self.model.train()
        X, y = self.strategy.epoch_data(epoch, self.X, self.y)
        n = len(X)
        order = torch.randperm(n, generator=self.rng).to(self.device)
        batches = torch.split(order, config.batch_size)
        terms = self.active_terms(epoch)
        ct_on = self.generator is not None and any(term.uses_counterfactuals for term in terms)
        chunks: list[torch.Tensor] = []
        if ct_on:
            pool = FactualPool(self.model, self.X, self.y, config.nce, self.rng, epoch)
            factual_index = self.selector.select(pool)
            chunks = list(torch.tensor_split(factual_index.to(self.device), len(batches)))
        timing = {"search_seconds": 0.0, "loss_seconds": 0.0, "update_seconds": 0.0}
        sums: dict[str, float] = {}
        counts = {"mature": 0, "nascent": 0, "searched": 0, "steps": 0, "repaired": 0}
        self.health = health = EpochHealth()
        correct = 0
        epoch_cfs: list[CounterfactualBatch | None] = [None] * len(batches)
        if ct_on and self.search_every == "epoch":
            index_all = torch.cat(chunks)
            everything, result, seconds = self.search(epoch, index_all)
            timing["search_seconds"] += seconds
            self._count(counts, result, self.X[index_all])
            epoch_cfs = list(everything.split([len(c) for c in chunks]))

        for b, index in enumerate(batches):
            cf = epoch_cfs[b]
            if ct_on and self.search_every == "batch" and len(chunks[b]):
                cf, result, seconds = self.search(epoch, chunks[b])
                timing["search_seconds"] += seconds
                self._count(counts, result, self.X[chunks[b]])
            rows = objective.joined_batch(X, index, cf)  # the rows, then their counterfactuals
            update = BatchUpdate(self, epoch, b, rows[: len(index)], y[index], cf, terms, timing, sums,
                                 joined=rows if cf is not None and len(cf) else None)
            self.schedule.step(update)
            self.strategy.after_update(update)
            correct += update.correct
            call_lifecycle("ct_plugin_batch_end", BatchEvent(epoch, b, update.values, update.skipped, self.model))

        used = max(n - health.skipped * config.batch_size, 1)
        record: dict[str, Any] = {"epoch": epoch + 1, "ct_on": bool(ct_on)}
        for term in self.terms:
            if term.name in sums:
                record[term.name] = sums[term.name] / used
        record["train_accuracy"] = correct / n
        record["test_accuracy"] = self.test_accuracy()
        searched = max(counts["searched"], 1)
        record["mature"] = counts["mature"] / searched if ct_on else None
        record["nascent"] = counts["nascent"] / searched if ct_on else None
        record["mean_steps"] = counts["steps"] / searched if ct_on else None
        record["repaired"] = counts["repaired"]
        record["skipped_batches"] = health.skipped
        record.update({k: round(v, 6) for k, v in timing.items()})
        record["epoch_seconds"] = round(time.perf_counter() - t_epoch, 6)
        return record

    @staticmethod
    def _count(counts: dict[str, int], result: SearchResult, factuals: torch.Tensor) -> None:
        counts["searched"] += len(result)
        counts["mature"] += int(result.converged.sum())
        counts["nascent"] += int((result.adversarial != factuals).any(dim=1).sum())
        counts["steps"] += int(result.steps.sum())
        if result.repaired is not None:
            counts["repaired"] += int(result.repaired.sum())

    def test_accuracy(self) -> float:
        """Accuracy on the test split (in chunks: a CNN's unfolded inputs of 10,000 images take GBs)."""
        return float((predict_classes(self.model, self.X_test) == self.y_test).float().mean())


class BatchUpdate:
    """One batch's :class:`~ct_plugin.training.schedules.UpdateStep`: what the schedule descends on.

    Every :meth:`descend` is a fresh forward pass (one for the batch and its counterfactuals),
    the weighted sum of the given terms, and one optimiser step unless a value is not finite
    (then the step is skipped with a warning and counted). The values of the descended terms go to
    the epoch's sums; ``correct`` counts the batch rows the first forward pass classified right.
    """

    def __init__(
        self, trainer: Trainer, epoch: int, batch: int, x: torch.Tensor, y: torch.Tensor,
        counterfactuals: CounterfactualBatch | None, terms: Sequence[LossTerm], timing: dict[str, float],
        sums: dict[str, float], joined: torch.Tensor | None = None,
    ):
        self.trainer, self.epoch, self.batch = trainer, epoch, batch
        self.joined = joined
        self.model, self.optimiser, self.strategy = trainer.model, trainer.optimiser, trainer.strategy
        self.x, self.y, self.counterfactuals, self.terms = x, y, counterfactuals, tuple(terms)
        self.timing, self.sums = timing, sums
        self.values: dict[str, float] = {}
        self.skipped = False
        self.correct = 0
        self._counted = False

    def descend(self, terms: Sequence[LossTerm]) -> dict[str, float] | None:
        """One optimiser step on the weighted sum of ``terms``; their values, or None when the step was skipped."""
        trainer, health = self.trainer, self.trainer.health
        t0 = time.perf_counter()
        needs = any(term.uses_counterfactuals for term in terms)
        context = BatchContext(self.model, self.x, self.y, self.counterfactuals if needs else None,
                               trainer.constraints, trainer.config, self.epoch, trainer.spec.desired_index,
                               strategy=self.strategy, joined=self.joined if needs else None)
        losses = batch_losses(terms, context)
        total = sum(trainer.weight_of(name) * value for name, value in losses.items())
        t1 = time.perf_counter()
        self.timing["loss_seconds"] += t1 - t0
        # one read of all loss values per step (each .item() or bool() of a tensor is a sync)
        values = dict(zip(losses, torch.stack([v.detach() for v in losses.values()]).tolist()))
        bad = [name for name, value in values.items() if not math.isfinite(value)]
        if not bad and not math.isfinite(sum(trainer.weight_of(name) * value for name, value in values.items())):
            bad = ["weighted total"]
        health.batches += 1
        if bad:
            health.record_skip(bad)
            shown = ", ".join(f"{name}={values[name]}" for name in bad)
            warnings.warn(
                f"epoch {self.epoch + 1}, batch {self.batch + 1}: non-finite loss term(s) {shown}; update skipped",
                RuntimeWarning,
                stacklevel=2,
            )
        else:
            self.optimiser.zero_grad(set_to_none=True)
            total.backward()  # type: ignore[union-attr]
            self.optimiser.step()
            for name, value in values.items():
                self.sums[name] = self.sums.get(name, 0.0) + value * len(self.x)
        self.timing["update_seconds"] += time.perf_counter() - t1
        if not self._counted:  # training accuracy from the batch's first forward pass
            self.correct = int((context.logits_x.detach().argmax(dim=1) == self.y).sum())
            self._counted = True
        self.values.update(values)
        self.skipped = self.skipped or bool(bad)
        return None if bad else values


def _build(registry: Any, kind: str, name: str, expected: type) -> Any:
    """Build the registered ``kind`` called ``name`` and check it is an ``expected``."""
    built = registry.build(kind, name)
    if not isinstance(built, expected):
        raise CTPluginError(f"{kind.replace('_', ' ')} {name!r} did not build a {expected.__name__}, "
                            f"but a {type(built).__name__}")
    return built
