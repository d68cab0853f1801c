"""Install carla-recourse 0.0.5 next to ct-plugin on a modern Python.

carla-recourse 0.0.5 pins TensorFlow 1.14, torch 1.7, numpy 1.19, pandas 1.1 and
scikit-learn 0.23, which pip cannot resolve on Python >= 3.10. It is therefore installed with
``--no-deps``, and its real runtime needs are installed at current versions (TensorFlow is
left out on purpose: only CEM and FOCUS need it, see
:mod:`ct_plugin.adapters.carla.compat`). Run::

    python -m ct_plugin.adapters.carla.install            # or: ct-plugin carla install
    python -m ct_plugin.adapters.carla.install --dry-run  # print the pip commands only
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence

CARLA_REQUIREMENT = "carla-recourse==0.0.5"

#: what CARLA 0.0.5 really needs at run time besides ct-plugin's own dependencies (torch, numpy,
#: pandas, scikit-learn, matplotlib, pyyaml, tqdm): scipy (FACE, distributions) and dice-ml for
#: CARLA's Dice method (dice-ml brings raiutils and xgboost with it)
RUNTIME_REQUIREMENTS = ("scipy>=1.10", "dice-ml>=0.12,<0.13", "raiutils>=0.4")

#: optional, per method: ActionableRecourse needs cplex (python-mip's fallback crashes);
#: actionable-recourse itself is installed --no-deps (it pins mip==1.12 and pytest)
ACTIONABLE_RECOURSE_REQUIREMENTS = ("actionable-recourse==1.0.1", "cplex", "lime>=0.2", "prettytable", "seaborn")


def pip_commands(
    python: str | None = None,
    *,
    actionable_recourse: bool = False,
    constraint: str | None = None,
    quiet: bool = False,
) -> list[list[str]]:
    """The pip commands that install CARLA into the interpreter ``python`` (default: this one).

    ``constraint`` is a pip constraints file (``-c``) that pins what is already installed (torch,
    numpy, ...); ``quiet`` passes ``--quiet`` to pip.
    """
    python = python or sys.executable
    pip = [python, "-m", "pip", "install", "--disable-pip-version-check"]
    if quiet:
        pip.append("--quiet")
    if constraint:
        pip += ["-c", constraint]
    commands = [
        [*pip, *RUNTIME_REQUIREMENTS],
        [*pip, "--no-deps", CARLA_REQUIREMENT],
    ]
    if actionable_recourse:
        commands.append([*pip, *ACTIONABLE_RECOURSE_REQUIREMENTS[1:]])
        commands.append([*pip, "--no-deps", ACTIONABLE_RECOURSE_REQUIREMENTS[0]])
    return commands


def install(
    *,
    dry_run: bool = False,
    actionable_recourse: bool = False,
    python: str | None = None,
    constraint: str | None = None,
    quiet: bool = False,
) -> int:
    """Run :func:`pip_commands`; returns the first non-zero exit status, else 0."""
    commands = pip_commands(python, actionable_recourse=actionable_recourse, constraint=constraint, quiet=quiet)
    for command in commands:
        if dry_run or not quiet:
            print("+ " + " ".join(_quote(part) for part in command), flush=True)
        if dry_run:
            continue
        status = subprocess.call(command)
        if status != 0:
            print(f"command failed with exit status {status}", file=sys.stderr)
            return status
    if dry_run:
        return 0
    if actionable_recourse:
        status = subprocess.call([python or sys.executable, "-c", _REMOVE_STRAY_TESTS])
        if status != 0:
            return status
    return _check(python)


#: actionable-recourse 1.0.1 installs its own top-level ``tests`` package into site-packages,
#: which shadows any project's ``tests`` package (``from tests.conftest import ...`` breaks);
#: those files are removed right after installing it
_REMOVE_STRAY_TESTS = """
import importlib.metadata, pathlib
try:
    files = importlib.metadata.distribution("actionable-recourse").files or []
except importlib.metadata.PackageNotFoundError:
    files = []
removed = []
for entry in files:
    if entry.parts and entry.parts[0] == "tests":
        path = pathlib.Path(entry.locate())
        if path.is_file():
            path.unlink()
            removed.append(path)
for folder in sorted({p.parent for p in removed}, key=lambda p: -len(p.parts)):
    for cache in folder.glob("__pycache__"):
        for item in cache.iterdir():
            item.unlink()
        cache.rmdir()
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
if removed:
    print(f"removed the stray top-level 'tests' package of actionable-recourse ({len(removed)} files)")
"""


def _check(python: str | None) -> int:
    """Import CARLA through the compatibility layer in a fresh interpreter; print what each adapter offers."""
    code = (
        "from ct_plugin.adapters.carla.compat import import_carla\n"
        "from ct_plugin.adapters.status import main\n"
        "import_carla()\n"
        "main()\n"
    )
    return subprocess.call([python or sys.executable, "-c", code])


def _quote(part: str) -> str:
    return f"'{part}'" if any(c in part for c in "<>=* ") else part


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options shared by ``python -m ...install`` and ``ct-plugin carla install``."""
    parser.add_argument("--dry-run", action="store_true", help="print the pip commands without running them")
    parser.add_argument(
        "--with-actionable-recourse",
        action="store_true",
        help="also install cplex, lime and actionable-recourse (CARLA's ActionableRecourse)",
    )
    parser.add_argument("--constraint", "-c", metavar="FILE", help="pip constraints file (pins torch, numpy, ...)")
    parser.add_argument("--quiet", "-q", action="store_true", help="pass --quiet to pip")


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry: ``python -m ct_plugin.adapters.carla.install [--dry-run]``."""
    parser = argparse.ArgumentParser(
        prog="python -m ct_plugin.adapters.carla.install",
        description="Install carla-recourse 0.0.5 (without its unresolvable pins) and its runtime needs.",
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    return install(
        dry_run=args.dry_run,
        actionable_recourse=args.with_actionable_recourse,
        constraint=args.constraint,
        quiet=args.quiet,
    )


if __name__ == "__main__":
    raise SystemExit(main())
