"""DiCE (dice-ml >= 0.12, PyTorch backend) as a counterfactual source for training and evaluation.

:class:`DiceGenerator` wraps one of DiCE's four methods (``random``, ``genetic``,
``kdtree``, ``gradient``) behind our :class:`~ct_plugin.generators.base.CounterfactualGenerator`
contract. ``dice_ml`` is imported only in :meth:`DiceGenerator.fit`, never at import time.

How our world is translated into DiCE's:

* **Data.** ``fit`` decodes (a seeded subsample of) the training rows to original units
  (:meth:`DatasetSpec.decode`) and builds a ``dice_ml.Data`` from them: continuous
  features as numbers (integral ones as integers), categoricals as their levels, and a
  ``continuous_features_precision`` for every continuous feature (0 for integral
  features, else enough decimals to resolve 1% of a standard deviation) so that DiCE
  never guesses precisions from modes. Post-hoc sparsity is off
  (``posthoc_sparsity_param=None``) unless asked for: it crawls through one prediction
  per precision step.
* **Model.** DiCE sees a ``dice_ml.Model(backend="PYT")`` around a softmax module
  (:class:`TargetProbability`) that returns two probabilities per row, the row's target
  class last (the layout dice-ml 0.12 expects): ``q = sigmoid(logit(p_target) -
  logit(tau))`` and ``1 - q``. Every query asks for ``desired_class=1`` (DiCE's own target
  argument, the same for every K) with ``stopping_threshold=0.5``; since ``q >= 0.5``
  exactly when ``p_target >= tau``, all of DiCE's tests (random's validity, genetic's
  hinge loss and argmax, kdtree's argmax selection of training rows, gradient's
  threshold) mean "reaches tau", for binary and multiclass models alike, and the
  gradient method (binary only in DiCE) works for any number of classes. For the sampling methods a ``func``
  transformer maps DiCE's frames (original units) to our encoding; for the gradient
  method the module applies the exact affine map from DiCE's one-hot/min-max space to
  our standardised space (checked at fit time), so nothing is silently clamped.
* **Constraints.** Immutable features are left out of ``features_to_vary``. Monotone
  features (increase-only / decrease-only), which DiCE does not know, get a per-query
  ``permitted_range`` from the factual's value to the domain bound; for the gradient
  method (whose ``permitted_range`` handling de-normalises with the wrong range in
  0.12) the same per-query box is set as its projection bounds. Every returned
  counterfactual is then projected onto our constraints by
  :func:`~ct_plugin.generators.base.finish_external` (rows that needed it are flagged
  ``repaired``), so immutables are unchanged, directions respected and bounds kept.
* **Results.** One counterfactual per factual (with ``total_cfs > 1`` the nearest in L1
  of DiCE's valid ones). A factual for which DiCE finds nothing (it raises "No
  counterfactuals found") keeps the factual and counts as not converged; convergence is
  re-checked against ``tau`` on our side.
* **Nascent adversarial examples.** DiCE has no search path, so nascent counterfactuals
  come from the documented fallback :func:`~ct_plugin.generators.base.nascent_by_fgsm`:
  three signed-gradient steps towards the target class inside the L-inf ball of radius
  epsilon, masked by the mutability constraints. The adversarial term of CT therefore
  stays on with a DiCE source; it is an FGSM attack, not DiCE's own path.

Known dice-ml 0.12 behaviours handled here: every call runs with the model in eval
mode (restored afterwards) and its parameters frozen, under ``torch.no_grad`` for the
sampling methods; the gradient method sees a wrapper that is not a parent module of
the user's model, so DiCE's ``model.zero_grad()`` cannot wipe gradients the trainer has
accumulated; DiCE's printing, progress bars and warnings are silenced; the global
``random``/``numpy`` generators DiCE draws from are seeded from our ``rng`` and restored
afterwards; the genetic method's unbounded random initialisation is bounded.

DiCE searches one query at a time in Python (kdtree and genetic even re-predict the
training frame and rebuild a KD-tree per query). Our side stays vectorised (decode,
ranges, encode, selection, projection are batch operations), but expect roughly tens
of milliseconds per counterfactual for random/genetic/kdtree and far more for gradient:
:meth:`DiceGenerator.estimated_seconds` says how long ``n`` counterfactuals will take,
and a warning says so before a long search.

The code is split by idea: :mod:`~ct_plugin.adapters.dice.explainers` (dice-ml's import, its
explainer classes, the options, the quiet and seeded context), :mod:`~ct_plugin.adapters.dice.wrappers`
(the model and data DiCE is given, and :meth:`DiceGenerator.fit`),
:mod:`~ct_plugin.adapters.dice.queries` (one factual as one DiCE query) and
:mod:`~ct_plugin.adapters.dice.results` (DiCE's answers back into our encoding). This module
holds :class:`DiceGenerator` with its search and re-exports the names of the others.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from collections.abc import Mapping
from typing import Any

import pandas as pd
import torch

from ct_plugin.adapters.dice.explainers import (
    INSTALL_COMMAND,
    NO_CF_MESSAGES,
    RESERVED_OPTIONS,
    NoCounterfactual,
    bounded_genetic_class,
    explainer_class,
    import_dice,
    quiet_and_seeded,
)
from ct_plugin.adapters.dice.queries import QueryMixin
from ct_plugin.adapters.dice.results import ResultMixin
from ct_plugin.adapters.dice.wrappers import FitMixin, TargetProbability
from ct_plugin.constraints import SearchConstraints
from ct_plugin.data.spec import DatasetSpec
from ct_plugin.errors import CTPluginError
from ct_plugin.generators.base import CounterfactualGenerator, SearchResult, finish_external
from ct_plugin.progress import progress_bar
from ct_plugin.torch_utils import frozen

METHODS = ("random", "genetic", "kdtree", "gradient")
"""DiCE's own method names, registered as ``dice-<method>``."""

SECONDS_PER_COUNTERFACTUAL = {"random": 0.05, "genetic": 0.05, "kdtree": 0.04, "gradient": 0.6}
"""Prior guesses (seconds per counterfactual, small MLP, CPU) until a search has been timed."""


class DiceGenerator(FitMixin, QueryMixin, ResultMixin, CounterfactualGenerator):
    """One of DiCE's methods as a counterfactual generator (see the module docstring).

    Args:
        method: ``"random"``, ``"genetic"``, ``"kdtree"`` or ``"gradient"``.
        total_cfs: counterfactuals DiCE looks for per factual; the nearest (L1) is kept.
        max_data_rows: training rows handed to DiCE (seeded subsample); kdtree and
            genetic re-predict them on every query, so this bounds their cost.
        precision: decimals per continuous feature, overriding our choice.
        posthoc_sparsity_param: DiCE's post-hoc sparsity search (off by default: slow).
        warn_after_seconds: warn before a search expected to take longer than this.
        seed: seed of the data subsample.
        **dice_options: further keyword arguments for DiCE's method (for example
            ``sample_size`` for random, ``maxiterations`` for genetic, ``min_iter`` /
            ``max_iter`` / ``learning_rate`` for gradient); checked against the method's
            signature at fit time.
    """

    provides_path = False

    def __init__(
        self,
        method: str = "random",
        *,
        total_cfs: int = 1,
        max_data_rows: int | None = 2000,
        precision: Mapping[str, int] | None = None,
        posthoc_sparsity_param: float | None = None,
        warn_after_seconds: float = 30.0,
        seed: int = 0,
        **dice_options: Any,
    ):
        self.method = method
        self.total_cfs = total_cfs
        self.max_data_rows = max_data_rows
        self.precision = dict(precision) if precision else None
        self.posthoc_sparsity_param = posthoc_sparsity_param
        self.warn_after_seconds = warn_after_seconds
        self.seed = seed
        self.dice_options = dict(dice_options)
        if method not in METHODS:
            raise CTPluginError(f"unknown DiCE method {method!r}; choose from {', '.join(METHODS)}")
        if int(total_cfs) != total_cfs or total_cfs < 1:
            raise CTPluginError(f"total_cfs must be a positive integer, got {total_cfs}")
        if max_data_rows is not None and (int(max_data_rows) != max_data_rows or max_data_rows < 10):
            raise CTPluginError(f"max_data_rows must be an integer >= 10 or None, got {max_data_rows}")
        reserved = sorted(set(dice_options) & RESERVED_OPTIONS)
        if reserved:
            raise CTPluginError(
                f"DiCE option(s) {', '.join(reserved)} are set by the adapter from the search "
                "(targets, constraints, tau) and cannot be passed"
            )
        self.name = f"dice-{method}"
        self._spec: DatasetSpec | None = None
        self._explainer: Any = None
        self._wrapper: TargetProbability | None = None
        self._timed_seconds = 0.0
        self._timed_count = 0
        self._warned = False

    # ------------------------------------------------------------------ cost
    def seconds_per_counterfactual(self) -> float:
        """Measured mean seconds per counterfactual so far, else the prior guess for the method."""
        if self._timed_count:
            return self._timed_seconds / self._timed_count
        return SECONDS_PER_COUNTERFACTUAL[self.method]

    def estimated_seconds(self, n: int) -> float:
        """Expected wall time of a search for ``n`` counterfactuals (DiCE runs them one by one)."""
        return float(n) * self.seconds_per_counterfactual()

    # ------------------------------------------------------------------- fit
    # fit() and its helpers come from FitMixin (wrappers.py); DiCE's explainer is built at the first search
    def _build_explainer(self) -> Any:
        if self.method == "genetic":
            return bounded_genetic_class()(self._data, self._model)
        return explainer_class(self.method)(self._data, self._model)

    # ---------------------------------------------------------------- search
    def search(
        self,
        model: torch.nn.Module,
        factuals: torch.Tensor,
        targets: torch.Tensor,
        constraints: SearchConstraints,
        *,
        tau: float,
        max_steps: int,
        epsilon: float,
        rng: torch.Generator | None = None,
    ) -> SearchResult:
        """Ask DiCE for one counterfactual per factual.

        ``max_steps`` is not used: DiCE's methods have their own budgets (options such as
        ``maxiterations`` or ``max_iter``).
        """
        spec = self._spec
        if spec is None or self._wrapper is None:
            raise CTPluginError(f"{self.name}: call fit(spec) before search()")
        if factuals.dim() != 2 or factuals.shape[1] != spec.n_features:
            raise CTPluginError(
                f"{self.name}: factuals must have shape (n, {spec.n_features}), got {tuple(factuals.shape)}"
            )
        if targets.shape != (len(factuals),):
            raise CTPluginError(
                f"{self.name}: targets must have shape ({len(factuals)},), got {tuple(targets.shape)}"
            )
        if len(targets) and (int(targets.min()) < 0 or int(targets.max()) >= spec.n_classes):
            raise CTPluginError(f"{self.name}: targets must lie in [0, {spec.n_classes - 1}]")
        if not 0.0 < tau <= 1.0:
            raise CTPluginError(f"tau (decision threshold) must lie in (0, 1], got {tau}")
        n = len(factuals)
        if n and not self._warned and self.estimated_seconds(n) > self.warn_after_seconds:
            self._warned = True
            warnings.warn(
                f"{self.name}: DiCE searches one query at a time; {n} counterfactuals will take about "
                f"{self.estimated_seconds(n):.0f} s per search "
                f"({1000 * self.seconds_per_counterfactual():.0f} ms each). Ask for fewer counterfactuals "
                "(in training: --nce; in `ct-plugin evaluate`: --rounds and --n-factuals) or use a batched "
                "generator (generic, eccco) for long runs.",
                RuntimeWarning,
                stacklevel=2,
            )
        start = time.perf_counter()
        factuals = factuals.detach()
        cpu_factuals = factuals.cpu().double().numpy()
        codes = constraints.mutability.cpu().numpy()
        queries = self._queries(cpu_factuals)
        varying = self._features_to_vary(codes)
        if not varying:
            raise CTPluginError(f"{self.name}: every feature is immutable; DiCE has nothing to vary")
        low, high = self._ranges(queries, constraints, codes)
        if rng is not None:
            seed = int(torch.randint(0, 2**31 - 1, (1,), generator=rng).item())
        else:
            seed = int(torch.randint(0, 2**31 - 1, (1,)).item())

        if self._explainer is None:
            self._wrapper.set_classifier(model)
            with frozen(model), torch.no_grad(), quiet_and_seeded(seed):
                self._explainer = self._build_explainer()
        target_list = targets.cpu().tolist()
        threshold = 0.5  # the wrapper shifts p_target so that 0.5 means tau
        self._wrapper.tau_logit = math.log(min(float(tau), 1 - 1e-6)) - math.log1p(-min(float(tau), 1 - 1e-6))
        frames: list[pd.DataFrame] = []
        owners: list[int] = []
        errors: list[str] = []
        self._wrapper.set_classifier(model)
        bar = progress_bar(n, self.name, expected_seconds=self.estimated_seconds(n), unit="query", file=sys.stderr)
        try:
            grad_mode = torch.enable_grad() if self.method == "gradient" else torch.no_grad()
            with frozen(model), grad_mode, quiet_and_seeded(seed):
                for i in range(n):
                    bar.update(1)
                    self._wrapper.target = int(target_list[i])
                    try:
                        found = self._ask(queries.iloc[[i]].reset_index(drop=True), varying, low[i], high[i],
                                          threshold)
                    except NoCounterfactual:
                        continue
                    except Exception as exc:  # DiCE fails in many ways per query; we count, report, go on
                        if not any(message in str(exc) for message in NO_CF_MESSAGES):
                            errors.append(f"{type(exc).__name__}: {exc}")
                        continue
                    if found is not None and len(found):
                        frames.append(found)
                        owners.extend([i] * len(found))
        finally:
            bar.close()
            self._wrapper.set_classifier(None)
        if errors:
            if len(errors) == n:
                raise CTPluginError(f"{self.name}: DiCE failed on every query; first error: {errors[0]}")
            warnings.warn(
                f"{self.name}: DiCE failed on {len(errors)} of {n} queries (counted as not converged); "
                f"first error: {errors[0]}",
                RuntimeWarning,
                stacklevel=2,
            )
        candidates, found_mask = self._collect(frames, owners, cpu_factuals)
        result = finish_external(
            model,
            factuals,
            targets,
            torch.as_tensor(candidates, dtype=factuals.dtype, device=factuals.device),
            torch.as_tensor(found_mask, device=factuals.device),
            constraints.to(factuals.device),
            tau=tau,
            epsilon=epsilon,
        )
        self._timed_seconds += time.perf_counter() - start
        self._timed_count += max(n, 1)
        return result


__all__ = ["INSTALL_COMMAND", "METHODS", "DiceGenerator", "TargetProbability", "import_dice"]
