"""CARLA's recourse methods as ct-plugin counterfactual generators.

One class, :class:`CarlaGenerator`, drives any CARLA 0.0.5 method through the
:class:`~ct_plugin.generators.base.CounterfactualGenerator` contract:

* ``fit(spec)`` builds the CARLA data views and fits what depends on the data only (the
  autoencoders of REVISE, CCHVAE, CRUD and CLUE), once, into a private temporary cache.
* ``search(...)`` wraps the model as it is *now* (CARLA sees the live module, never a copy):
  rows whose target is class 1 are searched on the model, rows whose target is class 0 on the
  class-swapped view (CARLA only searches towards class 1). Methods whose objects hold the model
  (Wachter, Growing Spheres, DiCE, FACE) are rebuilt on every call; the autoencoder methods keep
  their fitted autoencoders and get the current model handed in on every call.
* CARLA's answers are projected onto our constraints by
  :func:`~ct_plugin.generators.base.finish_external` (immutable columns reset, monotone
  directions and bounds enforced, one-hot groups made valid); :attr:`CarlaGenerator.repairs`
  counts the rows that needed it. CARLA returns no search path, so nascent adversarial examples
  come from the documented fallback (:func:`~ct_plugin.generators.base.nascent_by_fgsm`).
* CARLA's prints, progress bars and log messages are silenced, torch runs on
  ``threads`` threads inside CARLA's calls (REVISE is 30x slower with many threads on 2 cores),
  and CARLA's global numpy/torch random state is seeded from ``rng`` and restored afterwards.
"""

from __future__ import annotations

import contextlib
import copy
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from ct_plugin.adapters.carla.compat import import_carla, quiet
from ct_plugin.adapters.carla.wrappers import CarlaModel, SpecData, carla_home, check_spec
from ct_plugin.constraints import SearchConstraints
from ct_plugin.data.spec import DatasetSpec
from ct_plugin.errors import CTPluginError
from ct_plugin.generators.base import CounterfactualGenerator, SearchResult, finish_external
from ct_plugin.torch_utils import frozen

carla = import_carla()


@dataclass(frozen=True)
class MethodInfo:
    """How one CARLA method is built."""

    cls: str
    description: str
    #: built once in fit (data-only autoencoders) and handed the current model on every search
    keeps_state: bool = False
    #: the autoencoder depends on the labels, so each search direction needs its own
    label_dependent: bool = False
    defaults: dict[str, Any] = field(default_factory=dict)


METHODS: dict[str, MethodInfo] = {
    "wachter": MethodInfo("Wachter", "Wachter et al. (2017) gradient search (CARLA)"),
    "growing-spheres": MethodInfo("GrowingSpheres", "Growing Spheres random search (CARLA)"),
    "dice": MethodInfo("Dice", "DiCE random method through CARLA's wrapper", defaults={"num": 1}),
    "revise": MethodInfo(
        "Revise",
        "REVISE latent-space search with a VAE (CARLA)",
        keeps_state=True,
        defaults={"vae_params": {"layers": [16, 8], "epochs": 5}, "max_iter": 300},
    ),
    "cchvae": MethodInfo(
        "CCHVAE",
        "C-CHVAE latent-sphere search with a VAE (CARLA)",
        keeps_state=True,
        defaults={"vae_params": {"layers": [16, 8], "epochs": 5}},
    ),
    "face": MethodInfo("Face", "FACE density-path search (CARLA)", defaults={"mode": "knn", "fraction": 0.1}),
    "clue": MethodInfo(
        "Clue", "CLUE uncertainty-guided latent search (CARLA)", keeps_state=True, defaults={"epochs": 5}
    ),
    "crud": MethodInfo(
        "CRUD",
        "CRUD class-conditional CSVAE search (CARLA)",
        keeps_state=True,
        label_dependent=True,
        defaults={"vae_params": {"layers": [16, 8], "epochs": 5}, "max_iter": 300},
    ),
    "actionable-recourse": MethodInfo(
        "ActionableRecourse",
        "ActionableRecourse integer programme on a LIME linearisation (CARLA; needs cplex)",
    ),
}


def _merge(defaults: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(defaults)
    for key, value in given.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    if not n:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def _seeded(rng: torch.Generator | None, seed: int) -> Iterator[None]:
    """Seed numpy's and torch's global state for CARLA's unseeded draws; restore both afterwards."""
    if rng is not None:
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=rng).item())
    np_state = np.random.get_state()
    torch_state = torch.get_rng_state()
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    try:
        yield
    finally:
        np.random.set_state(np_state)
        torch.set_rng_state(torch_state)


class _Unfitted(torch.nn.Module):
    """Stands in for the model while data-only parts are fitted; CARLA must not call it then."""

    def __init__(self, n_features: int):
        super().__init__()
        self.n_features = n_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(len(x), 2, device=x.device)


class CarlaGenerator(CounterfactualGenerator):
    """A CARLA recourse method as an in-training / post-hoc counterfactual source.

    Args:
        method: key of :data:`METHODS` (``"wachter"``, ``"growing-spheres"``, ``"dice"``, ...).
        hyperparams: CARLA hyperparameters of that method, merged over the adapter's defaults
            (``data_name`` and the autoencoders' input width are filled in).
        threads: torch threads inside CARLA's calls (``None`` leaves the setting alone).
        seed: seed of CARLA's global random draws when ``search`` gets no ``rng``.
        quiet: silence CARLA's prints, progress bars and warnings.
    """

    provides_path = False

    def __init__(
        self,
        method: str,
        hyperparams: dict[str, Any] | None = None,
        *,
        threads: int | None = 1,
        seed: int = 0,
        quiet: bool = True,
    ):
        if method not in METHODS:
            raise CTPluginError(f"unknown CARLA method {method!r}; known: {', '.join(METHODS)}")
        if hyperparams is not None and not isinstance(hyperparams, dict):
            raise CTPluginError(f"hyperparams must be a dict, got {type(hyperparams).__name__}")
        self.method = method
        self.name = f"carla-{method}"
        self.hyperparams = dict(hyperparams or {})
        self.threads = threads
        self.seed = seed
        self.quiet = quiet
        self.repairs = 0
        self.searched = 0
        self.spec: DatasetSpec | None = None
        self._views: dict[int, SpecData] = {}
        self._methods: dict[int, Any] = {}
        self._home: str | None = None

    # ------------------------------------------------------------------ set-up
    def _params(self, view: SpecData) -> dict[str, Any]:
        info = METHODS[self.method]
        params = _merge(info.defaults, self.hyperparams)
        if self.method in ("revise", "cchvae", "crud", "clue"):
            params.setdefault("data_name", f"ct_plugin_{view.name}")
        if self.method == "face" and "fraction" not in self.hyperparams:
            # FACE builds its graph on a sample of the data with 50 neighbours: keep >= 300 rows
            # (CARLA requires 0 < fraction < 1 and samples rint(fraction * n) of the other n - 1 rows)
            n = max(len(view.spec.X_train), 3)
            params["fraction"] = float(min((n - 2) / n, max(0.1, 300 / n)))
        if "vae_params" in params:
            layers = list(params["vae_params"].get("layers", [16, 8]))
            if not layers or layers[0] != len(view.columns):
                layers = [len(view.columns), *layers]
            params["vae_params"]["layers"] = layers
        return params

    def _quiet(self) -> contextlib.AbstractContextManager[None]:
        return quiet() if self.quiet else contextlib.nullcontext()

    def _build(self, mlmodel: CarlaModel) -> Any:
        info = METHODS[self.method]
        view = mlmodel.data
        params = self._params(view)
        cls = getattr(carla.recourse_methods, info.cls)
        if self.method == "revise":
            return cls(mlmodel, view, params)
        if self.method == "clue":
            return _FlatClue(view, mlmodel, params)
        if self.method == "growing-spheres":
            return cls(mlmodel, params)
        return cls(mlmodel, params)

    def _view(self, desired: int) -> SpecData:
        if desired not in self._views:
            assert self.spec is not None
            self._views[desired] = SpecData(self.spec, swapped=desired == 0)
        return self._views[desired]

    def _stateful(self, desired: int, mlmodel: CarlaModel) -> Any:
        """The fitted method object of a search direction, handed the current model."""
        info = METHODS[self.method]
        if desired not in self._methods:
            other = self._methods.get(1 - desired)
            if other is not None and not info.label_dependent:
                method = copy.copy(other)  # shares the data-only autoencoder
            else:
                with (
                    carla_home(self._home_dir()),
                    self._quiet(),
                    torch_threads(self.threads),
                    _seeded(None, self.seed),
                ):
                    method = self._build(mlmodel)
            self._methods[desired] = method
        method = self._methods[desired]
        method._mlmodel = mlmodel
        if hasattr(method, "_model"):
            method._model = mlmodel
        return method

    def _home_dir(self) -> str:
        if self._home is None:
            self._home = tempfile.mkdtemp(prefix=f"ct-plugin-{self.name}-")
        return self._home

    def fit(self, spec: DatasetSpec, device: torch.device | str = "cpu") -> None:
        """Build the CARLA views of ``spec`` and fit the data-only autoencoders (class-1 direction)."""
        check_spec(spec)
        # FACE without immutable features crashed inside CARLA; compat fix `face_without_immutables` mends it
        self.spec = spec
        self._views.clear()
        self._methods.clear()
        if METHODS[self.method].keeps_state:
            view = self._view(1)
            self._stateful(1, CarlaModel(_Unfitted(spec.n_features), view))

    def __del__(self) -> None:
        if getattr(self, "_home", None) is not None:
            shutil.rmtree(self._home, ignore_errors=True)

    # ------------------------------------------------------------------ search
    def recourse_method(self, model: torch.nn.Module, desired: int = 1) -> tuple[CarlaModel, Any]:
        """The CARLA ``MLModel`` of ``model`` and the CARLA ``RecourseMethod`` on it, for one direction.

        ``desired=0`` gives the class-swapped view. Fitted autoencoders are reused; everything
        that depends on the model is built on the model as it is now.
        """
        if self.spec is None:
            raise CTPluginError(f"{self.name}: call fit(spec) before using it")
        if desired not in (0, 1):
            raise CTPluginError(f"{self.name}: CARLA is binary-only; desired class must be 0 or 1, got {desired}")
        view = self._view(desired)
        mlmodel = CarlaModel(model, view)
        if METHODS[self.method].keeps_state:
            return mlmodel, self._stateful(desired, mlmodel)
        with carla_home(self._home_dir()), self._quiet():
            return mlmodel, self._build(mlmodel)

    def counterfactuals(self, model: torch.nn.Module, factuals: torch.Tensor, desired: int) -> np.ndarray:
        """CARLA's raw answers (our encoding; NaN rows where CARLA found none) for one direction."""
        mlmodel, method = self.recourse_method(model, desired)
        view = mlmodel.data
        frame = view.frame(factuals)
        # the label column some methods read (CRUD): the class the model gives now, in this view
        frame[view.target] = mlmodel.predict_proba(frame[view.columns]).argmax(axis=1)
        answer = RowwiseFallback(method, view.columns).get_counterfactuals(frame)
        out = np.full((len(frame), view.spec.n_features), np.nan)
        valid = ~answer.isna().any(axis=1).to_numpy()
        if valid.any():
            out[valid] = view.from_carla(answer.loc[valid, view.columns].to_numpy(dtype=np.float64))
        return out

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
        """CARLA's counterfactuals of ``factuals`` towards ``targets`` (0/1), projected on ``constraints``."""
        if self.spec is None:
            raise CTPluginError(f"{self.name}: call fit(spec) before search")
        if factuals.ndim != 2 or factuals.shape[1] != self.spec.n_features:
            raise CTPluginError(
                f"{self.name}: factuals must have shape (n, {self.spec.n_features}); got {tuple(factuals.shape)}"
            )
        bad = targets[(targets != 0) & (targets != 1)]
        if len(bad):
            raise CTPluginError(f"{self.name}: CARLA is binary-only; got target class {int(bad[0])}")
        candidates = factuals.detach().clone()
        found = torch.zeros(len(factuals), dtype=torch.bool, device=factuals.device)
        with frozen(model), self._quiet(), torch_threads(self.threads), _seeded(rng, self.seed):
            for desired in (1, 0):
                rows = torch.nonzero(targets == desired).flatten()
                if len(rows) == 0:
                    continue
                answer = self.counterfactuals(model, factuals[rows].detach().cpu(), desired)
                ok = torch.as_tensor(~np.isnan(answer).any(axis=1), device=factuals.device)
                values = torch.as_tensor(np.nan_to_num(answer), dtype=factuals.dtype, device=factuals.device)
                candidates[rows[ok]] = values[ok]
                found[rows[ok]] = True
        result = finish_external(
            model, factuals, targets, candidates, found, constraints, tau=tau, epsilon=epsilon, steps=0
        )
        if result.repaired is not None:
            self.repairs += int(result.repaired.sum())
        self.searched += len(factuals)
        return result


def _no_counterfactual(exc: Exception) -> bool:
    """Whether a host library's exception only says it found no counterfactual (DiCE through CARLA)."""
    return "No counterfactuals found" in str(exc)


class RowwiseFallback(carla.recourse_methods.RecourseMethod):
    """A CARLA method that answers one row per factual, even when it fails on some of them.

    The whole batch is tried first. When the method raises, or returns a different number of
    rows (CARLA's Dice can), it is run factual by factual and a factual it fails on becomes a
    row of NaN, CARLA's own way of saying "no counterfactual". If it fails on every factual,
    the first error is raised, unless each failure only says that no counterfactual was found.
    ``failures`` counts the factuals that raised.
    """

    def __init__(self, method: Any, columns: list[str]):
        super().__init__(method._mlmodel)
        self.method = method
        self.columns = list(columns)
        self.failures = 0

    def get_counterfactuals(self, factuals: pd.DataFrame) -> pd.DataFrame:
        try:
            answer = self.method.get_counterfactuals(factuals)
            if len(answer) == len(factuals):
                return answer.reset_index(drop=True)
        except Exception as exc:
            if len(factuals) == 1 and _no_counterfactual(exc):
                return pd.DataFrame(np.nan, index=[0], columns=self.columns)
            if len(factuals) == 1:
                raise
        rows, errors = [], []
        for i in range(len(factuals)):
            missing = pd.DataFrame(np.nan, index=[0], columns=self.columns)
            try:
                one = self.method.get_counterfactuals(factuals.iloc[[i]].reset_index(drop=True))
            except Exception as exc:  # a host library can fail in any way on one factual
                errors.append(exc)
                one = missing
            rows.append(one.iloc[[0]] if len(one) else missing)
        if len(errors) == len(factuals) and not all(_no_counterfactual(e) for e in errors):
            raise errors[0]
        self.failures += len(errors)
        return pd.concat(rows, ignore_index=True)


class _FlatClue(carla.recourse_methods.Clue):
    """CARLA's CLUE with one VAE input per encoded column.

    CARLA sizes CLUE's VAE input as one column per continuous feature and one per categorical
    feature, which is only right when every categorical is binary; here every encoded column
    counts, so datasets with multi-level categoricals work too (for binary ones it is the same).
    """

    def _load_vae(self) -> Any:
        self._input_dimension = [1] * len(self._mlmodel.feature_input_order)
        return super()._load_vae()
