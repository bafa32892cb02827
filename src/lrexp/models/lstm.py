"""LSTM that reads images as sequences of rows and 1-D signals as sequences of samples."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn


class LSTM(nn.Module):
    """LSTM over the sequence axis, classifying from the last time step's output."""

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        hidden_size: int = 128,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if len(input_shape) == 3:
            channels, _, width = input_shape
            features = channels * width
        elif len(input_shape) == 2:
            features = input_shape[0]
        else:
            raise ValueError(f"LSTM needs (C, L) or (C, H, W) inputs, got shape {input_shape}")
        self.image = len(input_shape) == 3
        self.lstm = nn.LSTM(
            features,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.head = nn.Linear(hidden_size * (2 if bidirectional else 1), num_classes)

    def to_sequence(self, x: Tensor) -> Tensor:
        """(N, C, H, W) -> (N, H, C*W); (N, C, L) -> (N, L, C)."""
        if self.image:
            n, c, h, w = x.shape
            return x.permute(0, 2, 1, 3).reshape(n, h, c * w)
        return x.transpose(1, 2)

    def forward(self, x: Tensor) -> Tensor:
        output, _ = self.lstm(self.to_sequence(x))
        return self.head(output[:, -1])
