"""Both directions between ct-plugin and CARLA 0.0.5: data, models, catalog models.

* :class:`SpecData` presents a :class:`~ct_plugin.data.spec.DatasetSpec` as a CARLA ``Data``
  in CARLA's own conventions: continuous features min-max scaled to [0, 1] and binary
  categoricals as one column (``OneHotEncoder(drop="if_binary")``), label column included.
  The min-max range of each continuous feature is the spec's domain bound, so CARLA's
  clamping to [0, 1] is exactly our domain constraint. The map between CARLA's space and our
  standardised encoding is affine and exact both ways (:meth:`SpecData.to_carla`,
  :meth:`SpecData.from_carla`).
* :class:`CarlaModel` presents a binary ct-plugin model as a CARLA ``MLModel`` (torch backend,
  N x 2 probabilities, class 1 the desired outcome, differentiable on tensor input). With a
  ``swapped`` data view it presents the class-swapped model, so that CARLA, which only searches
  towards class 1, can search towards class 0 too.
* :func:`train_catalog_model`, :func:`catalog_logits` and :func:`to_carla_model` take a CARLA
  ``MLModelCatalog`` torch model (trained offline) as a starting point for CT and hand the
  fine-tuned module back to CARLA.

The three parts live in modules of their own, and this package's face lists their public names:
:mod:`~ct_plugin.adapters.carla.wrappers.data` (``SpecData``, ``check_spec``),
:mod:`~ct_plugin.adapters.carla.wrappers.model` (``CarlaModel``, ``as_carla_model``) and
:mod:`~ct_plugin.adapters.carla.wrappers.catalog` (catalog models, ``carla_home``).

Importing this module imports CARLA (through :func:`~ct_plugin.adapters.carla.compat.import_carla`).
"""

from __future__ import annotations

from ct_plugin.adapters.carla.compat import import_carla
from ct_plugin.adapters.carla.wrappers.catalog import (
    CatalogLogits,
    carla_home,
    catalog_logits,
    to_carla_model,
    train_catalog_model,
)
from ct_plugin.adapters.carla.wrappers.data import RESERVED_TARGET, SpecData, check_spec
from ct_plugin.adapters.carla.wrappers.model import CarlaModel, as_carla_model

carla = import_carla()

__all__ = [
    "RESERVED_TARGET",
    "CarlaModel",
    "CatalogLogits",
    "SpecData",
    "as_carla_model",
    "carla",
    "carla_home",
    "catalog_logits",
    "check_spec",
    "to_carla_model",
    "train_catalog_model",
]
