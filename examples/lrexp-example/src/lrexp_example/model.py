"""A small model that lrexp sizes from the data: it takes ``input_shape`` and ``num_classes``
by name, so lrexp offers them."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor, nn


class RadialNet(nn.Module):
    """Two hidden layers of ``width`` tanh units on the flattened input."""

    def __init__(self, input_shape: Sequence[int], num_classes: int, width: int = 32) -> None:
        super().__init__()
        features = math.prod(input_shape)
        self.layers = nn.Sequential(
            nn.Flatten(),
            nn.Linear(features, width),
            nn.Tanh(),
            nn.Linear(width, width),
            nn.Tanh(),
            nn.Linear(width, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)
