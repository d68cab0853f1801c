"""Deprecated: moved to :mod:`ct_plugin.runs.load`; this alias warns and goes away in the next release."""

import warnings

from ct_plugin.atomic import atomic_write_json
from ct_plugin.runs.files import (
    REQUIRED_FILES,
    RUN_FILES,
    atomic_torch_save,
    clear_run_dir,
    read_json,
    read_log,
    safe_torch_load,
)
from ct_plugin.runs.load import Run, build_model_from_description, check_run_dir, load_model, load_run

warnings.warn(
    "ct_plugin.rundir moved to ct_plugin.runs.load"
    " (this alias goes away in the next release)",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = [
    "REQUIRED_FILES",
    "RUN_FILES",
    "Run",
    "atomic_torch_save",
    "atomic_write_json",
    "build_model_from_description",
    "check_run_dir",
    "clear_run_dir",
    "load_model",
    "load_run",
    "read_json",
    "read_log",
    "safe_torch_load",
]
