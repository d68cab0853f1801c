"""``ct-plugin datasets``: the registered datasets, where the real tables are looked for, downloads."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ct_plugin.cli.common import DATA_DIR_HELP
from ct_plugin.data import tabular
from ct_plugin.data.fetch import MNIST_SUBSET, REMOTE_FILES, RemoteFile, download_files
from ct_plugin.data.locate import find_file, search_path
from ct_plugin.errors import CTPluginError
from ct_plugin.plugins.registry import get_registry

COMMANDS = ("datasets",)


def cmd_datasets(args: argparse.Namespace) -> int:
    from ct_plugin.data.load import load_dataset  # pandas and torch: imported when the command runs

    if args.where:
        print("real tables are looked up in, in order (the first folder holding the file wins):")
        for i, (origin, folder) in enumerate(search_path(args.data_dir), 1):
            print(f"  {i}. {folder}  ({origin})")
        for name in tabular.TABLES:
            try:
                print(f"{name:<20} {tabular.table_path(name, args.data_dir)}")
            except CTPluginError:
                print(f"{name:<20} missing: {tabular.how_to_get(name)}")
        for name, remotes in REMOTE_FILES.items():
            print(f"{name:<20} {_where_files(name, remotes, args.data_dir)}")
        return 0
    if args.download:
        names = [*tabular.TABLES, *REMOTE_FILES] if args.download == ["all"] else args.download
        failed = []
        for name in names:
            if name not in REMOTE_FILES and name not in tabular.TABLES:
                failed.append(name)
                print(f"{name}: nothing to download by that name; choose from "
                      f"{', '.join([*tabular.TABLES, *REMOTE_FILES])} or all", file=sys.stderr)
                continue
            try:
                paths = download_files(name, args.data_dir) if name in REMOTE_FILES else [
                    tabular.download(name, args.data_dir)]
            except CTPluginError as exc:
                failed.append(name)
                print(f"{name}: {exc}", file=sys.stderr)
                continue
            print(f"downloaded {name} to {', '.join(map(str, paths))}")
        return 1 if failed else 0
    names = args.names or get_registry().names("dataset")
    for name in names:
        item = get_registry().get("dataset", name)
        needs = item.extra.get("needs_options") if isinstance(item.extra, dict) else None
        if needs and not args.names:  # a loader of the user's own file: nothing to load without its options
            print(f"{name:<20} {needs}")
            continue
        try:
            spec = load_dataset(name, data_dir=args.data_dir)
        except CTPluginError as exc:
            print(f"{name:<20} not available: {exc}")
            continue
        print(spec.summary())
        if args.verbose:
            print(f"    description: {item.description} (plugin {item.plugin})")
            protected = ", ".join(spec.protected) if len(spec.protected) <= 12 else f"{len(spec.protected)} columns"
            print(f"    classes: {', '.join(spec.class_names)}; protected: {protected or '-'}")
            shown = ", ".join(spec.continuous) if len(spec.continuous) <= 12 else f"{len(spec.continuous)} columns"
            print(f"    continuous: {shown}")
            for feature, levels in spec.categorical.items():
                print(f"    categorical {feature}: {', '.join(levels)}")
    return 0


def _where_files(name: str, remotes: tuple[RemoteFile, ...], data_dir: str | None) -> str:
    """Where the files of a downloadable dataset are, or which are missing and how to get them."""
    found, missing = [], []
    for remote in remotes:
        try:
            found.append(find_file(remote.file, data_dir))
        except CTPluginError:
            missing.append(remote.file)
    if not missing:
        return f"{found[0].parent} ({len(found)} files)"
    subset = next((folder / MNIST_SUBSET for _, folder in search_path(data_dir)
                   if (folder / MNIST_SUBSET).is_file()), None) if name == "mnist" else None
    if subset is not None:  # mnist reads the 5k subset where the IDX files are missing
        return f"{subset} (the 5k subset; the IDX files: --download mnist)"
    return f"missing {', '.join(missing)}: `ct-plugin datasets --download {name}`"


def register(subparsers: Any, with_plugins: bool = True) -> None:
    """Add the ``datasets`` sub-command."""
    p = subparsers.add_parser("datasets", help="list datasets with sizes and features")
    p.add_argument("names", nargs="*", help="datasets to show (default: all)")
    p.add_argument("--data-dir", help=DATA_DIR_HELP)
    p.add_argument("-v", "--verbose", action="store_true", help="show features, classes and protected features")
    p.add_argument("--download", nargs="+", metavar="NAME",
                   help="fetch real tables, uci_adult, mnist, fashion_mnist (or `all`) from their public origin "
                   "(online; checked by size, header and digest); a table without a direct download gets its exact "
                   "origin and file named")
    p.add_argument("--where", action="store_true", help="show the folders searched for the real tables, in order")
    p.set_defaults(func=cmd_datasets)
