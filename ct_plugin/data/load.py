"""Loading datasets by name through the registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ct_plugin.data.spec import DatasetSpec
from ct_plugin.errors import CTPluginError
from ct_plugin.plugins.options import build_with_options
from ct_plugin.plugins.registry import LazyFactory, get_registry


def load_dataset(
    name: str,
    data_dir: str | Path | None = None,
    seed: int = 0,
    immutable: list[str] | tuple[str, ...] = (),
    increase_only: list[str] | tuple[str, ...] = (),
    decrease_only: list[str] | tuple[str, ...] = (),
    protect: bool = False,
    **options: Any,
) -> DatasetSpec:
    """Load a registered dataset into a :class:`DatasetSpec`.

    Args:
        name: ``moons``, ``circles``, ``linearly_separable``, ``overlapping``, ``digits``,
            ``breast_cancer``, ``adult``, ``gmsc``, ``california_housing``, ``credit_default``
            or a plugin's dataset.
        data_dir: folder of the real tables' CSV files (else ``$CT_PLUGIN_DATA``, else
            ``~/.cache/ct-plugin/data``); ignored by the synthetic and bundled sets.
        seed: seed of the data draw (synthetic sets) and of the train/test split.
        immutable, increase_only, decrease_only: feature names whose mutability to restrict.
        protect: make the dataset's protected features (the paper's ``age`` etc.) immutable.
        **options: loader options, e.g. ``n_samples``/``noise`` (synthetic), ``max_rows`` (tables).
    """
    item = get_registry().get("dataset", name)
    options_of = item.extra.get("options") if isinstance(item.extra, dict) else None
    if isinstance(options_of, LazyFactory):  # a lazily imported loader: its real signature types the options
        options_of = options_of.resolve()
    spec = build_with_options(
        "dataset", name, item.factory, signature_of=options_of, fixed={"data_dir": data_dir, "seed": seed}, **options
    )
    if not isinstance(spec, DatasetSpec):
        raise CTPluginError(f"dataset plugin {item.plugin!r} returned {type(spec).__name__}, not a DatasetSpec")
    return spec.with_mutability(immutable, increase_only, decrease_only, protect)
