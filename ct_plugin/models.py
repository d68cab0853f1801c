"""Built-in model architectures: all map encoded features (n, d) to logits (n, K)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ct_plugin.errors import CTPluginError

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU, "elu": nn.ELU}


def _check_sizes(n_features: int, n_classes: int) -> None:
    if int(n_features) < 1:
        raise CTPluginError(f"n_features must be a positive integer, got {n_features}")
    if int(n_classes) < 2:
        raise CTPluginError(f"n_classes must be at least 2 (binary = 2 logits), got {n_classes}")


def logistic_regression(n_features: int, n_classes: int) -> nn.Module:
    """Multinomial logistic regression: one linear layer to K logits."""
    _check_sizes(n_features, n_classes)
    return nn.Linear(n_features, n_classes)


def mlp(n_features: int, n_classes: int, hidden: Sequence[int] | int = (32,), activation: str = "relu") -> nn.Module:
    """Multi-layer perceptron; default one hidden layer of 32 ReLU units (the reference's)."""
    _check_sizes(n_features, n_classes)
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
    return nn.Sequential(*layers)


class SmallCNN(nn.Module):
    """LeNet-style CNN for square grey images given as flat encoded pixels (e.g. 8x8 digits)."""

    def __init__(self, n_features: int, n_classes: int, channels: int = 16, hidden: int = 64):
        super().__init__()
        _check_sizes(n_features, n_classes)
        side = int(round(n_features**0.5))
        if side * side != n_features or side < 4:
            raise CTPluginError(f"cnn needs a square image of at least 4x4 pixels; got {n_features} features")
        self.side = side
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(channels * (side // 2) ** 2, hidden), nn.ReLU(), nn.Linear(hidden, n_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x.view(-1, 1, self.side, self.side)))


def cnn(n_features: int, n_classes: int, channels: int = 16, hidden: int = 64) -> nn.Module:
    """Small CNN (see :class:`SmallCNN`)."""
    return SmallCNN(n_features, n_classes, channels, hidden)
