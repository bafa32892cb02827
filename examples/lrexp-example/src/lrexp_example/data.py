"""Concentric rings in the plane, as a ``torch.utils.data.Dataset`` served by DataLoaders.

The data module fulfils lrexp's data contract (``lrexp.data.describe``): ``input_shape`` and
``num_classes`` after setup, ``order_digest()`` for paired comparisons, and, through
``lrexp.data.TrainPosition`` and ``lrexp.data.ResumableSampler``, an exact resume from a
checkpoint written in the middle of an epoch.
"""

from __future__ import annotations

import math

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from lrexp.data import ResumableSampler, TrainPosition
from lrexp.digests import tensors_digest


class RingsDataset(Dataset[tuple[Tensor, Tensor]]):
    """``size`` points on ``classes`` noisy rings of radius 1, 2, ...; the label is the ring."""

    def __init__(self, size: int, classes: int, noise: float, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.labels = torch.randint(0, classes, (size,), generator=generator)
        angle = torch.rand(size, generator=generator) * 2 * math.pi
        radius = 1.0 + self.labels.float() + noise * torch.randn(size, generator=generator)
        self.points = torch.stack((radius * angle.cos(), radius * angle.sin()), dim=1)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.points[index], self.labels[index]


class RingsDataModule(TrainPosition, pl.LightningDataModule):
    """Train, validation and test rings from one seed; the training order from ``shuffle_seed``."""

    def __init__(
        self,
        train_size: int = 2000,
        val_size: int = 500,
        test_size: int = 500,
        classes: int = 3,
        noise: float = 0.25,
        batch_size: int = 50,
        data_seed: int = 0,
        shuffle_seed: int = 0,
    ) -> None:
        super().__init__()
        self.sizes = {"train": train_size, "val": val_size, "test": test_size}
        self.classes, self.noise, self.batch_size = classes, noise, batch_size
        self.data_seed, self.shuffle_seed = data_seed, shuffle_seed
        self.splits: dict[str, RingsDataset] = {}
        self.input_shape = (2,)
        self.num_classes = classes

    def setup(self, stage: str | None = None) -> None:
        for offset, (split, size) in enumerate(self.sizes.items()):
            self.splits.setdefault(
                split, RingsDataset(size, self.classes, self.noise, self.data_seed + offset)
            )

    def sampler(self) -> ResumableSampler:
        return ResumableSampler(len(self.splits["train"]), seed=self.shuffle_seed)

    def train_dataloader(self) -> DataLoader[tuple[Tensor, Tensor]]:
        sampler = self.sampler()
        sampler.resume(self.resume_at, self.batch_size)  # a mid-epoch checkpoint's position
        return DataLoader(self.splits["train"], batch_size=self.batch_size, sampler=sampler)

    def val_dataloader(self) -> DataLoader[tuple[Tensor, Tensor]]:
        return DataLoader(self.splits["val"], batch_size=500)

    def test_dataloader(self) -> DataLoader[tuple[Tensor, Tensor]]:
        return DataLoader(self.splits["test"], batch_size=500)

    def order_digest(self) -> str:
        """The first epoch's order and the batch size: equal digests, equal batches."""
        return tensors_digest([self.sampler().order(0)], f"batch={self.batch_size}")
