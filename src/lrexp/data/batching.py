"""Index batching over whole-dataset tensors: no DataLoader, no per-sample Python work."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor

Augment = Callable[[Tensor, torch.Generator], Tensor]


class IndexBatches:
    """Yields ``(x[idx], y[idx])`` batches from tensors already on the training device.

    The shuffle order of epoch ``e`` comes from ``seed + e`` alone and each batch's augmentation
    from (seed, epoch, batch index), so any epoch's batches can be reproduced, or skipped,
    exactly. Under data parallelism every rank takes its own strided shard of each global
    batch, so the global batch and the step count match a single process run.

    ``start_at=(epoch, completed)`` makes the first iteration continue a partly trained epoch
    right after its ``completed`` batches (the next epoch when it was complete).
    """

    def __init__(
        self,
        x: Tensor,
        y: Tensor,
        batch_size: int,
        *,
        shuffle: bool,
        seed: int = 0,
        epoch: Callable[[], int] = lambda: 0,
        augment: Augment | None = None,
        rank: int = 0,
        world_size: int = 1,
        start_at: tuple[int, int] | None = None,
    ) -> None:
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = epoch
        self.augment = augment
        self.rank, self.world_size = rank, world_size
        self.resume_at = start_at

    def __len__(self) -> int:
        return math.ceil(len(self.y) / self.batch_size)

    def order(self, epoch: int) -> Tensor:
        """Sample order of ``epoch`` (identity when not shuffling)."""
        if not self.shuffle:
            return torch.arange(len(self.y), device=self.y.device)
        generator = torch.Generator().manual_seed(self.seed + epoch)
        return torch.randperm(len(self.y), generator=generator).to(self.y.device)

    def start(self) -> tuple[int, int]:
        """(epoch, first batch index) of the iteration about to begin."""
        if self.resume_at is None:
            return self.epoch(), 0
        (epoch, completed), self.resume_at = self.resume_at, None
        return (epoch + 1, 0) if completed >= len(self) else (epoch, completed)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        epoch, first = self.start()
        order = self.order(epoch)
        for index in range(first, len(self)):
            idx = order[index * self.batch_size : (index + 1) * self.batch_size]
            if self.world_size > 1:
                idx = idx[self.rank :: self.world_size]
            xb = self.x[idx]
            if self.augment is not None:
                seed = hash((self.seed, epoch, index)) & 0x7FFF_FFFF_FFFF
                xb = self.augment(xb, torch.Generator().manual_seed(seed))
            yield xb, self.y[idx]


class SplitBatches:
    """Mixin for a data module that holds each split whole as tensors, ``splits[name] = (x,
    y)``: moves a split to the training device once and serves it as :class:`IndexBatches`,
    each process its strided shard of every global batch."""

    splits: dict[str, tuple[Tensor, Tensor]]
    trainer: Any
    resume_at: tuple[int, int] | None  #: :class:`lrexp.data.resumable.TrainPosition`'s
    #: where batches are served when no Trainer is attached (a plain loop, a benchmark)
    device: torch.device = torch.device("cpu")

    def size(self, split: str) -> int:
        return len(self.splits[split][1])

    def _on_device(self, split: str) -> tuple[Tensor, Tensor]:
        device = self.trainer.strategy.root_device if self.trainer is not None else self.device
        x, y = self.splits[split]
        if x.device != device:
            x, y = x.to(device), y.to(device)
            self.splits[split] = (x, y)
        return x, y

    def _batches(self, split: str, **kwargs: Any) -> IndexBatches:
        x, y = self._on_device(split)
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer else (0, 1)
        return IndexBatches(x, y, rank=rank, world_size=world, **kwargs)

    def _train_batches(self, batch_size: int, seed: int, **kwargs: Any) -> IndexBatches:
        """The training split in a seeded order (``seed + epoch``), continuing a resumed
        epoch where it stopped."""
        return self._batches(
            "train",
            batch_size=batch_size,
            shuffle=True,
            seed=seed,
            epoch=lambda: self.trainer.current_epoch if self.trainer else 0,
            start_at=self.resume_at,
            **kwargs,
        )
