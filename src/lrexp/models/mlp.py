"""Multi-layer perceptron on flattened inputs."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor, nn

NORMS = ("none", "batch", "layer")


class MLP(nn.Module):
    """Flatten, then ``hidden_sizes`` Linear-[norm]-ReLU layers with dropout, then a linear
    classifier. ``norm`` is ``none``, ``batch`` (BatchNorm1d) or ``layer`` (LayerNorm)."""

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        hidden_sizes: Sequence[int] = (256, 256),
        dropout: float = 0.0,
        norm: str = "layer",
    ) -> None:
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(input_shape)
        for hidden in hidden_sizes:
            layers.append(nn.Linear(width, hidden))
            if norm == "batch":
                layers.append(nn.BatchNorm1d(hidden))
            elif norm == "layer":
                layers.append(nn.LayerNorm(hidden))
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = hidden
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
