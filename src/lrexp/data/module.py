"""The data module: whole-dataset tensors, normalized once, batched by index on the device."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor

from lrexp.data.augment import random_shift_flip
from lrexp.data.batching import IndexBatches, SplitBatches
from lrexp.data.resumable import TrainPosition
from lrexp.data.sources import SOURCE_SHAPES, SOURCES, train_size
from lrexp.digests import tensors_digest
from lrexp.errors import ConfigError


@dataclass(frozen=True)
class DataSpec:
    """What the data module is configured with (mirrors ``conf/dataset/*.yaml``)."""

    name: str
    batch_size: int = 64
    eval_batch_size: int = 1000
    val_size: int = 200
    test_size: int = 360
    split_seed: int = 0
    shuffle_seed: int = 0
    data_dir: str = "data"
    download: bool = True
    verify: bool = True
    shift: int = 0
    flip: bool = False


class TensorDataModule(TrainPosition, SplitBatches, pl.LightningDataModule):
    """Loads a dataset once into tensors and serves index batches on the training device.

    Constructed from the keys of ``conf/dataset/<name>.yaml`` (:class:`DataSpec`'s fields). It
    plans its shape and batches per epoch without loading anything (:mod:`lrexp.data.describe`).
    """

    def __init__(self, name: str, **settings: Any) -> None:
        super().__init__()
        self.spec = DataSpec(name=name, **settings)
        self.splits: dict[str, tuple[Tensor, Tensor]] = {}
        self.num_classes = 0
        self.zero_value = torch.zeros(0)
        self.device = torch.device("cpu")

    def planned_shape(self) -> tuple[tuple[int, ...], int]:
        """(input shape, classes) of the source, known without loading it."""
        if not isinstance(self.spec.name, str) or self.spec.name not in SOURCE_SHAPES:
            raise ConfigError("dataset.name", f"must be one of {', '.join(SOURCE_SHAPES)}")
        return SOURCE_SHAPES[self.spec.name]

    def planned_train_batches(self) -> int:
        """Training batches per epoch, from the source's size; the same on every number of
        processes (each rank takes a strided shard of every global batch)."""
        size = self.spec.batch_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ConfigError("dataset.batch_size", f"must be an integer >= 1, got {size!r}")
        return math.ceil(train_size(asdict(self.spec)) / size)

    def setup(self, stage: str | None = None) -> None:
        """Read, split (seeded) and normalize the data; idempotent."""
        if self.splits:
            return
        spec = self.spec
        raw = SOURCES[spec.name](Path(spec.data_dir), spec.download, spec.verify, spec.test_size)
        order = torch.randperm(
            len(raw.y_train), generator=torch.Generator().manual_seed(spec.split_seed)
        )
        val, train = order[: spec.val_size], order[spec.val_size :]
        x_train = raw.x_train[train]
        channel_dims = [0, *range(2, x_train.ndim)]
        mean = x_train.mean(dim=channel_dims, keepdim=True)
        std = x_train.std(dim=channel_dims, keepdim=True).clamp_min(1e-8)

        def normalize(x: Tensor) -> Tensor:
            return ((x - mean) / std).contiguous()

        self.splits = {
            "train": (normalize(x_train), raw.y_train[train]),
            "val": (normalize(raw.x_train[val]), raw.y_train[val]),
            "test": (normalize(raw.x_test), raw.y_test),
        }
        self.num_classes = raw.num_classes
        # a raw 0 (black) pixel after normalization: what shifted-in pixels are filled with
        self.zero_value = (-mean / std).flatten()

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example, channels first: (C, H, W) for images, (C, L) for signals."""
        return tuple(self.splits["train"][0].shape[1:])

    def digest(self) -> str:
        """Short SHA-256 of every split's tensors: identical data gives an identical digest."""
        return tensors_digest(t for split in ("train", "val", "test") for t in self.splits[split])

    def order_digest(self) -> str:
        """Digest of the first epoch's training order and augmentation settings: runs that share
        it see the same batches (augmentation is seeded by shuffle seed, epoch and batch)."""
        spec = self.spec
        x, y = self.splits["train"]
        order = IndexBatches(x, y, spec.batch_size, shuffle=True, seed=spec.shuffle_seed).order(0)
        augment = f"batch={spec.batch_size},shift={spec.shift},flip={spec.flip}"
        return tensors_digest([order], augment)

    def train_dataloader(self) -> IndexBatches:
        spec = self.spec
        image = len(self.input_shape) == 3
        augment = random_shift_flip(spec.shift, spec.flip, self.zero_value) if image else None
        return self._train_batches(spec.batch_size, spec.shuffle_seed, augment=augment)

    def val_dataloader(self) -> IndexBatches:
        return self._batches("val", batch_size=self.spec.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> IndexBatches:
        return self._batches("test", batch_size=self.spec.eval_batch_size, shuffle=False)
