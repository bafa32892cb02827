"""LSTM that reads images as sequences of rows and 1-D signals as sequences of samples."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

READOUTS = ("last", "mean", "max")


class LSTM(nn.Module):
    """LSTM over the sequence axis; the classifier reads the outputs of all time steps
    pooled by ``readout`` (``mean`` or ``max``) or the last step's output (``last``)."""

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        hidden_size: int = 128,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        readout: str = "last",
        forget_bias: float = 0.0,
        chunk: int = 1,
        init: str = "default",
        head_norm: bool = False,
    ) -> None:
        super().__init__()
        if len(input_shape) == 3:
            channels, _, width = input_shape
            features = channels * width
        elif len(input_shape) == 2:
            features = input_shape[0] * chunk
        else:
            raise ValueError(f"LSTM needs (C, L) or (C, H, W) inputs, got shape {input_shape}")
        if readout not in READOUTS:
            raise ValueError(f"readout must be one of {', '.join(READOUTS)}, got {readout!r}")
        self.image = len(input_shape) == 3
        self.readout = readout
        self.chunk = chunk
        self.lstm = nn.LSTM(
            features,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.init = init
        with torch.no_grad():
            for name, param in self.lstm.named_parameters():
                if init == "orthogonal" and name.startswith("weight_hh"):
                    for gate in param.chunk(4):
                        nn.init.orthogonal_(gate)
                elif init == "orthogonal" and name.startswith("weight_ih"):
                    for gate in param.chunk(4):
                        nn.init.xavier_uniform_(gate)
                elif forget_bias and name.startswith("bias_ih"):
                    param[hidden_size : 2 * hidden_size].fill_(forget_bias)
                elif forget_bias and name.startswith("bias_hh"):
                    param[hidden_size : 2 * hidden_size].zero_()
        width = hidden_size * (2 if bidirectional else 1)
        self.head = nn.Sequential(
            *([nn.LayerNorm(width)] if head_norm else []), nn.Linear(width, num_classes)
        )

    def to_sequence(self, x: Tensor) -> Tensor:
        """(N, C, H, W) -> (N, H, C*W); (N, C, L) -> (N, L, C)."""
        if self.image:
            n, c, h, w = x.shape
            return x.permute(0, 2, 1, 3).reshape(n, h, c * w)
        n, c, length = x.shape
        if length % self.chunk:
            x = F.pad(x, (0, self.chunk - length % self.chunk))
        return x.reshape(n, c, -1, self.chunk).permute(0, 2, 1, 3).reshape(n, -1, c * self.chunk)

    def forward(self, x: Tensor) -> Tensor:
        output, (hidden, _) = self.lstm(self.to_sequence(x))
        if self.readout == "mean":
            return self.head(output.mean(dim=1))
        if self.readout == "max":
            return self.head(output.amax(dim=1))
        # final state of each direction of the top layer: (directions, N, H) -> (N, directions*H)
        directions = 2 if self.lstm.bidirectional else 1
        return self.head(hidden[-directions:].transpose(0, 1).flatten(1))
