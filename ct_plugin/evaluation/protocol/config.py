"""The evaluation protocol's settings: :class:`ProtocolConfig`, its validation and defaults.

Also the names of the protocols and search settings. The protocols themselves are described
in :mod:`ct_plugin.evaluation.protocol`, which re-exports every name here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ct_plugin.errors import CTPluginError

MAIN, PROTECTED = "main", "protected"
PROTOCOLS = ("paper", "strict")
"""Names of the evaluation protocols (``ProtocolConfig.protocol``)."""
MAIN_MUTABILITY = ("free", "spec")
"""Mutability of the main search: nothing frozen, or the run's dataset spec as trained."""
TABLE_METRICS = ("ip", "ip_star", "cost")
"""Columns of the paper's table: (metric, setting) pairs are ip/main, ip_star/main, cost/protected."""


@dataclass
class ProtocolConfig:
    """Settings of the evaluation protocol (defaults: the paper's).

    Attributes:
        protocol: ``paper`` (the reference's protocol, the default) or ``strict`` (see the module doc).
        main_mutability: ``free`` (nothing frozen in the main search: the paper's) or ``spec`` (the
            mutability the runs were trained with); None: ``free`` for paper, ``spec`` for strict.
            The protected setting always freezes the dataset's protected features on top of it.
        generator: post-hoc generator name; ``generator_options`` its extra options (None: for
            paper, ECCCo's ``preset="reference"`` with ``lambda_cost`` 0; for strict, none).
        lambda_energies: ECCCo energy weights; each gives one search per setting (ignored, with a
            single search, for generators without a ``lambda_energy`` option).
        tau, max_steps: decision threshold and steps T of the main setting.
        cost_tau: decision threshold of the protected (cost) setting.
        rounds: bootstrap rounds; n_factuals: factuals per round (None: paper 250 for 2-D data,
            100 for tables, 25 for images; strict 100).
        length_scales: fixed Gaussian-kernel length-scales of IP* (paper protocol): the first is
            reported as ``ip_star`` (5.0, as the code ran it), the others as ``ip_star_<l>``.
        pgd_steps, pgd_step_size, pgd_random_start: PGD settings (None: paper 40 steps of 0.01 with a
            random start; strict 10 steps of epsilon/4, no random start).
        ig_rounds: rounds of the integrated-gradient draw (paper protocol: median over rounds).
        epsilons: robust-accuracy grid; attack_rows: test rows attacked (seeded subsample).
        ig_rows, ig_steps: rows and Riemann steps of integrated gradients.
        max_class_samples: observed samples per class used as X+ for IP / IP* (seeded subsample).
        confidence: level of the bootstrap interval of differences.
        seed: seed of every draw.
        path_rows: factuals whose search paths are drawn for 2-D data / shown for images.
    """

    protocol: str = "paper"
    main_mutability: str | None = None
    generator: str = "eccco"
    generator_options: dict[str, Any] | None = None
    lambda_energies: tuple[float, ...] = (0.1, 0.5, 1.0, 5.0, 10.0)
    tau: float = 0.95
    max_steps: int = 50
    cost_tau: float = 0.5
    rounds: int = 100
    n_factuals: int | None = None
    length_scales: tuple[float, ...] = (5.0, 0.5)
    pgd_steps: int | None = None
    pgd_step_size: float | None = None
    pgd_random_start: bool | None = None
    ig_rounds: int = 10
    epsilons: tuple[float, ...] = tuple(round(0.01 * i, 2) for i in range(11))
    attack_rows: int = 5000
    ig_rows: int = 500
    ig_steps: int = 32
    max_class_samples: int = 1000
    confidence: float = 0.99
    seed: int = 0
    path_rows: int = 8

    def validate(self) -> ProtocolConfig:
        """Coerce every setting through :mod:`ct_plugin.settings.coerce` or raise naming it; return self."""
        from ct_plugin.settings.coerce import as_float, as_int, as_name, check_options_table

        if self.protocol not in PROTOCOLS:
            raise CTPluginError(f"unknown evaluation protocol {self.protocol!r}; choose from {', '.join(PROTOCOLS)}")
        if self.main_mutability is not None and self.main_mutability not in MAIN_MUTABILITY:
            raise CTPluginError(
                f"main_mutability must be one of {', '.join(MAIN_MUTABILITY)}, got {self.main_mutability!r}"
            )
        for name in ("rounds", "max_steps", "attack_rows", "ig_rows", "ig_steps", "max_class_samples", "ig_rounds"):
            setattr(self, name, as_int(name, getattr(self, name), 1))
        for name in ("n_factuals", "pgd_steps"):  # None: the protocol's default
            if getattr(self, name) is not None:
                setattr(self, name, as_int(name, getattr(self, name), 1))
        if self.rounds < 2:
            raise CTPluginError(f"rounds must be at least 2 for standard errors, got {self.rounds}")
        if self.ig_steps < 2:
            raise CTPluginError(f"ig_steps must be at least 2 (captum's integrated gradients), got {self.ig_steps}")
        self.seed = as_int("seed", self.seed, 0, 2**32 - 1)
        self.path_rows = as_int("path_rows", self.path_rows, 0)
        for name in ("tau", "cost_tau"):
            setattr(self, name, as_float(name, getattr(self, name), 0, 1, low_open=True))
        self.confidence = as_float("confidence", self.confidence, 0, 1, low_open=True, high_open=True)
        self.generator = as_name("generator", self.generator)
        if self.generator_options is not None:  # None: the protocol's default options
            self.generator_options = check_options_table("generator_options", self.generator_options)
        for name in ("lambda_energies", "epsilons", "length_scales"):
            values = getattr(self, name)
            if isinstance(values, str | bytes) or not isinstance(values, Sequence) or not values:
                raise CTPluginError(f"{name} must be a non-empty list of non-negative numbers, got {values!r}")
            setattr(self, name, tuple(as_float(name, v, 0) for v in values))
        if any(v <= 0 for v in self.length_scales):
            raise CTPluginError(f"length_scales must be positive numbers, got {self.length_scales}")
        if self.pgd_step_size is not None:
            self.pgd_step_size = as_float("pgd_step_size", self.pgd_step_size, 0, low_open=True)
        return self

    @property
    def main_search(self) -> str:
        """The main search's mutability: ``free`` or ``spec`` (resolved from the protocol)."""
        if self.main_mutability is not None:
            return self.main_mutability
        return "free" if self.protocol == "paper" else "spec"

    def resolved_generator_options(self) -> dict[str, Any]:
        """The post-hoc generator's options: the given ones, else the protocol's default."""
        if self.generator_options is not None:
            return dict(self.generator_options)
        if self.protocol == "paper" and self.generator in ("eccco", "generic"):
            return {"preset": "reference", "lambda_cost": 0.0}
        return {}

    def attack_options(self, attack: str) -> dict[str, Any]:
        """Keyword options of :func:`ct_plugin.evaluation.metrics.robust_accuracy` for ``attack``."""
        if attack != "pgd":
            return {}
        paper = self.protocol == "paper"
        return {
            "steps": self.pgd_steps or (40 if paper else 10),
            "step_size": self.pgd_step_size if self.pgd_step_size is not None else (0.01 if paper else None),
            "random_start": self.pgd_random_start if self.pgd_random_start is not None else paper,
        }


def replace_config(config: ProtocolConfig, **changes: Any) -> ProtocolConfig:
    """A validated copy of ``config`` with some settings changed (None values ignored)."""
    return dataclasses.replace(config, **{k: v for k, v in changes.items() if v is not None}).validate()
