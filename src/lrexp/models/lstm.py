"""LSTM that reads images as sequences of rows and 1-D signals as sequences of chunks, and
models token sequences (a language model)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

READOUTS = ("last", "mean", "max")
INITS = ("orthogonal", "default")


class LSTM(nn.Module):
    """LSTM over the sequence axis, then an (optionally layer-normalized) linear classifier.

    Images (C, H, W) are read one row per time step (C*W features); 1-D signals (C, L) are
    read ``chunk`` consecutive samples per time step (C*chunk features, zero-padded at the end
    when ``chunk`` does not divide L). ``readout`` picks what the classifier sees: the
    element-wise ``max`` or ``mean`` of the top layer's outputs over time, or the ``last``
    hidden state of each direction. ``init="orthogonal"`` draws each gate's recurrent matrix
    orthogonal and its input matrix Xavier-uniform; ``forget_bias`` sets the forget-gate bias.

    Token ids (an input shape ``(T,)``, ``task=language_model``) are embedded in
    ``hidden_size`` features and read left to right; the head gives next-token logits at every
    step, ``(N, T, num_classes)``.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        hidden_size: int = 128,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        readout: str = "max",
        head_norm: bool = True,
        chunk: int = 4,
        forget_bias: float = 1.0,
        init: str = "orthogonal",
    ) -> None:
        super().__init__()
        if readout not in READOUTS:
            raise ValueError(f"readout must be one of {', '.join(READOUTS)}, got {readout!r}")
        if init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}, got {init!r}")
        if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
            raise ValueError(f"chunk must be an integer >= 1, got {chunk!r}")
        if len(input_shape) == 3:
            channels, _, width = input_shape
            features = channels * width
        elif len(input_shape) == 2:
            features = input_shape[0] * chunk
        elif len(input_shape) == 1:  # token ids: a language model
            if bidirectional:
                raise ValueError(
                    "a language model reads left to right: bidirectional must be false"
                )
            features = hidden_size
            self.embedding = nn.Embedding(num_classes, hidden_size)
        else:
            raise ValueError(
                f"LSTM needs (T,) tokens, (C, L) or (C, H, W) inputs, got shape {input_shape}"
            )
        self.image = len(input_shape) == 3
        self.tokens = len(input_shape) == 1
        self.chunk = chunk
        self.readout = readout
        self.lstm = nn.LSTM(
            features,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        with torch.no_grad():
            for name, param in self.lstm.named_parameters():
                gates = param.chunk(4)  # PyTorch's gate order: input, forget, cell, output
                if init == "orthogonal" and name.startswith("weight_hh"):
                    for gate in gates:
                        nn.init.orthogonal_(gate)
                elif init == "orthogonal" and name.startswith("weight_ih"):
                    for gate in gates:
                        nn.init.xavier_uniform_(gate)
                elif name.startswith("bias_ih"):
                    gates[1].fill_(forget_bias)
                elif name.startswith("bias_hh"):
                    gates[1].zero_()
        width = hidden_size * (2 if bidirectional else 1)
        head: list[nn.Module] = [nn.LayerNorm(width)] if head_norm else []
        self.head = nn.Sequential(*head, nn.Linear(width, num_classes))

    def to_sequence(self, x: Tensor) -> Tensor:
        """(N, C, H, W) -> (N, H, C*W); (N, C, L) -> (N, ceil(L/chunk), C*chunk)."""
        if self.image:
            n, c, h, w = x.shape
            return x.permute(0, 2, 1, 3).reshape(n, h, c * w)
        n, c, length = x.shape
        if length % self.chunk:
            x = F.pad(x, (0, self.chunk - length % self.chunk))
        steps = x.shape[-1] // self.chunk
        return x.reshape(n, c, steps, self.chunk).permute(0, 2, 1, 3).reshape(n, steps, -1)

    def forward(self, x: Tensor) -> Tensor:
        if self.tokens:
            return self.head(self.lstm(self.embedding(x.long()))[0])
        output, (hidden, _) = self.lstm(self.to_sequence(x))
        if self.readout == "max":
            features = output.amax(dim=1)
        elif self.readout == "mean":
            features = output.mean(dim=1)
        else:  # final state of each direction of the top layer: (D, N, H) -> (N, D*H)
            directions = 2 if self.lstm.bidirectional else 1
            features = hidden[-directions:].transpose(0, 1).flatten(1)
        return self.head(features)
