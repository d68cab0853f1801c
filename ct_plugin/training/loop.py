"""The training loop: the :class:`Trainer` of one run, epoch by epoch.

Per epoch, the strategy decides which terms are on. When counterfactual terms are on,
``nce`` factuals are drawn from the training set, their targets drawn uniformly from the
classes other than the model's prediction, and one observed sample x+ of each target class
drawn; the generator searches their counterfactuals (one batched search per epoch, or per
batch with ``search_every="batch"``), and the results are spread over the epoch's batches.
The losses of each batch, the skipped non-finite updates, the epoch's log record, the run
files and checkpoints it writes and restores, and its warnings about slow or idle
counterfactual searches live here too.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ct_plugin.atomic import atomic_write, atomic_write_json
from ct_plugin.config import TrainConfig
from ct_plugin.constraints import SearchConstraints
from ct_plugin.data.spec import DatasetSpec
from ct_plugin.errors import CTPluginError
from ct_plugin.generators.base import CounterfactualGenerator, SearchResult
from ct_plugin.plugins.events import BatchEvent, EpochEvent, SearchEvent, TrainEndEvent, TrainStartEvent
from ct_plugin.plugins.registry import call_lifecycle, get_registry
from ct_plugin.runs.checkpoint import load_checkpoint, save_checkpoint
from ct_plugin.runs.files import atomic_torch_save, read_log
from ct_plugin.runs.record import resolved_config
from ct_plugin.sampling import ClassSampler, sample_targets
from ct_plugin.torch_utils import check_logits, frozen, resolve_device
from ct_plugin.training import objective
from ct_plugin.training.health import EpochHealth, check_epoch, maturity_problems
from ct_plugin.training.setup import build_generator
from ct_plugin.training.strategies import TrainingStrategy


@dataclass
class _Counterfactuals:
    """The counterfactual batch of one optimiser step."""

    x_cf: torch.Tensor
    x_plus: torch.Tensor
    x_adv: torch.Tensor
    targets: torch.Tensor
    labels: torch.Tensor


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
        self.generator: CounterfactualGenerator | None = None
        if strategy.terms and config.nce > 0:
            self.generator = build_generator(config.generator, config.generator_options)
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

    # ------------------------------------------------------------ persistence
    def write_run_files(self) -> None:
        """Config, dataset spec and model description (written before the first epoch)."""
        if self.out is None:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.out / "config.json", resolved_config(self.config, self.spec, self.generator))
        atomic_write_json(self.out / "model.json", self.model_description)
        self.spec.save(self.out)

    def checkpoint(self, epoch: int) -> None:
        """Atomically save everything needed to continue after ``epoch`` (1-based count of done epochs)."""
        if self.out is None:
            return
        # the log first: a kill between the two leaves an extra record, which restore() drops
        atomic_write(self.out / "log.jsonl", "".join(json.dumps(r) + "\n" for r in self.log))
        save_checkpoint(
            self.out,
            {
                "epoch": epoch,
                "model": self.model.state_dict(),
                "optimiser": self.optimiser.state_dict(),
                "rng": self.rng.get_state(),
            },
        )

    def restore(self, previous: bool = False) -> None:
        """Continue from ``checkpoint.pt`` (or ``checkpoint.prev.pt``) of the output directory, if there is one."""
        if self.out is None:
            return
        state = load_checkpoint(self.out, self.device, previous=previous)
        if state is None:
            return
        try:
            self.model.load_state_dict(state["model"])
        except RuntimeError as exc:
            raise CTPluginError(
                f"the checkpoint in {self.out} does not fit this model: {str(exc).splitlines()[0]}"
            ) from exc
        self.optimiser.load_state_dict(state["optimiser"])
        for group in self.optimiser.param_groups:  # a resumed run may change lr (e.g. after a divergence)
            group["lr"] = self.config.lr
        self.rng.set_state(state["rng"].cpu())
        self.start_epoch = int(state["epoch"])
        self.log = read_log(self.out)[: self.start_epoch]

    # --------------------------------------------------------------- training
    def run(self) -> list[dict[str, Any]]:
        """Train from ``start_epoch`` to ``config.epochs``; returns the log."""
        config = self.config
        self._warn_slow_generator()
        bar = tqdm(
            range(self.start_epoch, config.epochs),
            total=config.epochs,
            initial=self.start_epoch,
            desc=f"{config.strategy} on {self.spec.name}",
            disable=self.quiet,
            leave=False,
            dynamic_ncols=True,
        )
        call_lifecycle(
            "ct_plugin_train_start", TrainStartEvent(config, self.spec, self.model, self.out, self.start_epoch)
        )
        for epoch in bar:
            record = self.train_epoch(epoch)
            last_good = self.out / "checkpoint.pt" if self.out is not None and epoch > 0 else None
            check_epoch(self.model, record, self.health, self.config, str(last_good) if last_good else None)
            self.log.append(record)
            self.checkpoint(epoch + 1)
            call_lifecycle("ct_plugin_epoch_end", EpochEvent(epoch, record, self.model))
            bar.set_postfix(
                {
                    k: f"{record[k]:.3g}"
                    for k in ("yloss", "div", "reg", "adv", "mature", "nascent")
                    if record.get(k) is not None
                }
            )
        bar.close()
        if self.out is not None:
            atomic_torch_save(self.out / "model.pt", self.model.state_dict())
        self._warn_idle_counterfactuals()
        call_lifecycle("ct_plugin_train_end", TrainEndEvent(config, self.spec, self.model, self.log, self.out))
        return self.log

    def _warn_idle_counterfactuals(self) -> None:
        step = getattr(self.generator, "step_size", None)
        for problem in maturity_problems(self.log, self.config.tau, self.config.max_steps, step):
            warnings.warn(f"{self.config.strategy} on {self.spec.name}: {problem}", RuntimeWarning, stacklevel=3)

    def _warn_slow_generator(self) -> None:
        estimate = getattr(self.generator, "estimated_seconds", None)
        if callable(estimate):
            n_epochs = self.config.epochs - self.start_epoch
            seconds = float(estimate(self.config.nce)) * n_epochs
            if seconds > 60:
                warnings.warn(
                    f"generator {self.config.generator!r} needs about {seconds / 60:.1f} minutes of "
                    f"search for {self.config.nce} counterfactuals x {n_epochs} epochs",
                    stacklevel=3,
                )

    def search(self, epoch: int, index: torch.Tensor) -> tuple[_Counterfactuals, SearchResult, float]:
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
        x_cf, x_plus = objective.counterfactual_batch(
            result.counterfactuals, result.converged, x_plus, self.constraints.mutability
        )
        return _Counterfactuals(x_cf, x_plus, result.adversarial, targets, labels), result, seconds

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        """One pass over the training data; returns the epoch's log record."""
        config = self.config
        t_epoch = time.perf_counter()
        self.model.train()
        n = len(self.X)
        order = torch.randperm(n, generator=self.rng).to(self.device)
        batches = torch.split(order, config.batch_size)
        terms = self.strategy.active_terms(epoch, config.epochs)
        ct_on = self.generator is not None and self.strategy.needs_counterfactuals(epoch, config.epochs)
        chunks: list[torch.Tensor] = []
        if ct_on:
            if config.nce <= n:
                factual_index = torch.randperm(n, generator=self.rng)[: config.nce]
            else:
                factual_index = torch.randint(0, n, (config.nce,), generator=self.rng)
            chunks = list(torch.tensor_split(factual_index.to(self.device), len(batches)))
        timing = {"search_seconds": 0.0, "loss_seconds": 0.0, "update_seconds": 0.0}
        sums: dict[str, float] = {}
        counts = {"mature": 0, "nascent": 0, "searched": 0, "steps": 0, "repaired": 0}
        self.health = health = EpochHealth(batches=len(batches))
        correct = 0
        epoch_cfs: list[_Counterfactuals | None] = [None] * len(batches)
        if ct_on and config.search_every == "epoch":
            index_all = torch.cat(chunks)
            everything, result, seconds = self.search(epoch, index_all)
            timing["search_seconds"] += seconds
            self._count(counts, result, self.X[index_all])
            epoch_cfs = self._split_counterfactuals(everything, [len(c) for c in chunks])

        for b, index in enumerate(batches):
            cf = epoch_cfs[b]
            if ct_on and config.search_every == "batch" and len(chunks[b]):
                cf, result, seconds = self.search(epoch, chunks[b])
                timing["search_seconds"] += seconds
                self._count(counts, result, self.X[chunks[b]])
            t0 = time.perf_counter()
            losses, logits_batch = self._losses(index, cf, terms)
            total = sum(self._weight(name) * value for name, value in losses.items())
            t1 = time.perf_counter()
            timing["loss_seconds"] += t1 - t0
            # one read of all loss values per batch (each .item() or bool() of a tensor is a sync)
            values = dict(zip(losses, torch.stack([v.detach() for v in losses.values()]).tolist()))
            bad = [name for name, value in values.items() if not math.isfinite(value)]
            if not bad and not math.isfinite(sum(self._weight(name) * value for name, value in values.items())):
                bad = ["weighted total"]
            if bad:
                health.record_skip(bad)
                shown = ", ".join(f"{name}={values[name]}" for name in bad)
                warnings.warn(
                    f"epoch {epoch + 1}, batch {b + 1}: non-finite loss term(s) {shown}; update skipped",
                    RuntimeWarning,
                    stacklevel=2,
                )
            else:
                self.optimiser.zero_grad(set_to_none=True)
                total.backward()
                self.optimiser.step()
                for name, value in values.items():
                    sums[name] = sums.get(name, 0.0) + value * len(index)
            timing["update_seconds"] += time.perf_counter() - t1
            correct += int((logits_batch.argmax(dim=1) == self.y[index]).sum())
            call_lifecycle(
                "ct_plugin_batch_end",
                BatchEvent(epoch, b, values, bool(bad), self.model),
            )

        used = max(n - health.skipped * config.batch_size, 1)
        record: dict[str, Any] = {"epoch": epoch + 1, "ct_on": bool(ct_on)}
        for name in ("yloss", "div", "reg", "adv"):
            if name in sums:
                record[name] = sums[name] / used
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

    def _weight(self, name: str) -> float:
        return float(getattr(self.config, f"lambda_{name}"))

    def _losses(
        self, index: torch.Tensor, cf: _Counterfactuals | None, terms: frozenset[str]
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        x, y = self.X[index], self.y[index]
        use_cf = cf is not None and len(cf.targets) > 0 and bool(terms - {"yloss"})
        if not use_cf:
            logits = self.model(x)
            return {"yloss": objective.yloss(logits, y)}, logits.detach()
        assert cf is not None
        m = len(cf.targets)
        # one forward pass for the batch and the three counterfactual sets
        logits = self.model(torch.cat([x, cf.x_plus, cf.x_cf, cf.x_adv]))
        logits_x, logits_plus, logits_cf, logits_adv = torch.split(logits, [len(x), m, m, m])
        losses = {"yloss": objective.yloss(logits_x, y)}
        if "div" in terms or "reg" in terms:
            # the energies of x+ and x' once, for both terms
            e_plus = objective.energy(logits_plus, cf.targets)
            e_cf = objective.energy(logits_cf, cf.targets)
            if "div" in terms:
                losses["div"] = (e_plus - e_cf).mean()
            if "reg" in terms:
                losses["reg"] = (e_plus**2 + e_cf**2).mean()
        if "adv" in terms:
            losses["adv"] = objective.adversarial_loss(logits_adv, cf.labels)
        return losses, logits_x.detach()

    @staticmethod
    def _split_counterfactuals(cf: _Counterfactuals, sizes: list[int]) -> list[_Counterfactuals | None]:
        parts = [torch.split(t, sizes) for t in (cf.x_cf, cf.x_plus, cf.x_adv, cf.targets, cf.labels)]
        return [_Counterfactuals(*(p[i] for p in parts)) for i in range(len(sizes))]

    @staticmethod
    def _count(counts: dict[str, int], result: SearchResult, factuals: torch.Tensor) -> None:
        counts["searched"] += len(result)
        counts["mature"] += int(result.converged.sum())
        counts["nascent"] += int((result.adversarial != factuals).any(dim=1).sum())
        counts["steps"] += int(result.steps.sum())
        if result.repaired is not None:
            counts["repaired"] += int(result.repaired.sum())

    def test_accuracy(self) -> float:
        """Accuracy on the test split."""
        with frozen(self.model), torch.no_grad():
            return float((self.model(self.X_test).argmax(dim=1) == self.y_test).float().mean())
