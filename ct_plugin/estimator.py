"""A scikit-learn estimator around the trainer: ``CTClassifier(strategy="ct").fit(X, y)``.

``fit`` builds a :class:`~ct_plugin.data.spec.DatasetSpec` with
:func:`ct_plugin.data.spec.from_dataframe` (DataFrames keep their categorical columns, which
become one-hot groups; arrays are all-continuous columns ``x0 .. x{d-1}``) and trains with
:func:`ct_plugin.training.train.train`: the same code path as ``ct-plugin train``, no second
implementation. ``predict_proba`` encodes new rows with the fitted spec (standardiser, one-hot
levels) and returns the softmax of the trained torch model.

By default every row trains the model (``validation_fraction=0``); a share in (0, 1) holds out
a stratified split whose accuracy appears per epoch in ``log_`` as ``test_accuracy``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from ct_plugin.config import TrainConfig
from ct_plugin.data.builder import from_dataframe
from ct_plugin.errors import CTPluginError
from ct_plugin.torch_utils import frozen
from ct_plugin.training.train import train


class CTClassifier(ClassifierMixin, BaseEstimator):
    """Counterfactual training as a scikit-learn classifier.

    Args:
        strategy: ``ct`` (default), ``vanilla``, ``energy``, ``adversarial`` or a plugin's.
        generator: in-training counterfactual generator (``eccco``, ``generic``, ``revise``, ...).
        model: registered architecture (``mlp``, ``logreg``, ...).
        hidden: hidden layer sizes of the ``mlp``.
        epochs, batch_size, lr: optimisation (Adam).
        nce: counterfactuals searched per epoch.
        categorical: DataFrame columns to one-hot encode (default: the non-numeric ones).
        immutable, increase_only, decrease_only: feature names (DataFrames) or column indices
            (arrays) with restricted mutability.
        protected: features reported as protected by the evaluation.
        validation_fraction: share of rows held out for the per-epoch ``test_accuracy`` (0: none).
        random_state: integer seed of initialisation, sampling and the split.
        device: ``cpu`` (default), ``cuda`` or ``auto``.
        train_options: any other :class:`~ct_plugin.config.TrainConfig` settings, e.g.
            ``{"tau": 0.5, "lambda_div": 0.5, "generator_options": {"step_size": 0.1}}``.

    Attributes (after ``fit``):
        classes_, n_features_in_, feature_names_in_ (DataFrame input only): as in scikit-learn.
        model_: the trained ``torch.nn.Module`` (encoded features -> logits).
        spec_: the fitted :class:`~ct_plugin.data.spec.DatasetSpec` (encoding, mutability, bounds).
        config_: the resolved :class:`~ct_plugin.config.TrainConfig`.
        log_: the per-epoch training records.
    """

    def __init__(
        self,
        strategy: str = "ct",
        generator: str = "eccco",
        model: str = "mlp",
        hidden: Sequence[int] = (32,),
        epochs: int = 100,
        batch_size: int = 30,
        lr: float = 1e-3,
        nce: int = 1000,
        categorical: Sequence[str] | None = None,
        immutable: Sequence[str | int] = (),
        increase_only: Sequence[str | int] = (),
        decrease_only: Sequence[str | int] = (),
        protected: Sequence[str | int] = (),
        validation_fraction: float = 0.0,
        random_state: int = 0,
        device: str = "cpu",
        train_options: dict[str, Any] | None = None,
    ):
        self.strategy = strategy
        self.generator = generator
        self.model = model
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.nce = nce
        self.categorical = categorical
        self.immutable = immutable
        self.increase_only = increase_only
        self.decrease_only = decrease_only
        self.protected = protected
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.device = device
        self.train_options = train_options

    # ---------------------------------------------------------------- fitting
    def fit(self, X: Any, y: Any) -> CTClassifier:
        """Train on ``X`` (DataFrame or array-like, n rows) and labels ``y`` (n labels, >= 2 classes)."""
        frame = self._training_frame(X, y)
        n_classes = len(self.classes_)
        if n_classes < 2:
            raise ValueError(
                f"CTClassifier needs at least 2 classes; y has {n_classes} class ({self.classes_.tolist()})"
            )
        if not 0.0 <= float(self.validation_fraction) < 1.0:
            raise ValueError(f"validation_fraction must lie in [0, 1), got {self.validation_fraction}")
        if not isinstance(self.random_state, int | np.integer) or isinstance(self.random_state, bool):
            raise ValueError(f"random_state must be an integer seed, got {self.random_state!r}")
        spec = from_dataframe(
            frame, target=_TARGET,
            categorical=self.categorical if self._from_frame else [],
            continuous=None if self._from_frame else list(self._names),
            immutable=self._feature_names(self.immutable, "immutable"),
            increase_only=self._feature_names(self.increase_only, "increase_only"),
            decrease_only=self._feature_names(self.decrease_only, "decrease_only"),
            protected=self._feature_names(self.protected, "protected"),
            class_names=[str(c) for c in self.classes_],
            test_size=float(self.validation_fraction), seed=int(self.random_state), name="CTClassifier",
        )
        config = self._config()
        result = train(spec, self.model, config=config, quiet=True)
        self.model_ = result.model.eval()
        self.spec_ = result.spec
        self.config_ = result.config
        self.log_ = result.log
        return self

    def _config(self) -> TrainConfig:
        options = dict(self.train_options or {})
        model_options = dict(options.pop("model_options", {}))
        if self.model == "mlp":
            hidden = np.atleast_1d(self.hidden).tolist()
            model_options.setdefault("hidden", hidden)
        # the values go to the settings table as given: a bad one is refused by its name (epochs='abc')
        values = {
            "strategy": self.strategy, "generator": self.generator, "model": self.model,
            "model_options": model_options, "epochs": self.epochs, "batch_size": self.batch_size,
            "lr": self.lr, "nce": self.nce, "seed": self.random_state, "device": self.device,
            **options,
        }
        try:
            return TrainConfig.from_dict(values).validate()
        except CTPluginError as exc:
            raise ValueError(f"CTClassifier: {exc}") from exc

    def _training_frame(self, X: Any, y: Any) -> pd.DataFrame:
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        if isinstance(X, pd.DataFrame):
            self._from_frame = True
            if len(X) == 0:
                raise ValueError("Found array with 0 sample(s) (shape=(0, ...)) while a minimum of 1 is required.")
            names = [str(c) for c in X.columns]
            if len(set(names)) != len(names):
                raise ValueError("the DataFrame has duplicate column names")
            self.feature_names_in_ = np.asarray(names, dtype=object)
            self.n_features_in_ = len(names)
            y = column_or_1d(np.asarray(y), warn=True)
            if len(y) != len(X):
                raise ValueError(f"X has {len(X)} rows but y has {len(y)} labels")
            frame = X.copy()
            frame.columns = names
        else:
            self._from_frame = False
            X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=False)
            names = [f"x{j}" for j in range(X.shape[1])]
            frame = pd.DataFrame(X, columns=names)
        check_classification_targets(y)
        self.classes_, encoded = np.unique(y, return_inverse=True)
        self._names = names
        frame[_TARGET] = encoded.astype(np.int64)
        return frame

    def _feature_names(self, features: Sequence[str | int], what: str) -> list[str]:
        out = []
        for feature in features or ():
            if isinstance(feature, int | np.integer) and not isinstance(feature, bool):
                if not 0 <= int(feature) < len(self._names):
                    raise ValueError(f"{what}: column index {feature} is out of range for {len(self._names)} columns")
                out.append(self._names[int(feature)])
            else:
                out.append(str(feature))
        return out

    # ------------------------------------------------------------- predicting
    def _encode(self, X: Any) -> torch.Tensor:
        check_is_fitted(self, "model_")
        if self._from_frame:
            if isinstance(X, pd.DataFrame):
                X = X.rename(columns=str)
            else:
                X = pd.DataFrame(np.asarray(X, dtype=object), columns=self.feature_names_in_)
            missing = [c for c in self.feature_names_in_ if c not in X.columns]
            if missing:
                raise ValueError(f"X lacks the columns the estimator was fitted with: {', '.join(missing)}")
            frame = X[list(self.feature_names_in_)]
        else:
            array = validate_data(self, X, dtype=np.float64, reset=False)
            frame = pd.DataFrame(array, columns=self._names)
        # a category level never seen in fit: an all-zero one-hot group (scikit-learn's handle_unknown="ignore")
        return torch.as_tensor(self.spec_.encode(frame, unknown="ignore"), dtype=torch.float32)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (n, n_classes), columns in the order of ``classes_``.

        A category level that ``fit`` never saw is encoded as an all-zero one-hot group, the
        convention of scikit-learn's ``OneHotEncoder(handle_unknown="ignore")``: the row is still
        predicted, from its other features.
        """
        encoded = self._encode(X)
        device = next(iter(self.model_.parameters()), torch.zeros(0)).device
        with frozen(self.model_), torch.no_grad():
            logits = self.model_(encoded.to(device))
        return torch.softmax(logits.double(), dim=1).cpu().numpy()

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Log class probabilities."""
        return np.log(self.predict_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each row (labels as given to ``fit``)."""
        probabilities = self.predict_proba(X)
        return self.classes_[np.argmax(probabilities, axis=1)]

    def encode(self, X: Any) -> np.ndarray:
        """Rows encoded as the torch model sees them (standardised, one-hot), for CT's own generators."""
        return self._encode(X).numpy()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.non_deterministic = False
        return tags


_TARGET = "__ct_target__"
