"""The ``ct-plugin`` command line: the parser, the built-in sub-commands and :func:`main`.

Each sub-command lives in a module of its own (``ct_plugin/cli/<command>.py``) with a
``register(subparsers)`` function; installed plugins add theirs through the
``ct_plugin_add_commands`` hook. Command modules import the library inside their ``cmd_*``
functions, so that ``ct-plugin --help`` and ``--version`` import neither torch nor any plugin.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from ct_plugin._version import __version__
from ct_plugin.cli import compare, datasets, evaluate, explain, grid, plugins, reproduce, train, tune
from ct_plugin.errors import CTPluginError

DESCRIPTION = """\
Counterfactual Training (CT) for PyTorch classifiers.

Train models whose own counterfactual explanations are plausible and respect which
features may change, then evaluate and benchmark them.

examples:
  ct-plugin datasets
  ct-plugin train --dataset moons --strategy ct --epochs 100 --out runs/moons-ct
  ct-plugin datasets --where        # where the real tables (adult, gmsc, ...) are looked for
  ct-plugin train --dataset adult --protect --batch-size 1000 --out runs/adult-ct
  ct-plugin train --csv loans.csv --target approved --immutable age --out runs/loans-ct
  ct-plugin explain runs/loans-ct --rejected 3      # recourse for three people the model turns down
  ct-plugin plugins
"""


PLUGINS_NOTE = """\
Installed plugins add commands of their own (the CARLA adapter: `benchmark`, `carla`);
`ct-plugin plugins` lists every plugin and what it registered.
"""

BUILTIN_COMMANDS = (plugins, datasets, train, evaluate, explain, reproduce, compare, tune, grid)
"""The modules of the built-in sub-commands, in the order ``--help`` lists them."""

REGISTRY_FLAG_COMMANDS = frozenset({"train", "tune"})
"""Built-in commands whose flags come partly from plugins (a ``--lambda-<term>`` per registered loss term)."""


def build_parser(with_plugins: bool = True) -> argparse.ArgumentParser:
    """The top-level parser: the built-in sub-commands, and with ``with_plugins`` those plugins add."""
    parser = argparse.ArgumentParser(
        prog="ct-plugin", description=DESCRIPTION, epilog=PLUGINS_NOTE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"ct-plugin {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in BUILTIN_COMMANDS:
        module.register(sub, with_plugins=with_plugins)
    if with_plugins:
        from ct_plugin.plugins.registry import plugin_manager  # loads every plugin: only when a command needs them

        plugin_manager().hook.ct_plugin_add_commands(subparsers=sub)
    return parser


def needs_plugins(argv: Sequence[str]) -> bool:
    """Whether parsing ``argv`` needs the plugins loaded: a plugin's command, or flags a plugin adds.

    ``ct-plugin``, ``--help`` and ``--version`` load none (start-up stays well under a second).
    """
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    builtin = {name for module in BUILTIN_COMMANDS for name in module.COMMANDS}
    return command is not None and (command not in builtin or command in REGISTRY_FLAG_COMMANDS)


PYTHON_FORMAT_WARNING = warnings.formatwarning
"""Python's own warning format, kept for the warnings other packages raise."""


def format_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                   line: str | None = None) -> str:
    """How the command line shows a warning: ct-plugin's own as one line ``ct-plugin: warning: ...``.

    Python's format names the file and line of the library code that called the warning's source and
    quotes it, which tells a command-line user nothing; warnings raised from other packages' code keep it.
    """
    if "ct_plugin" in Path(filename).parts:
        return f"ct-plugin: warning: {message}\n"
    return PYTHON_FORMAT_WARNING(message, category, filename, lineno, line)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ct-plugin`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    shown_as, warnings.formatwarning = warnings.formatwarning, format_warning  # only how; filters stay the user's
    try:
        parser = build_parser(with_plugins=needs_plugins(argv))
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        with warnings.catch_warnings():
            # our own deprecations are shown (Python hides DeprecationWarning outside __main__); every other
            # filter stays the user's (-W, PYTHONWARNINGS, pytest's filterwarnings)
            warnings.filterwarnings("default", category=DeprecationWarning, module=r"ct_plugin(\.|$)")
            return int(args.func(args) or 0)
    except CTPluginError as exc:
        print(f"ct-plugin: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a full disk, a read-only or missing folder, a permission: said in one line
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        print(f"ct-plugin: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ct-plugin: interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.formatwarning = shown_as
