"""CARLA catalog models as a starting point for CT, and CARLA's caches.

:func:`train_catalog_model`, :func:`catalog_logits` and :func:`to_carla_model` take a CARLA
``MLModelCatalog`` torch model (trained offline) as a starting point for CT and hand the
fine-tuned module back to CARLA; :func:`carla_home` points CARLA's caches at a temporary folder.

Part of :mod:`ct_plugin.adapters.carla.wrappers` (which re-exports it). Importing this module
imports CARLA (through :func:`~ct_plugin.adapters.carla.compat.import_carla`).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from ct_plugin.adapters.carla.compat import import_carla, quiet
from ct_plugin.adapters.carla.wrappers.data import SpecData
from ct_plugin.adapters.carla.wrappers.model import CarlaModel, as_carla_model
from ct_plugin.data.spec import DatasetSpec
from ct_plugin.errors import CTPluginError

carla = import_carla()


@contextlib.contextmanager
def carla_home(directory: str | None = None) -> Iterator[str]:
    """Point CARLA's caches (``CF_MODELS``, ``CF_DATA``) at ``directory`` (a fresh temporary one by
    default) inside the block, so nothing is written to ``~/carla`` and nothing stale is reused."""
    saved = {key: os.environ.get(key) for key in ("CF_MODELS", "CF_DATA")}
    with contextlib.ExitStack() as stack:
        if directory is None:
            directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="ct-plugin-carla-"))
        os.environ["CF_MODELS"] = os.path.join(directory, "models")
        os.environ["CF_DATA"] = os.path.join(directory, "data")
        try:
            yield directory
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def train_catalog_model(
    spec: DatasetSpec,
    *,
    model_type: str = "ann",
    hidden_size: Sequence[int] = (18, 9, 3),
    epochs: int = 10,
    learning_rate: float = 0.002,
    batch_size: int = 64,
    seed: int = 0,
) -> Any:
    """Train CARLA's own ``MLModelCatalog`` torch model offline (``load_online=False``) on ``spec``.

    Returns the catalog model; :func:`catalog_logits` turns it into a module over our encoding.
    """
    if model_type not in ("ann", "linear"):
        raise CTPluginError(f"model_type must be 'ann' or 'linear' for the torch backend, got {model_type!r}")
    data = SpecData(spec)
    torch.manual_seed(seed)
    with carla_home(), quiet():
        catalog = carla.MLModelCatalog(data, model_type, backend="pytorch", load_online=False)
        catalog.train(
            learning_rate=learning_rate,
            epochs=epochs,
            batch_size=batch_size,
            force_train=True,
            hidden_size=list(hidden_size),
        )
    catalog.raw_model.eval()
    return catalog


class CatalogLogits(torch.nn.Module):
    """A CARLA catalog torch model (ANN or linear) as a module over our encoding giving 2 logits.

    Shares its parameters with the catalog model: fine-tuning this module fine-tunes the
    catalog model, which CARLA then sees as well.
    """

    def __init__(self, catalog_model: Any, spec: DatasetSpec):
        super().__init__()
        if getattr(catalog_model, "backend", None) != "pytorch":
            raise CTPluginError("only CARLA catalog models with backend='pytorch' can be fine-tuned")
        data = SpecData(spec)
        order = list(catalog_model.feature_input_order)
        if sorted(order) != sorted(data.columns):
            raise CTPluginError(
                f"the catalog model's features {order} do not match dataset {spec.name!r} ({data.columns})"
            )
        self.net = catalog_model.raw_model
        position = [data.columns.index(name) for name in order]
        self.register_buffer("pick", torch.as_tensor(data._pick[position], dtype=torch.long))
        self.register_buffer("gain", torch.as_tensor(data._gain[position], dtype=torch.float32))
        self.register_buffer("offset", torch.as_tensor(data._offset[position], dtype=torch.float32))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        u = (z[:, self.pick] - self.offset) / self.gain
        if hasattr(self.net, "layers"):  # carla.models.catalog.ANN_TORCH.AnnModel
            x = u
            for i, layer in enumerate(self.net.layers):
                x = layer(x)
                if i < len(self.net.layers) - 1:
                    x = self.net.relu(x)
            return x
        if hasattr(self.net, "output"):  # carla.models.catalog.Linear_TORCH.LinearModel
            return self.net.output(u)
        raise CTPluginError(f"unsupported catalog network {type(self.net).__name__}")


def catalog_logits(catalog_model: Any, spec: DatasetSpec) -> CatalogLogits:
    """The torch module under a catalog model, mapping our encoded features to 2 logits (to fine-tune)."""
    return CatalogLogits(catalog_model, spec)


def to_carla_model(module: torch.nn.Module, spec: DatasetSpec) -> CarlaModel:
    """Hand a (fine-tuned) module over our encoding back to CARLA as an ``MLModel``."""
    return as_carla_model(module, spec)
