"""Parts a user might bring that do less than lrexp asks for: a data module that cannot give
its order or restore its position, or has no test split, for tests of what lrexp then does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset


class TrainValDataModule(pl.LightningDataModule):
    """Gaussian blobs in DataLoaders that shuffle on their own: no order digest, no saved
    position, and only the two loaders the data contract asks for (no test split)."""

    def __init__(self, size: int = 400, batch_size: int = 32, classes: int = 2) -> None:
        super().__init__()
        self.size, self.batch_size, self.classes = size, batch_size, classes
        self.num_classes = classes
        self.input_shape = (4,)
        self.data: dict[str, TensorDataset] = {}

    def setup(self, stage: str | None = None) -> None:
        generator = torch.Generator().manual_seed(0)
        for split in ("train", "val", "test"):
            y = torch.randint(0, self.classes, (self.size,), generator=generator)
            x = torch.randn(self.size, 4, generator=generator) + y[:, None].float()
            self.data[split] = TensorDataset(x, y)

    def train_dataloader(self) -> DataLoader[tuple[Tensor, ...]]:
        return DataLoader(self.data["train"], batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader[tuple[Tensor, ...]]:
        return DataLoader(self.data["val"], batch_size=200)


class PlainDataModule(TrainValDataModule):
    """:class:`TrainValDataModule` with a test split."""

    def test_dataloader(self) -> DataLoader[tuple[Tensor, ...]]:
        return DataLoader(self.data["test"], batch_size=200)


class UncountedDataModule(PlainDataModule):
    """:class:`PlainDataModule` that does not say how many classes it has."""

    def __init__(self, size: int = 400, batch_size: int = 32, classes: int = 2) -> None:
        super().__init__(size, batch_size, classes)
        del self.num_classes


def warmup_then_linear(
    optimizer: torch.optim.Optimizer, num_warmup_steps: int, num_training_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A factory that takes the optimizer first, shaped like ``transformers``'
    ``get_linear_schedule_with_warmup``: linear warmup from 0, then linear decay to 0."""

    def factor(step: int) -> float:
        if step < num_warmup_steps:
            return step / max(1, num_warmup_steps)
        left = num_training_steps - step
        return max(0.0, left / max(1, num_training_steps - num_warmup_steps))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def plain_loop_lrs(
    steps: int, lr: float, make: Callable[[torch.optim.Optimizer], Any]
) -> list[float]:
    """The LR each optimizer step of a plain PyTorch loop uses, with the scheduler
    ``make(optimizer)`` stepped after every optimizer step."""
    net = torch.nn.Linear(4, 2)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    scheduler = make(optimizer)
    used = []
    for _ in range(steps):
        used.append(optimizer.param_groups[0]["lr"])
        net(torch.randn(3, 4)).sum().backward()
        optimizer.step()
        scheduler.step()
    return used
