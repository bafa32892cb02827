"""A linear model: the seeds' linear regression and the convex testbed."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

INITS = ("zeros", "default")


class Linear(nn.Module):
    """y = x · θ (+ b): one ``nn.Linear`` on the flattened input.

    ``init: zeros`` starts at θ = 0 (the seed's example); ``default`` is PyTorch's. With
    ``log_weights`` the run logs every weight as ``theta/<i>`` at each validation (through
    :meth:`logged_values`).
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_outputs: int,
        bias: bool = False,
        init: str = "zeros",
        log_weights: bool = False,
    ) -> None:
        super().__init__()
        if init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}, got {init!r}")
        self.layer = nn.Linear(math.prod(input_shape), num_outputs, bias=bias)
        if init == "zeros":
            with torch.no_grad():
                self.layer.weight.zero_()
                if self.layer.bias is not None:
                    self.layer.bias.zero_()
        self.log_weights = log_weights

    def forward(self, x: Tensor) -> Tensor:
        return self.layer(x.flatten(1))

    def logged_values(self) -> dict[str, float]:
        """``theta/<i>``: the weights, when ``log_weights``."""
        if not self.log_weights:
            return {}
        weights = self.layer.weight.detach().flatten().tolist()
        return {f"theta/{i}": float(w) for i, w in enumerate(weights)}
