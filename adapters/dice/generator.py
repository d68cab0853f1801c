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
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import io
import math
import random
import sys
import time
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch

from ct_plugin.constraints import DECREASE, INCREASE, NONE, SearchConstraints
from ct_plugin.data.spec import DatasetSpec
from ct_plugin.errors import CTPluginError, MissingDependencyError
from ct_plugin.generators.base import CounterfactualGenerator, SearchResult, finish_external
from ct_plugin.progress import progress_bar
from ct_plugin.torch_utils import frozen

INSTALL_COMMAND = "pip install 'ct-plugin[dice]'"
"""How a user gets dice-ml at a version this adapter supports."""

METHODS = ("random", "genetic", "kdtree", "gradient")
"""DiCE's own method names, registered as ``dice-<method>``."""

SECONDS_PER_COUNTERFACTUAL = {"random": 0.05, "genetic": 0.05, "kdtree": 0.04, "gradient": 0.6}
"""Prior guesses (seconds per counterfactual, small MLP, CPU) until a search has been timed."""

DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {
    "random": {"sample_size": 500},
    "genetic": {"maxiterations": 100},
    "kdtree": {},
    "gradient": {"min_iter": 20, "max_iter": 100, "learning_rate": 0.05, "proximity_weight": 0.5},
}
"""Our defaults for DiCE's per-method options (tuned for speed; any can be overridden)."""

_RESERVED = {
    "query_instances",
    "query_instance",
    "total_CFs",
    "desired_class",
    "desired_range",
    "permitted_range",
    "features_to_vary",
    "stopping_threshold",
    "posthoc_sparsity_param",
    "verbose",
}
_OUTCOME = "_ct_outcome"
_NO_CF_MESSAGES = (
    "No counterfactuals found",  # raised by generate_counterfactuals when a query gets none
    "empty range for randrange",  # genetic: the population collapsed to one member (nothing valid)
)


def import_dice() -> Any:
    """Import and return ``dice_ml``, or raise :class:`MissingDependencyError` with the install command."""
    try:
        import dice_ml
    except ImportError as exc:
        raise MissingDependencyError("dice-ml (needed by the dice-* generators)", INSTALL_COMMAND) from exc
    return dice_ml


class _NoCounterfactual(RuntimeError):
    """Raised inside a DiCE call when a query provably gets no counterfactual."""


class TargetProbability(torch.nn.Module):
    """What DiCE sees: ``[1 - q, q]`` per row with ``q = sigmoid(logit(p_target) - logit(tau))``.

    ``p_target`` is the classifier's softmax probability of the row's target class, so
    ``q >= 0.5`` exactly when ``p_target >= tau``: DiCE's 0.5-based tests (argmax in
    kdtree and genetic, hinge losses, validity) all mean "reaches tau". With ``tau_logit
    = 0`` it is the plain target-vs-rest softmax.

    The classifier is held as a plain attribute, not a sub-module, so that DiCE's
    ``model.zero_grad()`` (gradient method) cannot reach the user's parameters. With
    ``input_map`` set, inputs are first mapped from DiCE's one-hot/min-max space to our
    standardised encoding (``x[:, perm] * scale + shift``). 1-D inputs (the gradient
    method's single rows) give 1-D outputs.
    """

    def __init__(self, input_map: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None):
        super().__init__()
        object.__setattr__(self, "classifier", None)
        self.target = 1
        self.tau_logit = 0.0
        self.input_map = input_map

    def set_classifier(self, model: torch.nn.Module | None) -> None:
        """Point the wrapper at ``model`` (or at nothing)."""
        object.__setattr__(self, "classifier", model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        classifier = self.classifier
        if classifier is None:
            raise CTPluginError("internal: the DiCE model wrapper was called outside a search")
        single = x.dim() == 1
        if single:
            x = x[None]
        device = next(iter(classifier.parameters()), torch.empty(0)).device
        x = x.to(device=device, dtype=torch.float32)
        if self.input_map is not None:
            perm, scale, shift = (t.to(device) for t in self.input_map)
            x = x[:, perm] * scale + shift
        log_p = torch.log_softmax(classifier(x), dim=1)
        others = torch.cat([log_p[:, : self.target], log_p[:, self.target + 1 :]], dim=1)
        # logit of p_target (stable for any K), shifted so that 0.5 means p_target == tau
        z = log_p[:, self.target] - torch.logsumexp(others, dim=1) - self.tau_logit
        out = torch.stack([torch.sigmoid(-z), torch.sigmoid(z)], dim=1).cpu()
        return out[0] if single else out


class _SpecEncoder:
    """DiCE ``func`` transformer: frames in original units -> our encoded columns."""

    def __init__(self, spec: DatasetSpec):
        self.spec = spec

    def __call__(self, frame: pd.DataFrame, data_interface: Any = None) -> pd.DataFrame:
        return pd.DataFrame(self.spec.encode(frame))


@functools.lru_cache(maxsize=1)
def _bounded_genetic_class() -> type:
    """DiCE's genetic explainer with a bounded random initialisation (0.12 loops forever otherwise)."""
    from dice_ml.explainer_interfaces.dice_genetic import DiceGenetic

    class BoundedDiceGenetic(DiceGenetic):
        max_init_tries = 10

        def do_random_init(self, num_inits, features_to_vary, query_instance, desired_class, desired_range):
            precisions = self.data_interface.get_decimal_precisions()
            found = np.zeros((num_inits, self.data_interface.number_of_features))
            kx, tries = 0, 0
            budget = self.max_init_tries * max(num_inits, 1)
            while kx < num_inits:
                if tries >= budget:
                    raise _NoCounterfactual("genetic initialisation found no valid random member")
                tries += 1
                one = np.zeros(self.data_interface.number_of_features)
                for jx, feature in enumerate(self.data_interface.feature_names):
                    if feature not in features_to_vary:
                        one[jx] = query_instance[jx]
                    elif feature in self.data_interface.continuous_feature_names:
                        low, high = self.feature_range[feature][0], self.feature_range[feature][1]
                        one[jx] = np.round(np.random.uniform(low, high), precisions[jx])
                    else:
                        one[jx] = np.random.choice(self.feature_range[feature])
                if self.is_cf_valid(self.predict_fn_scores(one)):
                    found[kx] = one
                    kx += 1
            return found

    return BoundedDiceGenetic


@contextlib.contextmanager
def _quiet_and_seeded(seed: int) -> Iterator[None]:
    """Silence DiCE (prints, tqdm, warnings, logging) and seed the global RNGs it uses, restoring both."""
    py_state, np_state = random.getstate(), np.random.get_state()
    random.seed(seed)
    np.random.seed(seed % (2**32))
    sink = io.StringIO()
    try:
        with (
            contextlib.redirect_stdout(sink),
            contextlib.redirect_stderr(sink),
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


class DiceGenerator(CounterfactualGenerator):
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
        reserved = sorted(set(dice_options) & _RESERVED)
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
    def fit(self, spec: DatasetSpec, device: torch.device | str = "cpu") -> None:
        """Build DiCE's data interface from ``spec`` (dice-ml is imported here)."""
        dice_ml = import_dice()
        if spec.image_shape is not None:
            raise CTPluginError(f"DiCE generators need tabular data; dataset {spec.name!r} is an image set")
        self._spec = spec
        continuous = [c for c in spec.continuous if c in spec.feature_names]
        self._cont_names = continuous
        self._cont_idx = np.array([spec.feature_names.index(c) for c in continuous], dtype=np.int64)
        self._features = spec.raw_feature_names

        n_train = len(spec.X_train)
        rows = np.arange(n_train)
        if self.max_data_rows is not None and n_train > self.max_data_rows:
            chosen = np.random.default_rng(self.seed).choice(n_train, self.max_data_rows, replace=False)
            rows = np.sort(chosen)
        frame = spec.decode(spec.X_train[rows])
        self._integral = self._find_integral(spec)
        for name, integral in zip(continuous, self._integral, strict=True):
            if integral:
                frame[name] = np.round(frame[name].to_numpy()).astype(np.int64)
            else:
                frame[name] = frame[name].astype(np.float64)
        frame[_OUTCOME] = spec.y_train[rows].astype(np.int64)
        self._precisions = self._choose_precisions(spec)
        params: dict[str, Any] = {
            "dataframe": frame,
            "continuous_features": list(continuous),
            "outcome_name": _OUTCOME,
        }
        if continuous:
            precisions = dict(zip(continuous, self._precisions.tolist(), strict=True))
            params["continuous_features_precision"] = precisions
        self._data = dice_ml.Data(**params)
        data_df = self._data.data_df
        self._data_min = np.array([float(data_df[c].min()) for c in continuous])
        self._data_max = np.array([float(data_df[c].max()) for c in continuous])
        if self.method == "gradient":
            spans = zip(continuous, self._data_min, self._data_max, strict=True)
            flat = [c for c, lo, hi in spans if hi <= lo]
            if flat:
                raise CTPluginError(
                    f"dice-gradient cannot use constant feature(s) {', '.join(flat)} (DiCE's min-max "
                    "scaling divides by their range); drop them or use another DiCE method"
                )
            self._wrapper = TargetProbability(self._gradient_input_map(spec))
            self._model = dice_ml.Model(model=self._wrapper, backend="PYT", func="ohe-min-max")
        else:
            self._wrapper = TargetProbability()
            self._model = dice_ml.Model(model=self._wrapper, backend="PYT", func=_SpecEncoder(spec))
        self._options = self._check_options()
        self._explainer = None

    def _find_integral(self, spec: DatasetSpec) -> np.ndarray:
        """Which continuous features hold whole numbers in original units (e.g. age, counts)."""
        if not self._cont_names:
            return np.zeros(0, dtype=bool)
        x = spec.X_train[:, self._cont_idx].astype(np.float64)
        scale, mean = spec.scale[self._cont_idx], spec.mean[self._cont_idx]
        raw = x * scale + mean
        tolerance = np.minimum(0.25, 1e-6 * scale * (np.abs(x) + 1.0))
        close = np.abs(raw - np.round(raw)) <= tolerance
        return close.mean(axis=0) >= 0.99

    def _choose_precisions(self, spec: DatasetSpec) -> np.ndarray:
        scale = spec.scale[self._cont_idx]
        precisions = np.clip(np.ceil(-np.log10(np.maximum(scale, 1e-12) / 100.0)), 0, 8).astype(np.int64)
        precisions[self._integral] = 0
        for name, value in (self.precision or {}).items():
            if name not in self._cont_names:
                raise CTPluginError(
                    f"precision given for {name!r}, which is not a continuous feature; "
                    f"continuous features: {', '.join(self._cont_names)}"
                )
            if int(value) != value or value < 0:
                raise CTPluginError(f"precision of {name!r} must be a non-negative integer, got {value}")
            precisions[self._cont_names.index(name)] = int(value)
        return precisions

    def _gradient_input_map(self, spec: DatasetSpec) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Affine map from DiCE's one-hot/min-max columns to ours, verified on training rows."""
        probe = self._data.data_df.iloc[:5][self._features]
        dice_frame = self._data.get_ohe_min_max_normalized_data(probe)
        dice_columns = list(dice_frame.columns)
        ours = {name: j for j, name in enumerate(spec.feature_names)}
        lookup: dict[str, int] = {}
        for name in self._cont_names:
            lookup[name] = ours[name]
        for feature, levels in spec.categorical.items():
            for level in levels:
                lookup[f"{feature}_{level}"] = ours[f"{feature}={level}"]
        unknown = [c for c in dice_columns if c not in lookup]
        if unknown or len(dice_columns) != spec.n_features:
            raise CTPluginError(
                f"cannot match DiCE's encoded columns to the dataset's: unmatched {unknown or dice_columns}"
            )
        perm = np.zeros(spec.n_features, dtype=np.int64)
        scale = np.ones(spec.n_features)
        shift = np.zeros(spec.n_features)
        for k, column in enumerate(dice_columns):
            perm[lookup[column]] = k
        for i, name in enumerate(self._cont_names):
            j = ours[name]
            span = self._data_max[i] - self._data_min[i]
            scale[j] = span / spec.scale[j]
            shift[j] = (self._data_min[i] - spec.mean[j]) / spec.scale[j]
        mapped = dice_frame.to_numpy(dtype=np.float64)[:, perm] * scale + shift
        expected = spec.encode(probe)
        if not np.allclose(mapped, expected, atol=1e-4):
            raise CTPluginError("internal: DiCE's min-max encoding does not match the dataset encoding")
        as_tensor = functools.partial(torch.as_tensor, dtype=torch.float32)
        return torch.as_tensor(perm), as_tensor(scale), as_tensor(shift)

    def _check_options(self) -> dict[str, Any]:
        options = {**DEFAULT_OPTIONS[self.method], **self.dice_options}
        cls = _bounded_genetic_class() if self.method == "genetic" else _explainer_class(self.method)
        accepted = set(inspect.signature(cls._generate_counterfactuals).parameters) - {"self"} - _RESERVED
        unknown = sorted(set(options) - accepted)
        if unknown:
            raise CTPluginError(
                f"unknown option(s) {', '.join(unknown)} for DiCE method {self.method!r}; "
                f"valid: {', '.join(sorted(accepted))}"
            )
        return options

    def _build_explainer(self) -> Any:
        if self.method == "genetic":
            return _bounded_genetic_class()(self._data, self._model)
        return _explainer_class(self.method)(self._data, self._model)

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
            with frozen(model), torch.no_grad(), _quiet_and_seeded(seed):
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
            with frozen(model), grad_mode, _quiet_and_seeded(seed):
                for i in range(n):
                    bar.update(1)
                    self._wrapper.target = int(target_list[i])
                    try:
                        found = self._ask(queries.iloc[[i]].reset_index(drop=True), varying, low[i], high[i],
                                          threshold)
                    except _NoCounterfactual:
                        continue
                    except Exception as exc:  # DiCE fails in many ways per query; we count, report, go on
                        if not any(message in str(exc) for message in _NO_CF_MESSAGES):
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

    # -------------------------------------------------------------- helpers
    def _queries(self, factuals: np.ndarray) -> pd.DataFrame:
        """Factuals in original units as DiCE expects them (integral features rounded)."""
        frame = self._spec.decode(factuals)
        for name, integral in zip(self._cont_names, self._integral, strict=True):
            if integral:
                frame[name] = np.round(frame[name].to_numpy()).astype(np.int64)
        return frame[self._features]

    def _features_to_vary(self, codes: np.ndarray) -> list[str]:
        spec = self._spec
        return [name for name in self._features if not all(codes[j] == NONE for j in spec.columns_of(name))]

    def _ranges(
        self, queries: pd.DataFrame, constraints: SearchConstraints, codes: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-query [low, high] of every continuous feature in original units (monotone ones one-sided)."""
        spec, idx = self._spec, self._cont_idx
        if not len(idx):
            empty = np.zeros((len(queries), 0))
            return empty, empty
        q = queries[self._cont_names].to_numpy(dtype=np.float64)
        lower = constraints.lower.cpu().double().numpy()[idx] * spec.scale[idx] + spec.mean[idx]
        upper = constraints.upper.cpu().double().numpy()[idx] * spec.scale[idx] + spec.mean[idx]
        lower = np.where(np.isfinite(lower), lower, self._data_min)
        upper = np.where(np.isfinite(upper), upper, self._data_max)
        low = np.minimum(lower, q)
        high = np.maximum(upper, q)
        code = codes[idx]
        low = np.where((code == INCREASE) | (code == NONE), q, low)
        high = np.where((code == DECREASE) | (code == NONE), q, high)
        integral = self._integral
        low = np.where(integral, np.ceil(low - 1e-9), low)
        high = np.where(integral, np.floor(high + 1e-9), high)
        return low, high

    def _ask(
        self, query: pd.DataFrame, varying: list[str], low: np.ndarray, high: np.ndarray, threshold: float
    ) -> pd.DataFrame | None:
        """One DiCE call for one query; its counterfactuals in original units (or None)."""
        explainer = self._explainer
        options = dict(self._options)
        features_to_vary: Any = "all" if len(varying) == len(self._features) else varying
        if self.method == "gradient":
            self._set_gradient_box(explainer, low, high)
            permitted = None
        else:
            permitted = {
                name: [_plain(low[k], self._integral[k]), _plain(high[k], self._integral[k])]
                for k, name in enumerate(self._cont_names)
                if name in varying
            }
        result = explainer.generate_counterfactuals(
            query,
            total_CFs=self.total_cfs,
            desired_class=1,
            permitted_range=permitted or None,
            features_to_vary=features_to_vary,
            stopping_threshold=threshold,
            posthoc_sparsity_param=self.posthoc_sparsity_param,
            verbose=False,
            **options,
        )
        example = result.cf_examples_list[0]
        frame = example.final_cfs_df_sparse if self.posthoc_sparsity_param else example.final_cfs_df
        if frame is None or not len(frame):
            return None
        return frame[self._features].reset_index(drop=True)

    def _set_gradient_box(self, explainer: Any, low: np.ndarray, high: np.ndarray) -> None:
        """Per-query projection box of DiCE's gradient method, in its min-max space.

        Passing ``permitted_range`` would make dice-ml 0.12 de-normalise with that range
        instead of the data range when it rounds, so the box is set directly; continuous
        columns come first in DiCE's one-hot layout.
        """
        span = self._data_max - self._data_min
        minx = np.array(explainer.minx, dtype=np.float64, copy=True)
        maxx = np.array(explainer.maxx, dtype=np.float64, copy=True)
        cont = explainer.encoded_continuous_feature_indexes
        minx[0, cont] = (low - self._data_min) / span
        maxx[0, cont] = (high - self._data_min) / span
        explainer.minx, explainer.maxx = minx, maxx

    def _collect(
        self, frames: list[pd.DataFrame], owners: list[int], factuals: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Encode all returned counterfactuals at once; keep the nearest (L1) per factual."""
        n = len(factuals)
        candidates = factuals.copy()
        found = np.zeros(n, dtype=bool)
        if not frames:
            return candidates.astype(np.float32), found
        encoded = self._spec.encode(pd.concat(frames, ignore_index=True)).astype(np.float64)
        owner = np.asarray(owners, dtype=np.int64)
        base = factuals[owner]
        # values DiCE left alone come back rounded to its precision: snap them to the factual
        idx = self._cont_idx
        if len(idx):
            tolerance = 0.5 * 10.0 ** (-self._precisions.astype(np.float64)) / self._spec.scale[idx] + 1e-5
            block = encoded[:, idx]
            encoded[:, idx] = np.where(np.abs(block - base[:, idx]) <= tolerance, base[:, idx], block)
        distance = np.abs(encoded - base).sum(axis=1)
        order = np.lexsort((distance, owner))
        first = order[np.unique(owner[order], return_index=True)[1]]
        candidates[owner[first]] = encoded[first]
        found[owner[first]] = True
        return candidates.astype(np.float32), found


def _plain(value: float, integral: bool) -> float | int:
    return int(np.rint(value)) if integral else float(value)


def _explainer_class(method: str) -> type:
    if method == "random":
        from dice_ml.explainer_interfaces.dice_random import DiceRandom

        return DiceRandom
    if method == "kdtree":
        from dice_ml.explainer_interfaces.dice_KD import DiceKD

        return DiceKD
    if method == "gradient":
        from dice_ml.explainer_interfaces.dice_pytorch import DicePyTorch

        return DicePyTorch
    from dice_ml.explainer_interfaces.dice_genetic import DiceGenetic

    return DiceGenetic


__all__ = ["INSTALL_COMMAND", "METHODS", "DiceGenerator", "TargetProbability", "import_dice"]
