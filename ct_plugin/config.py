"""Training configuration: one dataclass, validated in one place, loadable from TOML/YAML."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ct_plugin.errors import CTPluginError

RECORD_KEYS = ("record",)
"""Keys of a run's ``config.json`` that record provenance (version, seeds) rather than settings."""


@dataclass
class TrainConfig:
    """Every setting of a training run. Defaults are the reference defaults (docs/method.md, "Default settings").

    Attributes:
        dataset: registered dataset name (ignored when a spec is passed to ``train``).
        dataset_options: keyword options of the dataset loader (e.g. ``n_samples``).
        immutable, increase_only, decrease_only: feature names with restricted mutability.
        protect: make the dataset's protected features (e.g. ``age``) immutable.
        model: registered architecture name; ``model_options`` its keyword options.
        strategy: ``vanilla``, ``ct``, ``energy``, ``adversarial`` or a plugin's.
        burnin: fraction of epochs trained with yloss only before CT switches on.
        init_from: a run directory whose weights start this run (CT as fine-tuning).
        generator: in-training counterfactual generator; ``generator_options`` its keyword
            options (for ``eccco``: ``lambda_cost`` 0.001, ``lambda_energy`` 5.0, ``step_size``
            0.25 by default; each generator's defaults are the reference's).
        epochs, batch_size, lr, seed: optimisation (Adam).
        nce: counterfactuals per epoch, spread over the mini-batches.
        search_every: ``epoch`` (one batched search of nce factuals at the start of the
            epoch, results spread over its batches) or ``batch`` (a search per batch with
            the current weights).
        tau, max_steps, epsilon: convergence threshold, search steps T, L-inf radius of nascent AEs.
        lambda_yloss, lambda_div, lambda_reg, lambda_adv: loss weights.
        device: ``auto``, ``cpu`` or ``cuda[:i]``.
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
    device: str = "auto"

    def validate(self) -> TrainConfig:
        """Coerce every setting to its type or raise :class:`CTPluginError` naming it; return self."""
        from ct_plugin.settings.coerce import check_train_config

        return check_train_config(self)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from a dict; unknown keys are an error listing the valid ones."""
        known = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(values, dict):
            raise CTPluginError(f"a config must be a table of settings, got {type(values).__name__}")
        values = {k: v for k, v in values.items() if k not in RECORD_KEYS}
        unknown = sorted(set(values) - known)
        if unknown:
            raise CTPluginError(f"unknown config key(s) {unknown}; valid keys: {', '.join(sorted(known))}")
        return cls(**values)

    def replace(self, **overrides: Any) -> TrainConfig:
        """A copy with some settings changed (unknown names rejected); ``*_options`` dicts are merged."""
        values = self.to_dict()
        for key, value in overrides.items():
            if key.endswith("_options") and isinstance(value, dict) and isinstance(values.get(key), dict):
                values[key] = {**values[key], **value}
            else:
                values[key] = value
        return TrainConfig.from_dict(values)


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML, YAML or JSON config file into a dict (a ``[train]`` table is used if present)."""
    from ct_plugin.settings.files import read_settings_file

    values = read_settings_file(path)
    values = values.get("train", values)
    if not isinstance(values, dict):
        raise CTPluginError(f"config file {path}: [train] must be a table of settings")
    return values
