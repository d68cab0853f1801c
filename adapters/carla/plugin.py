"""The CARLA adapter's plugin: generators ``carla-*``, and the ``benchmark`` and ``carla`` commands.

Importing this module never imports CARLA: availability is decided from installed package
metadata, and CARLA is imported only when a generator is built or a command runs.
"""

from __future__ import annotations

import argparse
import importlib.util
from collections.abc import Callable
from typing import Any

from ct_plugin.errors import CTPluginError, MissingDependencyError
from ct_plugin.plugins.hookspecs import hookimpl
from ct_plugin.plugins.registry import PluginItem

INSTALL_COMMAND = "pip install 'ct-plugin[carla]' && python -m ct_plugin.adapters.carla.install"

#: CARLA methods that can drive a torch classifier: (method key, description)
TORCH_METHODS = (
    ("wachter", "Wachter et al. (2017) gradient search, via CARLA"),
    ("growing-spheres", "Growing Spheres random search, via CARLA"),
    ("dice", "DiCE (random) through CARLA's wrapper"),
    ("revise", "REVISE: VAE latent-space gradient search, via CARLA"),
    ("cchvae", "C-CHVAE: VAE latent-sphere search, via CARLA"),
    ("face", "FACE: density-weighted path search (knn graph), via CARLA"),
    ("clue", "CLUE: uncertainty-guided latent search, via CARLA"),
    ("crud", "CRUD: class-conditional CSVAE search, via CARLA"),
    ("actionable-recourse", "ActionableRecourse: integer programme on a LIME linearisation, via CARLA"),
)

#: CARLA methods that cannot drive a ct-plugin torch classifier, with the reason
UNSUPPORTED_METHODS = {
    "feature-tweak": "CARLA's FeatureTweak explains tree ensembles (sklearn/xgboost forests) only, "
    "not torch classifiers",
    "focus": "CARLA's FOCUS explains tree ensembles only and needs TensorFlow 1 (tensorflow.contrib)",
    "cem": "CARLA's CEM needs a TensorFlow 1 / Keras 2 model and a TF1 session; ct-plugin models are torch",
    "causal-recourse": "CARLA's CausalRecourse needs a structural causal model of the data "
    "(carla.data.causal_model.CausalModel), which ct-plugin datasets do not provide",
}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def carla_available() -> tuple[bool, str]:
    """Whether carla-recourse 0.0.5 is installed (without importing it), and why not."""
    from ct_plugin.adapters.carla.compat import CARLA_VERSION, carla_version  # light; imported when asked

    found = carla_version()
    if found is None or not _installed("carla"):
        return False, f"carla-recourse is not installed; install it with: {INSTALL_COMMAND}"
    if found != CARLA_VERSION:
        return False, (
            f"carla-recourse {found} is installed but the adapter supports {CARLA_VERSION}; "
            f"reinstall with: {INSTALL_COMMAND}"
        )
    return True, ""


def _method_available(method: str) -> tuple[bool, str]:
    ok, reason = carla_available()
    if not ok:
        return ok, reason
    if method == "dice" and not _installed("dice_ml"):
        return False, "CARLA's Dice needs dice-ml; install it with: pip install 'dice-ml>=0.12,<0.13'"
    if method == "actionable-recourse":
        missing = [m for m in ("cplex", "recourse", "lime") if not _installed(m)]
        if missing:
            return False, (
                f"CARLA's ActionableRecourse needs {', '.join(missing)} (the python-mip fallback of "
                "actionable-recourse crashes); install with: "
                "python -m ct_plugin.adapters.carla.install --with-actionable-recourse"
            )
    return True, ""


def _factory(method: str) -> Callable[..., Any]:
    def build(**options: Any) -> Any:
        from ct_plugin.adapters.carla.generators import CarlaGenerator  # CARLA: only when a generator is built

        return CarlaGenerator(method, **options)

    build.__name__ = f"carla_{method.replace('-', '_')}"
    build.__doc__ = (
        f"Build the carla-{method} generator. Options: hyperparams (CARLA's, merged over the "
        "adapter's defaults), threads=1, seed=0, quiet=True."
    )
    return build


def _unsupported(method: str, reason: str) -> Callable[..., Any]:
    def build(**options: Any) -> Any:
        raise CTPluginError(f"carla-{method} is unavailable: {reason}")

    return build


@hookimpl
def ct_plugin_generators() -> list[PluginItem]:
    """Every CARLA recourse method, available or with the reason it is not."""
    items = []
    for method, description in TORCH_METHODS:
        ok, reason = _method_available(method)
        items.append(
            PluginItem(
                name=f"carla-{method}",
                factory=_factory(method),
                description=description,
                available=ok,
                reason=reason,
                extra={"host": "carla", "carla_method": method, "provides_path": False},
            )
        )
    for method, reason in UNSUPPORTED_METHODS.items():
        items.append(
            PluginItem(
                name=f"carla-{method}",
                factory=_unsupported(method, reason),
                description=f"CARLA's {method} (not usable with torch classifiers)",
                available=False,
                reason=reason,
                extra={"host": "carla", "carla_method": method},
            )
        )
    return items


@hookimpl
def ct_plugin_add_commands(subparsers: Any) -> None:
    """``ct-plugin benchmark ...`` and ``ct-plugin carla install``."""
    from ct_plugin.adapters.carla import install as install_module  # only for the carla commands

    bench = subparsers.add_parser(
        "benchmark",
        help="benchmark trained runs against CARLA's recourse methods with CARLA's Benchmark",
        description=(
            "Run CARLA's Benchmark(...).run_benchmark() for every (run, method) pair on the same seeded "
            "factuals (test rows each model predicts negative), add ct-plugin's metrics, and write "
            "benchmark.csv, benchmark.md and benchmark.png to --out."
        ),
    )
    bench.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories written by ct-plugin train")
    bench.add_argument("--dataset", default=None, help="expected dataset name of every run (checked)")
    bench.add_argument(
        "--methods",
        default="carla-wachter,carla-growing-spheres",
        help="comma-separated generator names (carla-*), or 'all' for every available CARLA method",
    )
    bench.add_argument("--n-factuals", type=int, default=20, help="factuals per (run, method) pair")
    bench.add_argument("--seed", type=int, default=0, help="seed of the factual draw and of the methods")
    bench.add_argument("--out", required=True, help="output folder")
    bench.add_argument("--data-dir", default=None, help="folder of the real tables (for --dataset checks)")
    bench.add_argument(
        "--threads", type=int, default=None,
        help="torch threads inside CARLA's calls (default: $OMP_NUM_THREADS if set, else 1: its models are small)",
    )
    bench.add_argument("--quiet", action="store_true", help="no progress bar")
    bench.set_defaults(func=_run_benchmark)

    carla_cmd = subparsers.add_parser("carla", help="CARLA adapter utilities")
    carla_sub = carla_cmd.add_subparsers(dest="carla_command", metavar="COMMAND")
    carla_sub.required = True
    inst = carla_sub.add_parser(
        "install",
        help="install carla-recourse 0.0.5 (--no-deps) and its real runtime needs into this interpreter",
    )
    install_module.add_arguments(inst)
    inst.set_defaults(func=_run_install)
    status = carla_sub.add_parser("status", help="is CARLA importable; which fixes and placeholders apply")
    status.set_defaults(func=_run_status)


def _run_install(args: argparse.Namespace) -> int:
    from ct_plugin.adapters.carla import install as install_module  # only for the carla commands

    return install_module.install(
        dry_run=args.dry_run,
        actionable_recourse=args.with_actionable_recourse,
        constraint=args.constraint,
        quiet=args.quiet,
    )


def _run_status(args: argparse.Namespace) -> int:
    ok, reason = carla_available()
    if not ok:
        print(reason)
        return 1
    from ct_plugin.adapters.carla import compat  # CARLA: only for `ct-plugin carla status`

    carla = compat.import_carla()
    print(f"carla-recourse {carla.__version__} imports through ct_plugin.adapters.carla.compat")
    print("placeholders for absent optional packages: " + (", ".join(compat.missing_optional_packages()) or "none"))
    applied = compat.applied()
    for name, why in compat.FIXES.items():
        print(f"  {name:28s} {'applied' if applied.get(name) else 'not needed'}  ({why})")
    return 0


def _run_benchmark(args: argparse.Namespace) -> int:
    ok, _ = carla_available()
    if not ok:
        raise MissingDependencyError("carla-recourse 0.0.5", INSTALL_COMMAND)
    from ct_plugin.adapters.carla.benchmark import run_benchmark_command  # CARLA: only when the command runs

    return run_benchmark_command(args)
