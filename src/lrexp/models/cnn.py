"""Convolutional network for 1-D signals (C, L) and images (C, H, W)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


class CNN(nn.Module):
    """Conv-BatchNorm-ReLU blocks, each followed by 2x max-pooling while the signal is at
    least 4 wide, then a flattened linear head. Conv1d or Conv2d is chosen from the shape."""

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        channels: Sequence[int] = (32, 64, 128),
        kernel_size: int = 3,
        hidden: int = 128,
        dropout: float = 0.0,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        dims = len(input_shape) - 1
        if dims not in (1, 2):
            raise ValueError(f"CNN needs (C, L) or (C, H, W) inputs, got shape {input_shape}")
        if channels_last and dims != 2:
            raise ValueError(f"channels_last needs images (C, H, W), got shape {input_shape}")
        #: NHWC activations: faster convolutions on tensor-core GPUs, same results
        self.channels_last = channels_last
        conv, norm, pool = (
            (nn.Conv1d, nn.BatchNorm1d, nn.MaxPool1d)
            if dims == 1
            else (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d)
        )
        layers: list[nn.Module] = []
        in_channels, width = input_shape[0], min(input_shape[1:])
        for out_channels in channels:
            layers += [
                conv(in_channels, out_channels, kernel_size, padding=kernel_size // 2),
                norm(out_channels),
                nn.ReLU(),
            ]
            if width >= 4:
                layers.append(pool(2))
                width //= 2
            in_channels = out_channels
        self.features = nn.Sequential(*layers)
        with torch.no_grad():
            flat = self.features(torch.zeros(1, *input_shape)).numel()
        head: list[nn.Module] = [nn.Flatten(), nn.Linear(flat, hidden), nn.ReLU()]
        if dropout > 0:
            head.append(nn.Dropout(dropout))
        head.append(nn.Linear(hidden, num_classes))
        self.head = nn.Sequential(*head)
        if channels_last:
            self.to(memory_format=torch.channels_last)

    def forward(self, x: Tensor) -> Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.head(self.features(x))
