"""Exact mid-epoch resume for any data module: save where the epoch stands, start there.

A checkpoint written mid-epoch (a SIGTERM, ``keep_every_n_steps``) records the epoch and the
training batches done in it. A data module that mixes in :class:`TrainPosition` saves that
position and gets it back as :attr:`TrainPosition.resume_at`; one that serves a ``DataLoader``
passes it to a :class:`ResumableSampler`, whose next epoch then starts right after the
examples already seen. Without this, lrexp refuses a mid-epoch resume rather than train on a
different order (:mod:`lrexp.run.resume`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import Sampler


class TrainPosition:
    """Mixin for a ``LightningDataModule``: checkpoints carry (epoch, batches done in it)."""

    trainer: pl.Trainer | None
    #: (epoch, batches completed in it) of the checkpoint being resumed; None: a fresh start
    resume_at: tuple[int, int] | None = None

    def progress(self) -> tuple[int, int]:
        """(current epoch, training batches completed in it), from the trainer's counters."""
        if self.trainer is None:
            return 0, 0
        loop = self.trainer.fit_loop
        return (
            loop.epoch_progress.current.completed,
            loop.epoch_loop.batch_progress.current.completed,
        )

    def state_dict(self) -> dict[str, Any]:
        """Saved in checkpoints: where training stands, so a resume skips seen batches."""
        return {"train_position": list(self.progress())}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Lightning restores this before it first asks for the training batches."""
        epoch, completed = state_dict["train_position"]
        self.resume_at = (int(epoch), int(completed))


class ResumableSampler(Sampler[int]):
    """A seeded shuffle of ``range(size)``: epoch ``e`` uses the order of ``seed + e`` alone,
    so any epoch can be replayed, or continued after a resume (:meth:`resume`).

    Lightning calls :meth:`set_epoch` before every epoch. Its length stays ``size`` even for
    a continued epoch: Lightning counts a resumed epoch's batches from where it stopped.
    """

    def __init__(self, size: int, seed: int = 0, shuffle: bool = True) -> None:
        self.size, self.seed, self.shuffle = size, seed, shuffle
        self.epoch = 0
        self.start: tuple[int, int] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def resume(self, position: tuple[int, int] | None, batch_size: int) -> None:
        """Make the first iteration continue ``position`` = (epoch, batches done in it) of
        ``batch_size`` examples each (the next epoch when that one was complete)."""
        if position is not None:
            epoch, batches = position
            self.start = (epoch, batches * batch_size)

    def order(self, epoch: int) -> Tensor:
        """The sample order of ``epoch``."""
        if not self.shuffle:
            return torch.arange(self.size)
        return torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed + epoch))

    def __iter__(self) -> Iterator[int]:
        epoch, first = self.epoch, 0
        if self.start is not None:
            (epoch, first), self.start = self.start, None
            if first >= self.size:
                epoch, first = epoch + 1, 0
        yield from self.order(epoch)[first:].tolist()

    def __len__(self) -> int:
        return self.size
