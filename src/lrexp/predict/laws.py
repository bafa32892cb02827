"""Loss-curve laws: the training loss after N optimizer updates as a function of the LR of every
update before it.

Convention: ``lrs[k]`` is the LR of update k (k = 0..T-1, the ``lr`` trace lrexp logs), and a
loss observed at step N (``train/loss_window`` is logged at step = updates so far) follows the
updates 0..N-1. So S₁(N) = Σ_{k<N} η_k, with the warmup included (as the Multi-Power Law
repository's own code does).

* :class:`MultiPowerLaw` (Luo et al., ICLR 2025):
  L(N) = L₀ + A·S₁^(−α) − B·Σ_{k=1}^{N−1} (η_{k−1} − η_k)·G(η_k^(−γ)·S_k(N)),
  S_k(N) = Σ_{τ=k}^{N−1} η_τ, G(x) = 1 − (C·x + 1)^(−β).
* :class:`TissueLaw` (Tissue et al. 2024, "Scaling law with learning rate annealing"):
  L(N) = L₀ + A·S₁^(−α) − C·S₂, S₂ = Σ_{i<N} m_i, m_i = λ·m_{i−1} + (η_{i−1} − η_i), where
  only the decrease after the peak LR counts as annealing (the warmup is not annealing).

Both return predictions and their gradient in the parameters (for L-BFGS-B).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray
from scipy.signal import lfilter

Array = NDArray[np.float64]

#: LRs below this fraction of the peak count as this fraction (η^(−γ) of a zero LR is infinite)
MIN_LR_FRACTION = 1e-10


@dataclass(frozen=True)
class Curve:
    """One run's observed training loss, with the LR of every update it took."""

    lrs: Array  #: LR of updates 0..T-1
    steps: NDArray[np.int64]  #: updates done at each observation (1..T)
    loss: Array  #: observed training loss at those steps
    label: str = ""  #: the configuration (schedule) the run belongs to
    seed: str | None = None
    run_id: str | None = None


def check_curve(lrs: Array, steps: NDArray[np.int64]) -> None:
    if lrs.ndim != 1 or not len(lrs) or np.any(lrs < 0) or not np.all(np.isfinite(lrs)):
        raise ValueError("lrs must be a non-empty 1-D array of finite LRs >= 0")
    if len(steps) and (steps.min() < 1 or steps.max() > len(lrs)):
        raise ValueError(f"steps must lie in 1..{len(lrs)} (updates done), got {steps.min()}..")


class Law(Protocol):
    """A loss-curve law: parameter names, starting points, and prediction with gradient."""

    name: str
    params: tuple[str, ...]

    def prepare(self, lrs: Array, steps: NDArray[np.int64]) -> Any:
        """What does not depend on the parameters, computed once per curve."""

    def predict(self, theta: Array, prepared: Any) -> tuple[Array, Array]:
        """(prediction at each step, its gradient: shape (steps, parameters))."""


@dataclass(frozen=True)
class _MPLData:
    s1: Array  # S₁ at each observation
    gaps: Array  # η_{k−1} − η_k for the updates k with a change
    eta: Array  # η_k of those updates (floored)
    log_eta: Array
    sk: Array  # S_k(N) per (observation, k), 0 where k >= N
    mask: Array  # 1 where k < N


class MultiPowerLaw:
    """The Multi-Power Law; parameters (L0, A, alpha, B, C, beta, gamma)."""

    name: str = "mpl"
    params: tuple[str, ...] = ("L0", "A", "alpha", "B", "C", "beta", "gamma")

    def prepare(self, lrs: Array, steps: NDArray[np.int64]) -> _MPLData:
        lrs = np.asarray(lrs, dtype=np.float64)
        steps = np.asarray(steps, dtype=np.int64)
        check_curve(lrs, steps)
        cumsum = np.cumsum(lrs)
        gaps = lrs[:-1] - lrs[1:]  # gap of update k = 1..T-1
        ks = np.nonzero(gaps)[0] + 1
        eta = np.maximum(lrs[ks], MIN_LR_FRACTION * lrs.max())
        last = cumsum[steps - 1]  # Σ_{τ<N} η_τ
        sk = last[:, None] - cumsum[ks - 1][None, :]
        mask = (ks[None, :] < steps[:, None]).astype(np.float64)
        return _MPLData(last, gaps[ks - 1], eta, np.log(eta), sk * mask, mask)

    def predict(self, theta: Array, prepared: Any) -> tuple[Array, Array]:
        L0, A, alpha, B, C, beta, gamma = theta
        d = prepared
        power = d.s1 ** (-alpha)
        eta_pow = d.eta ** (-gamma)
        x = C * eta_pow[None, :] * d.sk
        base = 1.0 + x
        decay = base ** (-beta)
        weighted = d.gaps[None, :] * d.mask
        drop = (weighted * (1.0 - decay)).sum(axis=1)
        pred = L0 + A * power - B * drop
        slope = weighted * beta * decay / base  # ∂G/∂x times the gap
        grad = np.empty((len(pred), 7))
        grad[:, 0] = 1.0
        grad[:, 1] = power
        grad[:, 2] = -A * power * np.log(d.s1)
        grad[:, 3] = -drop
        grad[:, 4] = -B * (slope * x).sum(axis=1) / C
        grad[:, 5] = -B * (weighted * decay * np.log(base)).sum(axis=1)
        grad[:, 6] = B * (slope * x * d.log_eta[None, :]).sum(axis=1)
        return pred, grad


@dataclass(frozen=True)
class _TissueData:
    s1: Array
    s2: Array


class TissueLaw:
    """Tissue et al.'s law; parameters (L0, A, alpha, C); ``decay`` is λ (0.999 in the paper)."""

    name: str = "tissue"
    params: tuple[str, ...] = ("L0", "A", "alpha", "C")

    def __init__(self, decay: float = 0.999) -> None:
        if not 0 <= decay < 1:
            raise ValueError(f"decay (lambda) must be in [0, 1), got {decay}")
        self.decay = decay

    def prepare(self, lrs: Array, steps: NDArray[np.int64]) -> _TissueData:
        lrs = np.asarray(lrs, dtype=np.float64)
        steps = np.asarray(steps, dtype=np.int64)
        check_curve(lrs, steps)
        drops = np.zeros_like(lrs)
        drops[1:] = lrs[:-1] - lrs[1:]
        drops[: int(np.argmax(lrs)) + 1] = 0.0  # up to the peak: warmup, not annealing
        momentum = lfilter([1.0], [1.0, -self.decay], drops)
        s2 = np.cumsum(momentum)
        return _TissueData(np.cumsum(lrs)[steps - 1], s2[steps - 1])

    def predict(self, theta: Array, prepared: Any) -> tuple[Array, Array]:
        L0, A, alpha, C = theta
        power = prepared.s1 ** (-alpha)
        pred = L0 + A * power - C * prepared.s2
        grad = np.column_stack(
            (np.ones_like(pred), power, -A * power * np.log(prepared.s1), -prepared.s2)
        )
        return pred, grad


LAWS: dict[str, type[MultiPowerLaw] | type[TissueLaw]] = {
    "mpl": MultiPowerLaw,
    "tissue": TissueLaw,
}


def make_law(name: str) -> MultiPowerLaw | TissueLaw:
    """The law ``name`` (``mpl`` or ``tissue``)."""
    if name not in LAWS:
        raise ValueError(f"unknown law {name!r}; known: {', '.join(LAWS)}")
    return LAWS[name]()


def predict_curve(
    law: Law, theta: Array, lrs: Array, steps: NDArray[np.int64] | None = None
) -> Array:
    """The law's loss after each of ``steps`` updates (default: after every update 1..T)."""
    lrs = np.asarray(lrs, dtype=np.float64)
    at = np.arange(1, len(lrs) + 1) if steps is None else np.asarray(steps, dtype=np.int64)
    return law.predict(np.asarray(theta, dtype=np.float64), law.prepare(lrs, at))[0]
