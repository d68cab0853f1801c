"""Our binary model as a CARLA ``MLModel``: :class:`CarlaModel` (and :func:`as_carla_model`).

The wrapper presents a binary ct-plugin model as a CARLA ``MLModel`` (torch backend, N x 2
probabilities, class 1 the desired outcome, differentiable on tensor input). With a ``swapped``
data view it presents the class-swapped model, so that CARLA, which only searches towards
class 1, can search towards class 0 too.

Part of :mod:`ct_plugin.adapters.carla.wrappers` (which re-exports it). Importing this module
imports CARLA (through :func:`~ct_plugin.adapters.carla.compat.import_carla`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from ct_plugin.adapters.carla.compat import import_carla
from ct_plugin.adapters.carla.wrappers.data import SpecData
from ct_plugin.data.spec import DatasetSpec
from ct_plugin.errors import CTPluginError
from ct_plugin.torch_utils import check_logits, model_device

carla = import_carla()


class ProbabilityView(torch.nn.Module):
    """CARLA-space input -> N x 2 probabilities of our model (class-swapped when asked)."""

    def __init__(self, model: torch.nn.Module, data: SpecData):
        super().__init__()
        self.model = model
        matrix, bias = data.torch_map(model_device(model))
        self.register_buffer("matrix", matrix)
        self.register_buffer("bias", bias)
        self.swapped = data.swapped

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        z = u.to(self.matrix) @ self.matrix.T + self.bias
        probs = torch.softmax(self.model(z), dim=1)
        probs = probs.flip(1) if self.swapped else probs
        # CARLA puts its tensors on CUDA whenever it is available: answer on the input's device
        return probs.to(u.device)


class CarlaModel(carla.models.MLModel):
    """A binary ct-plugin model (encoded features -> 2 logits) as a CARLA ``MLModel``.

    The wrapper holds a reference to the live module: when the module is trained further,
    CARLA sees the new weights at once (no stale copy).
    """

    def __init__(self, model: torch.nn.Module, data: SpecData):
        if not isinstance(model, torch.nn.Module):
            raise CTPluginError(f"expected a torch.nn.Module, got {type(model).__name__}")
        if not isinstance(data, SpecData):
            raise CTPluginError(f"expected a SpecData, got {type(data).__name__}")
        out = output_width(model, data.spec.n_features)
        if out != 2:
            raise CTPluginError(
                f"the model has {out} outputs; CARLA supports binary classifiers only "
                "(2 logits, class 1 = the desired outcome)"
            )
        check_logits(model, data.spec.n_features, 2)
        super().__init__(data)
        self.module = model
        self._raw = ProbabilityView(model, data)

    @property
    def feature_input_order(self) -> list[str]:
        return list(self.data.columns)

    @property
    def backend(self) -> str:
        return "pytorch"

    @property
    def raw_model(self) -> torch.nn.Module:
        return self._raw

    def predict_proba(self, x: Any) -> Any:
        """N x 2 probabilities; a tensor in gives a differentiable tensor out, else a numpy array."""
        if torch.is_tensor(x):
            if x.ndim != 2:
                raise ValueError("Input shape has to be two-dimensional")
            return self._raw(x)
        if isinstance(x, pd.DataFrame):
            x = x[self.feature_input_order].to_numpy(dtype=np.float32)
        x = np.array(x, dtype=np.float32)  # a writable copy
        if x.ndim != 2:
            raise ValueError("Input shape has to be two-dimensional")
        with torch.no_grad():
            return self._raw(torch.as_tensor(x)).cpu().numpy()

    def predict(self, x: Any) -> Any:
        """Probability of class 1, shape N x 1."""
        return self.predict_proba(x)[:, 1].reshape((-1, 1))


def output_width(model: torch.nn.Module, n_features: int) -> int:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(2, n_features, device=model_device(model)))
    except Exception as exc:
        raise CTPluginError(f"the model failed on input of shape (2, {n_features}): {exc}") from exc
    finally:
        model.train(was_training)
    return int(out.shape[1]) if out.ndim == 2 else -1


def as_carla_model(model: torch.nn.Module, spec: DatasetSpec, *, swapped: bool = False) -> CarlaModel:
    """Our model + spec as a CARLA ``MLModel`` (``swapped=True``: the class-swapped view)."""
    return CarlaModel(model, SpecData(spec, swapped=swapped))
