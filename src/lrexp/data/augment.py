"""Light image augmentation applied to whole batches of tensors."""

from __future__ import annotations

import torch
from torch import Tensor

from lrexp.data.batching import Augment


def random_shift_flip(max_shift: int, flip: bool, fill: Tensor | float = 0.0) -> Augment | None:
    """Random translation by up to ``max_shift`` pixels in each direction and optional
    horizontal flip, drawn per sample; None when both are off.

    Pixels shifted in are ``fill``: a scalar or one value per channel (shape (C,)). For
    normalized images pass the normalized value of a black pixel, ``-mean / std``, so the
    result equals shifting the raw image with zero padding and normalizing afterwards.
    """
    if max_shift <= 0 and not flip:
        return None

    def apply(batch: Tensor, generator: torch.Generator) -> Tensor:
        n, channels, height, width = batch.shape
        if max_shift > 0:
            value = torch.as_tensor(fill, dtype=batch.dtype, device=batch.device)
            size = (n, channels, height + 2 * max_shift, width + 2 * max_shift)
            padded = value.reshape(1, -1, 1, 1).expand(size).clone()
            padded[..., max_shift : max_shift + height, max_shift : max_shift + width] = batch
            offsets = torch.randint(0, 2 * max_shift + 1, (2, n), generator=generator)
            offsets = offsets.to(batch.device)
            rows = offsets[0, :, None] + torch.arange(height, device=batch.device)
            cols = offsets[1, :, None] + torch.arange(width, device=batch.device)
            samples = torch.arange(n, device=batch.device)[:, None, None, None]
            channel = torch.arange(channels, device=batch.device)[None, :, None, None]
            batch = padded[samples, channel, rows[:, None, :, None], cols[:, None, None, :]]
        if flip:
            mask = torch.rand(n, generator=generator).to(batch.device) < 0.5
            batch = torch.where(mask[:, None, None, None], batch.flip(-1), batch)
        return batch

    return apply
