"""dice-ml itself, as the DiCE adapter uses it: the lazy import, DiCE's explainer class per method,
the options the adapter sets or defaults, and the quiet, seeded context every DiCE call runs in.

``dice_ml`` is imported only inside these functions (:func:`import_dice`, :func:`explainer_class`,
:func:`bounded_genetic_class`), never at import time. Known dice-ml 0.12 behaviours handled
here: DiCE's printing, progress bars and warnings are silenced; the global ``random``/``numpy``
generators DiCE draws from are seeded and restored afterwards (:func:`quiet_and_seeded`); the
genetic method's unbounded random initialisation is bounded (:func:`bounded_genetic_class`).

Part of the DiCE generator (:mod:`ct_plugin.adapters.dice.generator`, which re-exports these names).
"""

from __future__ import annotations

import contextlib
import functools
import io
import random
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from ct_plugin.errors import MissingDependencyError

INSTALL_COMMAND = "pip install 'ct-plugin[dice]'"
"""How a user gets dice-ml at a version this adapter supports."""

DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {
    "random": {"sample_size": 500},
    "genetic": {"maxiterations": 100},
    "kdtree": {},
    "gradient": {"min_iter": 20, "max_iter": 100, "learning_rate": 0.05, "proximity_weight": 0.5},
}
"""Our defaults for DiCE's per-method options (tuned for speed; any can be overridden)."""

RESERVED_OPTIONS = {
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
NO_CF_MESSAGES = (
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


class NoCounterfactual(RuntimeError):
    """Raised inside a DiCE call when a query provably gets no counterfactual."""


@functools.lru_cache(maxsize=1)
def bounded_genetic_class() -> type:
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
                    raise NoCounterfactual("genetic initialisation found no valid random member")
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
def quiet_and_seeded(seed: int) -> Iterator[None]:
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


def explainer_class(method: str) -> type:
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
