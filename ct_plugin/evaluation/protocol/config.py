"""The evaluation protocol's settings: :class:`ProtocolConfig`, its validation and defaults.

Also the names of the protocols and search settings. The protocols themselves are described
in :mod:`ct_plugin.evaluation.protocol`, which re-exports every name here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ct_plugin.errors import CTPluginError
from ct_plugin.settings.table import Setting, SettingsTable

MAIN, PROTECTED = "main", "protected"
PROTOCOLS = ("paper", "strict")
"""Names of the evaluation protocols (``ProtocolConfig.protocol``)."""
MAIN_MUTABILITY = ("free", "spec")
"""Mutability of the main search: nothing frozen, or the run's dataset spec as trained."""
PAPER_PRESET_GENERATORS = ("eccco", "generic")
"""Post-hoc generators that the ``paper`` protocol runs with :data:`PAPER_GENERATOR_OPTIONS`."""
PAPER_GENERATOR_OPTIONS: dict[str, Any] = {"preset": "reference", "lambda_cost": 0.0}
"""The ``paper`` protocol's options of ECCCo and Generic (the reference's test-time search).

A user's options (``--posthoc-option``) merge over them, a given key winning.
"""
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
        generator: post-hoc generator name; ``generator_options`` its extra options, merged over the
            protocol's own (:meth:`protocol_generator_options`: for paper with ECCCo or Generic,
            ``preset="reference"`` and ``lambda_cost`` 0; for strict, none), a given key winning.
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
        """Coerce every setting through :data:`PROTOCOL_SETTINGS` or raise naming it; return self."""
        if self.protocol not in PROTOCOLS:
            raise CTPluginError(f"unknown evaluation protocol {self.protocol!r}; choose from {', '.join(PROTOCOLS)}")
        PROTOCOL_SETTINGS.validate(self)
        return self

    @property
    def main_search(self) -> str:
        """The main search's mutability: ``free`` or ``spec`` (resolved from the protocol)."""
        if self.main_mutability is not None:
            return self.main_mutability
        return "free" if self.protocol == "paper" else "spec"

    def protocol_generator_options(self) -> dict[str, Any]:
        """The protocol's own options of the post-hoc generator (before the user's).

        Under ``paper``, ECCCo and Generic search as the reference's evaluation did: ``preset="reference"``
        (step 0.1, decaying energy weight, ridge 1e-3, one-hot projection per step) and ``lambda_cost`` 0.
        """
        if self.protocol == "paper" and self.generator in PAPER_PRESET_GENERATORS:
            return dict(PAPER_GENERATOR_OPTIONS)
        return {}

    def resolved_generator_options(self) -> dict[str, Any]:
        """The post-hoc generator's options: the given ones merged over the protocol's (a given key wins).

        ``--posthoc-option step_size=0.05`` under ``paper`` thus searches with the reference preset and
        ``lambda_cost`` 0 at step 0.05; ``preset=project`` or ``lambda_cost=0.001`` replace those keys.
        """
        return {**self.protocol_generator_options(), **dict(self.generator_options or {})}

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


_COUNT = {"kind": "int", "low": 1}
_SHARE = {"kind": "float", "low": 0.0, "high": 1.0, "low_open": True}

PROTOCOL_SETTINGS = SettingsTable(ProtocolConfig, [
    Setting("protocol", "choice", "evaluation protocol: paper (the reference's) or strict", choices=PROTOCOLS),
    Setting("main_mutability", "choice", "main search: free (nothing frozen) or spec (as trained)",
            choices=MAIN_MUTABILITY, optional=True),
    Setting("generator", "name", "post-hoc generator"),
    Setting("generator_options", "options", "options of the post-hoc generator", optional=True),
    Setting("lambda_energies", "floats", "ECCCo energy weights, one search each", low=0.0,
            allowed="a non-empty list of non-negative numbers"),
    Setting("tau", help="decision threshold of the main setting", **_SHARE),
    Setting("max_steps", help="search steps T", **_COUNT),
    Setting("cost_tau", help="decision threshold of the protected (cost) setting", **_SHARE),
    Setting("rounds", "int", "bootstrap rounds", low=2, allowed="at least 2 (for standard errors)"),
    Setting("n_factuals", help="factuals per round (None: the protocol's default)", optional=True, **_COUNT),
    Setting("length_scales", "floats", "fixed Gaussian-kernel length-scales of IP*", low=0.0, low_open=True,
            allowed="a non-empty list of positive numbers (length_scales)"),
    Setting("pgd_steps", help="PGD steps (None: the protocol's)", optional=True, **_COUNT),
    Setting("pgd_step_size", "float", "PGD step size (None: the protocol's)", low=0.0, low_open=True, optional=True),
    Setting("pgd_random_start", "bool", "PGD random start (None: the protocol's)", optional=True),
    Setting("ig_rounds", help="rounds of the integrated-gradient draw", **_COUNT),
    Setting("epsilons", "floats", "robust-accuracy grid", low=0.0,
            allowed="a non-empty list of non-negative numbers"),
    Setting("attack_rows", help="test rows attacked", **_COUNT),
    Setting("ig_rows", help="rows of integrated gradients", **_COUNT),
    Setting("ig_steps", "int", "Riemann steps of integrated gradients", low=2,
            allowed="at least 2 (captum's integrated gradients)"),
    Setting("max_class_samples", help="observed samples per class (X+ of IP / IP*)", **_COUNT),
    Setting("confidence", "float", "level of the bootstrap interval", low=0.0, high=1.0, low_open=True,
            high_open=True),
    Setting("seed", "int", "seed of every draw", low=0, high=2**32 - 1),
    Setting("path_rows", "int", "factuals whose search paths are drawn", low=0),
])
"""The settings table of :class:`ProtocolConfig` (:mod:`ct_plugin.settings.table`)."""


def replace_config(config: ProtocolConfig, **changes: Any) -> ProtocolConfig:
    """A validated copy of ``config`` with some settings changed (None values ignored)."""
    return dataclasses.replace(config, **{k: v for k, v in changes.items() if v is not None}).validate()
