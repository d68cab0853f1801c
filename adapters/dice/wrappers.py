"""What DiCE is given: our model and data as ``dice_ml.Model`` and ``dice_ml.Data``.

* :class:`TargetProbability`, the module inside DiCE's ``dice_ml.Model(backend="PYT")``: two
  probabilities per row, ``[1 - q, q]`` with ``q = sigmoid(logit(p_target) - logit(tau))``, so
  that DiCE's 0.5-based tests mean "reaches tau" for any number of classes.
* :class:`SpecEncoder`, the ``func`` transformer of the sampling methods (DiCE's frames in
  original units -> our encoding); the gradient method gets the exact affine map from DiCE's
  one-hot/min-max space instead (:meth:`FitMixin._gradient_input_map`, checked at fit time).
* :class:`FitMixin`, the :meth:`~ct_plugin.adapters.dice.generator.DiceGenerator.fit` half of
  the generator: the seeded subsample decoded to original units, integral features, precisions
  per continuous feature, the ``dice_ml.Data`` and ``dice_ml.Model``, the checked options.

Part of the DiCE generator (:mod:`ct_plugin.adapters.dice.generator`, which re-exports these names;
the module docstring there describes the whole translation).
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

import numpy as np
import pandas as pd
import torch

from ct_plugin.adapters.dice.explainers import (
    DEFAULT_OPTIONS,
    RESERVED_OPTIONS,
    bounded_genetic_class,
    explainer_class,
    import_dice,
)
from ct_plugin.data.spec import DatasetSpec
from ct_plugin.errors import CTPluginError

OUTCOME_COLUMN = "_ct_outcome"


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


class SpecEncoder:
    """DiCE ``func`` transformer: frames in original units -> our encoded columns."""

    def __init__(self, spec: DatasetSpec):
        self.spec = spec

    def __call__(self, frame: pd.DataFrame, data_interface: Any = None) -> pd.DataFrame:
        return pd.DataFrame(self.spec.encode(frame))


class FitMixin:
    """:meth:`fit` and its helpers, mixed into :class:`~ct_plugin.adapters.dice.generator.DiceGenerator`.

    Uses the generator's settings (``method``, ``max_data_rows``, ``seed``, ``precision``,
    ``dice_options``) and sets what the search needs: ``_spec``, ``_cont_names``, ``_cont_idx``,
    ``_features``, ``_integral``, ``_precisions``, ``_data``, ``_data_min``, ``_data_max``,
    ``_wrapper``, ``_model``, ``_options`` and ``_explainer``.
    """

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
        frame[OUTCOME_COLUMN] = spec.y_train[rows].astype(np.int64)
        self._precisions = self._choose_precisions(spec)
        params: dict[str, Any] = {
            "dataframe": frame,
            "continuous_features": list(continuous),
            "outcome_name": OUTCOME_COLUMN,
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
            self._model = dice_ml.Model(model=self._wrapper, backend="PYT", func=SpecEncoder(spec))
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
        cls = bounded_genetic_class() if self.method == "genetic" else explainer_class(self.method)
        accepted = set(inspect.signature(cls._generate_counterfactuals).parameters) - {"self"} - RESERVED_OPTIONS
        unknown = sorted(set(options) - accepted)
        if unknown:
            raise CTPluginError(
                f"unknown option(s) {', '.join(unknown)} for DiCE method {self.method!r}; "
                f"valid: {', '.join(sorted(accepted))}"
            )
        return options
