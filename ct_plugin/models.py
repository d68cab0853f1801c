"""Built-in model architectures: all map encoded features (n, d) to logits (n, K)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ct_plugin.errors import CTPluginError

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU, "elu": nn.ELU}
#: how a linear layer's weights start: PyTorch's default, or Flux's ``Dense`` default (the reference's)
INITS = ("torch", "glorot")


def _check_sizes(n_features: int, n_classes: int) -> None:
    if int(n_features) < 1:
        raise CTPluginError(f"n_features must be a positive integer, got {n_features}")
    if int(n_classes) < 2:
        raise CTPluginError(f"n_classes must be at least 2 (binary = 2 logits), got {n_classes}")


def logistic_regression(n_features: int, n_classes: int) -> nn.Module:
    """Multinomial logistic regression: one linear layer to K logits."""
    _check_sizes(n_features, n_classes)
    return nn.Linear(n_features, n_classes)


def mlp(n_features: int, n_classes: int, hidden: Sequence[int] | int = (32,), activation: str = "relu",
        init: str = "torch") -> nn.Module:
    """Multi-layer perceptron; default one hidden layer of 32 ReLU units (the reference's).

    ``init``: ``torch`` (PyTorch's default: uniform weights and biases scaled by the fan-in) or
    ``glorot`` (Flux's ``Dense`` default, the reference's: Glorot-uniform weights, zero biases).
    """
    _check_sizes(n_features, n_classes)
    if init not in INITS:
        raise CTPluginError(f"unknown init {init!r}; choose from {', '.join(INITS)}")
    hidden = [hidden] if isinstance(hidden, int) else list(hidden)
    if any(int(h) < 1 for h in hidden):
        raise CTPluginError(f"hidden layer sizes must be positive integers, got {hidden}")
    if activation not in ACTIVATIONS:
        raise CTPluginError(f"unknown activation {activation!r}; choose from {', '.join(ACTIVATIONS)}")
    layers: list[nn.Module] = []
    width = n_features
    for size in hidden:
        layers += [nn.Linear(width, int(size)), ACTIVATIONS[activation]()]
        width = int(size)
    layers.append(nn.Linear(width, n_classes))
    model = nn.Sequential(*layers)
    if init == "glorot":
        for layer in model:
            if isinstance(layer, nn.Linear):
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)
    return model


class SmallCNN(nn.Module):
    """LeNet-style CNN (as the paper's appendix mentions) for images given as flat encoded pixels.

    Two blocks of a 5x5 convolution (padding 2, so small images keep their size), ReLU and 2x2
    max-pooling (``channels`` wide), then ``hidden`` fully connected ReLU layers and the logits:
    LeNet-5's 6, 16 channels and 120, 84 units by default. ``image_shape`` is ``(H, W)`` or
    ``(C, H, W)`` (RGB included); the training code passes the dataset's own.
    """

    def __init__(self, n_features: int, n_classes: int, image_shape: Sequence[int],
                 channels: Sequence[int] = (6, 16), hidden: Sequence[int] = (120, 84)):
        super().__init__()
        _check_sizes(n_features, n_classes)
        shape = tuple(int(n) for n in image_shape)
        if len(shape) == 2:
            shape = (1, *shape)
        if len(shape) != 3 or shape[0] * shape[1] * shape[2] != n_features:
            raise CTPluginError(f"cnn: image_shape {tuple(image_shape)} does not hold the {n_features} input columns")
        channels, hidden = list(channels), list(hidden)
        if not channels or any(int(c) < 1 for c in [*channels, *hidden]):
            raise CTPluginError(f"cnn: channels and hidden must be positive integers, got {channels} and {hidden}")
        self.shape = shape
        blocks: list[nn.Module] = []
        width, side_h, side_w = shape
        for size in channels:
            if min(side_h, side_w) < 2:
                raise CTPluginError(f"cnn: a {shape[1]}x{shape[2]} image is too small for {len(channels)} pool blocks")
            blocks += [nn.Conv2d(width, int(size), 5, padding=2), nn.ReLU(), nn.MaxPool2d(2)]
            width, side_h, side_w = int(size), side_h // 2, side_w // 2
        self.features = nn.Sequential(*blocks)
        layers: list[nn.Module] = [nn.Flatten()]
        flat = width * side_h * side_w
        for size in hidden:
            layers += [nn.Linear(flat, int(size)), nn.ReLU()]
            flat = int(size)
        layers.append(nn.Linear(flat, n_classes))
        self.head = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x.reshape(-1, *self.shape)))


def cnn(n_features: int, n_classes: int, image_shape: Sequence[int] | None = None,
        channels: Sequence[int] = (6, 16), hidden: Sequence[int] = (120, 84)) -> nn.Module:
    """LeNet-style CNN (see :class:`SmallCNN`); needs image data (``image_shape``, given by training)."""
    if image_shape is None:
        raise CTPluginError(
            "model 'cnn' needs image data: a dataset with an image shape (digits, mnist, fashion_mnist, or "
            "from_arrays(..., image_shape=(C, H, W))); this dataset is a table: use mlp or logreg"
        )
    return SmallCNN(n_features, n_classes, image_shape, channels, hidden)
