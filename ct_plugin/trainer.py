"""Deprecated: moved to :mod:`ct_plugin.training.train`; this alias warns and goes away in the next release."""

import warnings

from ct_plugin.training.loop import Trainer
from ct_plugin.training.setup import RESUME_FIXED, build_generator, resolve_config
from ct_plugin.training.train import TrainResult, train

warnings.warn(
    "ct_plugin.trainer moved to ct_plugin.training.train"
    " (this alias goes away in the next release)",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = [
    "RESUME_FIXED",
    "TrainResult",
    "Trainer",
    "build_generator",
    "resolve_config",
    "train",
]
