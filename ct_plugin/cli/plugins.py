"""``ct-plugin plugins``: every registered item and the plugin it came from; ``--docs`` writes docs/plugins.md.

``ct-plugin plugins --docs > docs/plugins.md`` regenerates the plugin reference from the hook
specifications, the registry and the settings table; ``tests/test_docs.py`` fails when the committed
page and the code disagree. The page lists only the built-in plugin's items (adapters and third
parties vary by installation).
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import textwrap
from typing import Any

from ct_plugin.config import TRAIN_SETTINGS
from ct_plugin.plugins import hookspecs
from ct_plugin.plugins.registry import HOOK_OF_KIND, KINDS, LossTerm, PluginItem, get_registry, plugin_sources

COMMANDS = ("plugins",)


BUILDS = {
    "generator": "`factory(**options)` returns a `CounterfactualGenerator` (`ct_plugin.generators.base`)",
    "strategy": "`factory(config)` returns a `TrainingStrategy` (`ct_plugin.training.strategies`)",
    "loss_term": "the item is a `LossTerm`; `factory(context)` returns the term's value on a `BatchContext`",
    "update_schedule": "`factory()` returns an `UpdateSchedule` (`ct_plugin.training.schedules`)",
    "factual_selector": "`factory()` returns a `FactualSelector` (`ct_plugin.training.factuals`)",
    "metric": "`factory(**options)` returns `metric(context) -> float` over a `MetricContext`",
    "dataset": "`factory(data_dir=None, seed=0, **options)` returns a `DatasetSpec`",
    "model": "`factory(n_features, n_classes, **options)` returns a `torch.nn.Module`",
}
"""What the factory of each kind's items builds (the hook docstrings below say the same at length)."""

WHERE_TO_START = """\
## Writing one

A plugin is a module with functions decorated by `ct_plugin.hookimpl`, found through the
`ct_plugin` entry-point group of its package:

```toml
[project.entry-points.ct_plugin]
my_plugin = "my_package.plugin"
```

`examples/third_party_strategy/` is a complete, installable example: a loss term (`smooth`), an update
schedule (`two-step`), a factual selector (`least-confident`) and a strategy (`smooth-ct`) in one file,
trained from the command line (`--strategy smooth-ct --lambda-smooth 0.3`) and tuned by
`ct-plugin tune --grid-lambda-smooth 0.1,0.3` with no change to ct-plugin. `ct-plugin plugins`
lists every plugin, what it registered and where it came from.

A loss term named `x` is weighted by the setting `lambda_x`: the flag `--lambda-x`, the key `lambda_x`
of a config or grid file, the tune axis `--grid-lambda-x`, the column `x` of the epoch log and of the
trackers, and the divergence guard's limit (`explodes_above`). A term is on when the strategy names it
(after the burn-in) or, for a plugin's term, whenever its weight is set above 0, with any strategy.
"""


def markdown(text: str) -> str:
    """A docstring's reStructuredText roles and literals as Markdown code spans."""
    text = re.sub(r":\w+:`~([^`]+)`", lambda m: f"`{m.group(1).rsplit('.', 1)[-1]}`", text)
    text = re.sub(r":\w+:`([^`]+)`", r"`\1`", text)
    return text.replace("``", "`")


def _hook_section(name: str) -> str:
    spec = getattr(hookspecs, name)
    arguments = ", ".join(inspect.signature(spec).parameters)
    doc = markdown(textwrap.dedent(inspect.getdoc(spec) or ""))
    return f"### `{name}({arguments})`\n\n{doc}\n"


def _hooks_in_order() -> list[str]:
    """Every hook spec, in the order the module declares them."""
    names = [name for name, value in vars(hookspecs).items() if name.startswith("ct_plugin_") and callable(value)]
    return sorted(names, key=lambda name: inspect.getsourcelines(getattr(hookspecs, name))[1])


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def builtin_items() -> str:
    """A table per kind of the built-in plugin's items."""
    registry = get_registry()
    lines = []
    for kind in KINDS:
        ordered = registry.loss_terms() if kind == "loss_term" else registry.items(kind)  # terms: summation order
        items = [item for item in ordered if item.plugin == "builtin"]
        if not items:
            continue
        title = "strategies" if kind == "strategy" else kind.replace("_", " ") + "s"
        lines += [f"### Built-in {title}", ""]
        if kind == "loss_term":
            lines += ["| term | weight setting | default weight | needs counterfactuals | what it is |",
                      "|---|---|---|---|---|"]
            lines += [f"| `{t.name}` | `{t.weight_setting}` | {t.default_weight:g} | "
                      f"{'yes' if t.uses_counterfactuals else 'no'} | {_cell(t.description)} |"
                      for t in items if isinstance(t, LossTerm)]
        else:
            lines += ["| name | what it is |", "|---|---|"]
            lines += [f"| `{item.name}` | {_cell(item.description)} |" for item in items]
        lines.append("")
    return "\n".join(lines)


def settings_table() -> str:
    """The training settings (the table plugins' weights join), as Markdown."""
    lines = ["| setting | flag | default | accepts | only with counterfactuals | tune axis |",
             "|---|---|---|---|---|---|"]
    for row in TRAIN_SETTINGS:
        default = TRAIN_SETTINGS.default(row.name)
        shown = "" if default in (None, {}, []) else f"`{default}`"
        lines.append(f"| `{row.name}` | {f'`{row.cli_flag}`' if row.cli_flag else '-'} | {shown} | "
                     f"{_cell(row.words())} | {'yes' if row.ct_only else ''} | {'yes' if row.tunable else ''} |")
    return "\n".join(lines)


def plugin_docs() -> str:
    """The whole of ``docs/plugins.md``."""
    # the module docstring's paragraphs on versions and deprecation (the rest is "Writing one" below)
    paragraphs = (inspect.getdoc(hookspecs) or "").split("\n\n")
    intro = "\n\n".join(markdown(p) for p in paragraphs if p.startswith("**"))
    kinds = ["| kind | hook | its items |", "|---|---|---|"]
    kinds += [f"| {kind.replace('_', ' ')} | `{HOOK_OF_KIND[kind]}` | {BUILDS[kind]} |" for kind in KINDS]
    parts = [
        "# Plugins",
        "",
        "<!-- generated by `ct-plugin plugins --docs > docs/plugins.md` from the hook specifications, "
        "the registry and the settings table; edit those, not this file -->",
        "",
        f"Plugin API version **{hookspecs.API_VERSION}**.",
        "",
        intro,
        "",
        WHERE_TO_START,
        "## What a plugin can register",
        "",
        *kinds,
        "",
        builtin_items(),
        "## Hooks",
        "",
        *(_hook_section(name) for name in _hooks_in_order()),
        "## Training settings",
        "",
        "Every setting of `TrainConfig` (`ct_plugin.config.TRAIN_SETTINGS`); a plugin's loss term adds "
        "`lambda_<term>` beside them (stored in `term_weights`).",
        "",
        settings_table(),
        "",
    ]
    return "\n".join(parts)


def describe(item: PluginItem) -> dict[str, Any]:
    """An item as ``ct-plugin plugins --json`` shows it (a loss term with its weight setting and default)."""
    row: dict[str, Any] = {"name": item.name, "plugin": item.plugin, "available": item.available,
                           "reason": item.reason, "description": item.description}
    if isinstance(item, LossTerm):
        row.update(weight_setting=item.weight_setting, default_weight=item.default_weight,
                   uses_counterfactuals=item.uses_counterfactuals)
    return row


def cmd_plugins(args: argparse.Namespace) -> int:
    """``ct-plugin plugins``: every plugin, then every registered item by kind (loss terms with their weights)."""
    if args.docs:
        print(plugin_docs(), end="")
        return 0
    registry = get_registry()
    if args.json:
        payload: dict[str, Any] = {kind: [describe(i) for i in registry.items(kind)] for kind in KINDS}
        payload["plugins"] = [{"name": n, "source": s} for n, s in plugin_sources()]
        print(json.dumps(payload, indent=2))
        return 0
    print("plugins:")
    for name, source in plugin_sources():
        print(f"  {name:<12} {source}")
    for kind in KINDS:
        words = kind.replace("_", " ")
        print(f"\n{'strategies' if kind == 'strategy' else words + 's'}:")
        for item in registry.items(kind):
            status = "" if item.available else f"  [unavailable: {item.reason}]"
            weight = f" [{item.weight_setting} = {item.default_weight:g}]" if isinstance(item, LossTerm) else ""
            print(f"  {item.name:<28} ({item.plugin}) {item.description}{weight}{status}")
    return 0


def register(subparsers: Any, with_plugins: bool = True) -> None:
    """Add the ``plugins`` sub-command."""
    p = subparsers.add_parser("plugins", help="list registered generators, strategies, metrics, datasets, models")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--docs", action="store_true",
                   help="print the plugin reference (docs/plugins.md): hooks, item kinds, built-ins, settings")
    p.set_defaults(func=cmd_plugins)
