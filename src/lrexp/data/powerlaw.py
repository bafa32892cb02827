"""Single-pass least squares with power-law spectra: the regime the loss-curve laws describe.

The Multi-Power Law and Tissue et al.'s law were derived for training that never repeats an
example, where the loss falls as a power of the LR area S₁ and an LR decay removes the
gradient-noise part of the loss. A small classifier trained for many epochs memorizes its data
instead (see the manual's "Predict before you run"). This data module gives the laws' own
regime on a CPU in seconds: Gaussian inputs whose covariance eigenvalues fall as i^(−a), true
coefficients whose signal per direction λᵢθᵢ² falls as i^(−b), and a training set sized so
that one epoch of ``steps`` batches sees each example once. Under gradient flow the excess
population loss then falls as S₁^(−(b−1)/a).
"""

from __future__ import annotations

import torch
from torch import Tensor

from lrexp.data.regression import GeneratedRegression, _positive


class PowerLawRegression(GeneratedRegression):
    """y = x·θ + N(0, noise²), x ~ N(0, diag(λ)), λᵢ = i^(−spectrum_decay),
    |θᵢ| = i^((spectrum_decay − signal_decay)/2) with random signs.

    ``steps`` × ``batch_size`` training examples: with ``trainer.max_epochs=1`` every optimizer
    step sees fresh data, so ``train/loss_window`` estimates the population loss.
    """

    def __init__(
        self,
        steps: int = 1000,
        batch_size: int = 16,
        features: int = 200,
        spectrum_decay: float = 1.5,
        signal_decay: float = 1.5,
        noise: float = 0.5,
        val_samples: int = 2000,
        test_samples: int = 2000,
        seed: int = 0,
        shuffle_seed: int = 0,
        name: str = "powerlaw",
    ) -> None:
        for key, value in (("spectrum_decay", spectrum_decay), ("signal_decay", signal_decay)):
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ValueError(f"{key} must be a number > 0, got {value!r}")
        if signal_decay <= 1:
            raise ValueError(
                f"signal_decay must be > 1 (a finite signal variance), got {signal_decay!r}"
            )
        self.steps = _positive(steps, "steps")
        self.spectrum_decay, self.signal_decay = float(spectrum_decay), float(signal_decay)
        super().__init__(
            features,
            self.steps * _positive(batch_size, "batch_size"),
            val_samples,
            test_samples,
            batch_size,
            noise,
            seed,
            shuffle_seed,
            name,
        )

    def eigenvalues(self) -> Tensor:
        """λᵢ = i^(−spectrum_decay), i = 1..features."""
        index = torch.arange(1, self.features + 1, dtype=torch.float64)
        return index ** (-self.spectrum_decay)

    def inputs(self, split: str, size: int, generator: torch.Generator) -> Tensor:
        gaussian = torch.randn(size, self.features, generator=generator, dtype=torch.float64)
        return gaussian * self.eigenvalues().sqrt()

    def truth(self, generator: torch.Generator) -> Tensor:
        index = torch.arange(1, self.features + 1, dtype=torch.float64)
        signs = torch.randint(0, 2, (self.features,), generator=generator) * 2 - 1
        return signs * index ** ((self.spectrum_decay - self.signal_decay) / 2)

    def population_loss(self, theta: Tensor) -> float:
        """E[(x·θ − y)²] = Σ λᵢ(θᵢ − θ*ᵢ)² + noise², exactly, for coefficients ``theta``."""
        generator = torch.Generator().manual_seed(self.seed)
        truth = self.truth(generator)
        gap = theta.double().flatten() - truth
        return float((self.eigenvalues() * gap**2).sum()) + self.noise**2

    def exponent(self) -> float:
        """The gradient-flow exponent of the excess loss in S₁: (b − 1)/a."""
        return (self.signal_decay - 1) / self.spectrum_decay
