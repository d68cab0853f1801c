"""Training configuration: one dataclass, its settings table, loadable from TOML/YAML/JSON.

:class:`TrainConfig` holds every setting of a training run with its default;
:data:`TRAIN_SETTINGS` says, once per setting, what it accepts, what it means and how the
command line, ``tune``, grids and resumed runs treat it (:mod:`ct_plugin.settings.table`).
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ct_plugin.errors import CTPluginError
from ct_plugin.settings.files import read_settings_file
from ct_plugin.settings.table import Setting, SettingsTable

RECORD_KEYS = ("record",)
"""Keys of a run's ``config.json`` that record provenance (version, seeds) rather than settings."""

RESERVED_DATASET_OPTIONS = ("data_dir", "seed", "immutable", "increase_only", "decrease_only", "protect")
"""Keys of ``dataset_options`` that are settings of their own."""

LARGE_LR = 1.0
"""Adam learning rates above this are warned about (they diverge on every built-in task)."""

TERM_WEIGHT_PREFIX = "lambda_"
"""A loss term's weight is the setting ``lambda_<term>`` (``--lambda-<term>`` on the command line)."""


@dataclass
class TrainConfig:
    """Every setting of a training run; :data:`TRAIN_SETTINGS` describes each one.

    The weights of the built-in loss terms are fields (``lambda_yloss``, ``lambda_div``,
    ``lambda_reg``, ``lambda_adv``); the weights of loss terms that plugins register live in
    ``term_weights`` (``{"smooth": 0.3}``), and a config file or ``TrainConfig.from_dict`` may
    spell them ``lambda_smooth = 0.3`` too. Which terms are on: the strategy's (after ``burnin``),
    plus every plugin term whose weight is set in ``term_weights`` above 0, with any strategy.
    The generator's options (for ``eccco``: ``lambda_cost``, ``lambda_energy``, ``step_size``,
    ``preset``) default to the generator's own.

    Where the defaults come from: most are the reference's common settings (METHOD.md section 4:
    MLP, Adam lr 0.001, 100 epochs, lambda yloss/div/adv 1/0.5/0.25, T 30, epsilon 0.3). The
    rows of :data:`TRAIN_SETTINGS` with a ``default_note`` are not: ``tau`` and ``lambda_reg`` are
    the project's (the reference tuned them per dataset), ``nce`` and ``batch_size`` the reference's
    for the 2-D sets only. ECCCo's own defaults are the project's ``preset="project"`` (step 0.25,
    constant energy weight, ridge 0.1; docs/eccco_default.md), not the reference's ``"reference"``.
    """

    dataset: str = "moons"
    dataset_options: dict[str, Any] = field(default_factory=dict)
    data_dir: str | None = None
    immutable: list[str] = field(default_factory=list)
    increase_only: list[str] = field(default_factory=list)
    decrease_only: list[str] = field(default_factory=list)
    protect: bool = False
    model: str = "mlp"
    model_options: dict[str, Any] = field(default_factory=dict)
    strategy: str = "ct"
    burnin: float = 0.0
    init_from: str | None = None
    generator: str = "eccco"
    generator_options: dict[str, Any] = field(default_factory=dict)
    epochs: int = 100
    batch_size: int = 30
    lr: float = 1e-3
    seed: int = 0
    nce: int = 1000
    search_every: str = "epoch"
    tau: float = 0.75
    max_steps: int = 30
    epsilon: float = 0.3
    lambda_yloss: float = 1.0
    lambda_div: float = 0.5
    lambda_reg: float = 0.1
    lambda_adv: float = 0.25
    term_weights: dict[str, float] = field(default_factory=dict)
    update_schedule: str | None = None
    factual_selector: str | None = None
    device: str = "auto"

    def validate(self) -> TrainConfig:
        """Coerce every setting to its type or raise :class:`CTPluginError` naming it; return self."""
        TRAIN_SETTINGS.validate(self)
        reserved = sorted(set(self.dataset_options) & set(RESERVED_DATASET_OPTIONS))
        if reserved:
            raise CTPluginError(
                f"dataset_options may not set {', '.join(reserved)}: they are settings of their own "
                "(e.g. seed=..., data_dir=...)"
            )
        fields = sorted(TERM_WEIGHT_PREFIX + t for t in self.term_weights if TERM_WEIGHT_PREFIX + t in TRAIN_SETTINGS)
        if fields:
            raise CTPluginError(
                f"term_weights holds the weights of plugin loss terms; set {', '.join(fields)} itself instead"
            )
        if self.lr > LARGE_LR:
            warnings.warn(
                f"lr={self.lr:g} is far above Adam's usual range (1e-5 .. 1e-1); training will likely diverge",
                UserWarning,
                stacklevel=3,
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from a dict; unknown keys are an error listing the valid ones.

        ``lambda_<term>`` keys of terms without a field of their own (plugin terms) go into
        ``term_weights``; whether such a term is registered is checked when training starts.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(values, dict):
            raise CTPluginError(f"a config must be a table of settings, got {type(values).__name__}")
        values = {k: v for k, v in values.items() if k not in RECORD_KEYS}
        values = _gather_term_weights(values, known)
        unknown = sorted(set(values) - known)
        if unknown:
            raise CTPluginError(f"unknown config key(s) {unknown}; valid keys: {', '.join(sorted(known))}")
        return cls(**values)

    def replace(self, **overrides: Any) -> TrainConfig:
        """A copy with some settings changed (unknown names rejected); ``*_options`` and ``term_weights`` are merged."""
        values = self.to_dict()
        for key, value in _gather_term_weights(overrides, set(values)).items():
            if (key.endswith("_options") or key == "term_weights") and isinstance(value, dict) \
                    and isinstance(values.get(key), dict):
                values[key] = {**values[key], **value}
            else:
                values[key] = value
        return TrainConfig.from_dict(values)

    def term_weight(self, term: str, default: float) -> float:
        """The weight of loss term ``term``: its field (built-in terms), else ``term_weights``, else ``default``."""
        name = TERM_WEIGHT_PREFIX + term
        if name in TRAIN_SETTINGS:
            return float(getattr(self, name))
        return float(self.term_weights.get(term, default))

    def weight_is_set(self, term: str) -> bool:
        """Whether the weight of plugin term ``term`` was given (``term_weights``) and is above 0."""
        return float(self.term_weights.get(term, 0.0)) > 0.0


def _gather_term_weights(values: dict[str, Any], known: set[str]) -> dict[str, Any]:
    """Move ``lambda_<term>`` keys that are not fields into ``term_weights``."""
    plugin = {k[len(TERM_WEIGHT_PREFIX):]: v for k, v in values.items()
              if k.startswith(TERM_WEIGHT_PREFIX) and k not in known and k[len(TERM_WEIGHT_PREFIX):].isidentifier()}
    if not plugin:
        return values
    out = {k: v for k, v in values.items() if k[len(TERM_WEIGHT_PREFIX):] not in plugin or k in known}
    given = out.get("term_weights")
    out["term_weights"] = {**(given if isinstance(given, dict) else {}), **plugin}
    return out


_DATA, _MODEL, _CT, _OPT = "data", "model", "counterfactual training", "optimisation and output"
_WEIGHT = {"kind": "float", "low": 0.0, "ct_only": True, "tunable": True, "group": _CT}

TRAIN_SETTINGS = SettingsTable(TrainConfig, [
    Setting("dataset", "name", "registered dataset name (see `ct-plugin datasets`)", fixed_on_resume=True,
            group=_DATA),
    Setting("dataset_options", "options", "loader options, e.g. n_samples=1000 or max_rows=5000",
            fixed_on_resume=True, flag="--dataset-option", group=_DATA),
    Setting("data_dir", "path", "folder with the real tables' CSV files", optional=True, fixed_on_resume=True,
            group=_DATA),
    Setting("immutable", "names", "features that must not change", fixed_on_resume=True, group=_DATA),
    Setting("increase_only", "names", "features that may only increase", fixed_on_resume=True, group=_DATA),
    Setting("decrease_only", "names", "features that may only decrease", fixed_on_resume=True, group=_DATA),
    Setting("protect", "bool", "make the dataset's protected features (e.g. age) immutable", fixed_on_resume=True,
            group=_DATA),
    Setting("model", "name", "architecture: mlp, logreg, cnn or a plugin's", fixed_on_resume=True, group=_MODEL),
    Setting("model_options", "options", "architecture options, e.g. hidden=[64,64]", fixed_on_resume=True,
            flag="--model-option", group=_MODEL),
    Setting("strategy", "name", "training strategy: vanilla, ct, energy, adversarial or a plugin's", group=_CT),
    Setting("burnin", "float", "fraction of epochs with yloss only before the counterfactual terms switch on",
            low=0.0, high=1.0, high_open=True, allowed="a fraction in [0, 1)", ct_only=True, tunable=True, group=_CT),
    Setting("init_from", "path", "start from the weights of a trained run (fine-tuning)", optional=True,
            fixed_on_resume=True, group=_MODEL),
    Setting("generator", "name", "in-training generator: eccco, generic, revise or a plugin's", ct_only=True,
            group=_CT),
    Setting("generator_options", "options", "generator options, e.g. step_size=0.1 or preset=reference (ECCCo's "
            "defaults are the project's preset=project: step 0.25, constant energy weight, ridge 0.1)", ct_only=True,
            flag="--generator-option", group=_CT),
    Setting("epochs", "int", "epochs", low=1, high=1_000_000, group=_OPT),
    Setting("batch_size", "int", "mini-batch size", low=1, high=100_000_000, group=_OPT,
            default_note="the reference's for the 2-D sets, Table C.1 has 1000 for the tables"),
    Setting("lr", "float", "Adam learning rate", low=0.0, low_open=True, group=_OPT),
    Setting("seed", "int", "seed of data, initialisation and sampling", low=0, high=2**32 - 1,
            fixed_on_resume=True, group=_OPT),
    Setting("nce", "int", "counterfactuals per epoch", low=0, high=10_000_000, ct_only=True, tunable=True,
            group=_CT, default_note="the reference's for the 2-D sets, Table C.1 has 5000 for the tables"),
    Setting("search_every", "choice", "one search per epoch (results spread over its batches) or per batch",
            choices=("epoch", "batch"), ct_only=True, group=_CT),
    Setting("tau", "float", "decision threshold of a mature counterfactual", low=0.0, high=1.0, low_open=True,
            allowed="a number in (0, 1]", ct_only=True, tunable=True, group=_CT,
            default_note="the project's: the reference tuned it per dataset, Table C.1 has 0.5 on most"),
    Setting("max_steps", "int", "search steps T", low=0, high=1_000_000, ct_only=True, tunable=True, group=_CT),
    Setting("epsilon", "float", "L-inf radius of nascent adversarial examples", low=0.0, ct_only=True,
            tunable=True, group=_CT),
    Setting("lambda_yloss", "float", "weight of the yloss term (classification loss)", low=0.0, group=_CT),
    Setting("lambda_div", help="weight of the div term (contrastive divergence)", **_WEIGHT),
    Setting("lambda_reg", help="weight of the reg term (energy ridge)", **_WEIGHT,
            default_note="the project's: the reference tuned it per dataset, Table C.1 has 0.01 to 0.5"),
    Setting("lambda_adv", help="weight of the adv term (adversarial loss on nascent counterfactuals)", **_WEIGHT),
    Setting("term_weights", "weights", "weights of loss terms registered by plugins (--lambda-<term>)", low=0.0,
            flag=None, group=_CT),
    Setting("update_schedule", "name", "how a batch's terms update the model: joint or a plugin's (default: the "
            "strategy's)", optional=True, group=_CT),
    Setting("factual_selector", "name", "how the factuals of the counterfactual search are chosen: uniform or a "
            "plugin's (default: the strategy's)", optional=True, ct_only=True, group=_CT),
    Setting("device", "device", "auto, cpu or cuda[:index]", group=_OPT),
])
"""The settings table of :class:`TrainConfig`."""


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML, YAML or JSON config file into a dict (a ``[train]`` table is used if present)."""
    values = read_settings_file(path)
    values = values.get("train", values)
    if not isinstance(values, dict):
        raise CTPluginError(f"config file {path}: [train] must be a table of settings")
    return values
