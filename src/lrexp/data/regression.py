"""Generated regression data with a known optimum: the seeds' linear regression and a convex
testbed whose design has an exact condition number.

Both are tensor data modules (index batches, planned without generating anything) whose
targets are real values shaped ``(N, 1)``. Each knows the least-squares optimum θ* of its
training set, so a run can log the excess loss L(θ) − L(θ*)
(:class:`lrexp.run.callbacks.ExcessLoss`): on the training set it is >= 0 and reaches 0
only at the optimum; on the test set it is measured against the same θ*, so it can be
negative.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor

from lrexp.data.batching import IndexBatches
from lrexp.data.resumable import TrainPosition
from lrexp.digests import tensors_digest

SPLITS = ("train", "val", "test")


def _positive(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value


class GeneratedRegression(TrainPosition, pl.LightningDataModule):
    """Train, validation and test sets drawn from one seed; batches by index on the device.

    ``batch_size: null`` trains full-batch (one step per epoch).
    """

    target_kind = "values"
    num_outputs = 1

    def __init__(
        self,
        features: int,
        samples: int,
        val_samples: int,
        test_samples: int,
        batch_size: int | None,
        noise: float,
        seed: int,
        shuffle_seed: int,
        name: str = "regression",
    ) -> None:
        super().__init__()
        self.features = _positive(features, "features")
        self.sizes = {
            "train": _positive(samples, "samples"),
            "val": _positive(val_samples, "val_samples"),
            "test": _positive(test_samples, "test_samples"),
        }
        self.batch_size = samples if batch_size is None else _positive(batch_size, "batch_size")
        if isinstance(noise, bool) or not isinstance(noise, int | float) or not noise >= 0:
            raise ValueError(f"noise must be a number >= 0, got {noise!r}")
        self.noise, self.seed, self.shuffle_seed, self.name = float(noise), seed, shuffle_seed, name
        self.splits: dict[str, tuple[Tensor, Tensor]] = {}
        self.optimum: Tensor | None = None  #: θ*, the training set's least-squares solution
        self._losses: dict[str, float] = {}
        self.input_shape = (self.features,)

    @abstractmethod
    def inputs(self, split: str, size: int, generator: torch.Generator) -> Tensor:
        """The split's design, (size, features)."""

    @abstractmethod
    def truth(self, generator: torch.Generator) -> Tensor:
        """The true coefficients, (features,)."""

    def planned_shape(self) -> tuple[tuple[int, ...], int]:
        return (self.features,), 1

    def planned_train_batches(self) -> int:
        return math.ceil(self.sizes["train"] / self.batch_size)

    def setup(self, stage: str | None = None) -> None:
        """Draw every split (float64 for the optimum, float32 for training); idempotent."""
        if self.splits:
            return
        generator = torch.Generator().manual_seed(self.seed)
        theta = self.truth(generator).double()
        drawn = {}
        for split in SPLITS:
            x = self.inputs(split, self.sizes[split], generator).double()
            y = x @ theta + self.noise * torch.randn(len(x), generator=generator, dtype=x.dtype)
            drawn[split] = (x, y.unsqueeze(1))
        x_train, y_train = drawn["train"]
        self.optimum = torch.linalg.lstsq(x_train, y_train).solution  # (features, 1)
        self.splits = {s: (x.float().contiguous(), y.float()) for s, (x, y) in drawn.items()}
        self._losses = {
            s: float(((x @ self.optimum - y) ** 2).mean()) for s, (x, y) in drawn.items()
        }

    def optimal_loss(self) -> dict[str, float]:
        """L(θ*) per split: the mean squared error of the training set's least-squares fit."""
        self.setup()
        return dict(self._losses)

    def full_split(self, split: str) -> tuple[Tensor, Tensor]:
        """The whole split, for the excess loss."""
        self.setup()
        return self.splits[split]

    def size(self, split: str) -> int:
        return self.sizes[split]

    def _batches(self, split: str, batch_size: int, **kwargs: Any) -> IndexBatches:
        x, y = self.splits[split]
        trainer = self.trainer
        if trainer is not None and x.device != trainer.strategy.root_device:
            x, y = x.to(trainer.strategy.root_device), y.to(trainer.strategy.root_device)
            self.splits[split] = (x, y)
        rank, world = (trainer.global_rank, trainer.world_size) if trainer else (0, 1)
        return IndexBatches(x, y, batch_size, rank=rank, world_size=world, **kwargs)

    def train_dataloader(self) -> IndexBatches:
        return self._batches(
            "train",
            self.batch_size,
            shuffle=True,
            seed=self.shuffle_seed,
            epoch=lambda: self.trainer.current_epoch if self.trainer else 0,
            start_at=self.resume_at,
        )

    def val_dataloader(self) -> IndexBatches:
        return self._batches("val", self.sizes["val"], shuffle=False)

    def test_dataloader(self) -> IndexBatches:
        return self._batches("test", self.sizes["test"], shuffle=False)

    def order_digest(self) -> str:
        """The first epoch's training order and the batch size."""
        y = torch.zeros(self.sizes["train"])  # the order depends on the size alone
        order = IndexBatches(y, y, self.batch_size, shuffle=True, seed=self.shuffle_seed).order(0)
        return tensors_digest([order], f"batch={self.batch_size}")


class SeedLinearRegression(GeneratedRegression):
    """The seed documents' example: x uniform in [0, 1)^features, y = x · coefficients +
    N(0, noise²); 100 training samples by default."""

    def __init__(
        self,
        coefficients: Sequence[float] = (2.0, 3.0),
        samples: int = 100,
        val_samples: int = 100,
        test_samples: int = 100,
        batch_size: int | None = None,
        noise: float = 0.05,
        seed: int = 0,
        shuffle_seed: int = 0,
        name: str = "seed_linear",
    ) -> None:
        self.coefficients = [float(c) for c in coefficients]
        super().__init__(
            len(self.coefficients),
            samples,
            val_samples,
            test_samples,
            batch_size,
            noise,
            seed,
            shuffle_seed,
            name,
        )

    def inputs(self, split: str, size: int, generator: torch.Generator) -> Tensor:
        return torch.rand(size, self.features, generator=generator, dtype=torch.float64)

    def truth(self, generator: torch.Generator) -> Tensor:
        return torch.tensor(self.coefficients, dtype=torch.float64)


class ConvexRegression(GeneratedRegression):
    """Least squares whose Hessian has an exact condition number.

    The training design is X = √n · U · diag(√λ) · Vᵀ with U (n × d) orthonormal columns, V a
    random rotation and λ geometric from 1 down to 1/``condition_number``: the Hessian of the
    mean squared error, 2·XᵀX/n, has eigenvalues 2λ, so its condition number is exactly
    ``condition_number``. Validation and test inputs are Gaussian with the same covariance.
    The true coefficients are N(0, 1/d); targets add N(0, noise²).
    """

    def __init__(
        self,
        samples: int = 1000,
        features: int = 20,
        condition_number: float = 100.0,
        noise: float = 0.5,
        val_samples: int = 500,
        test_samples: int = 500,
        batch_size: int | None = 10,
        seed: int = 0,
        shuffle_seed: int = 0,
        name: str = "convex",
    ) -> None:
        if (
            isinstance(condition_number, bool)
            or not isinstance(condition_number, int | float)
            or not 1 <= condition_number < math.inf
        ):
            raise ValueError(
                f"condition_number must be a finite number >= 1, got {condition_number!r}"
            )
        if isinstance(samples, int) and isinstance(features, int) and samples < features:
            raise ValueError(f"samples must be >= features ({features}), got {samples}")
        self.condition_number = float(condition_number)
        self.rotation: Tensor | None = None
        super().__init__(
            features,
            samples,
            val_samples,
            test_samples,
            batch_size,
            noise,
            seed,
            shuffle_seed,
            name,
        )

    def eigenvalues(self) -> Tensor:
        """λ: the design covariance's eigenvalues, from 1 down to 1/condition_number."""
        steps = torch.linspace(0, 1, self.features, dtype=torch.float64)
        return self.condition_number ** (-steps)

    def inputs(self, split: str, size: int, generator: torch.Generator) -> Tensor:
        d = self.features
        if self.rotation is None:  # drawn with the first (training) split
            self.rotation = torch.linalg.qr(
                torch.randn(d, d, generator=generator, dtype=torch.float64)
            ).Q
        scale = self.eigenvalues().sqrt()
        gaussian = torch.randn(size, d, generator=generator, dtype=torch.float64)
        if split == "train":
            columns = torch.linalg.qr(gaussian).Q  # orthonormal: XᵀX/n is exact
            return math.sqrt(size) * columns * scale @ self.rotation.T
        return gaussian * scale @ self.rotation.T

    def truth(self, generator: torch.Generator) -> Tensor:
        return torch.randn(self.features, generator=generator, dtype=torch.float64) / math.sqrt(
            self.features
        )
