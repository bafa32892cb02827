"""The convex last-iterate bound of a schedule (Schaipp et al., ICML 2025; Theorem 10 of
Defazio et al. 2023), its optimal base LR and horizon transfer.

For SGD with step sizes γ·η_t (t = 1..T) on a convex problem with ‖x₁ − x*‖ ≤ D and gradient
norms ≤ G, the last iterate satisfies E[f(x_T)] − f* ≤ T₁/γ + γ·(T₂ + T₃) with

    T₁ = D² / (2 Σ_{t=1}^T η_t)
    T₂ = G² Σ_{t=1}^T η_t² / (2 Σ_{t=1}^T η_t)
    T₃ = (G²/2) Σ_{k=1}^{T−1} η_k / (Σ_{t=k+1}^T η_t) · (Σ_{t=k}^T η_t²) / (Σ_{t=k}^T η_t)

computed here in O(T) with cumulative sums. The bound is minimized by γ* = √(T₁/(T₂+T₃)),
where it equals 2√(T₁(T₂+T₃)). Since only ratios of γ* matter for a transfer, D = G = 1 by
default: a LR tuned for one schedule (length, cooldown) becomes lr · γ*(new) / γ*(old).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lrexp.predict.laws import Array


@dataclass(frozen=True)
class BoundTerms:
    """The three terms of the bound for base LR 1 (the bound at γ is t1/γ + γ·(t2 + t3))."""

    t1: float
    t2: float
    t3: float

    @property
    def optimal_lr(self) -> float:
        """γ* = √(T₁/(T₂+T₃)), the base LR that minimizes the bound."""
        return float(np.sqrt(self.t1 / (self.t2 + self.t3)))

    @property
    def optimal_bound(self) -> float:
        """The bound at γ*: 2√(T₁(T₂+T₃))."""
        return float(2 * np.sqrt(self.t1 * (self.t2 + self.t3)))

    def at(self, lr: float) -> float:
        """The bound at base LR ``lr``."""
        return self.t1 / lr + lr * (self.t2 + self.t3)


def bound_terms(multipliers: Array, D: float = 1.0, G: float = 1.0) -> BoundTerms:
    """The bound's terms for the schedule ``multipliers`` (η_1..η_T, the LR of each update
    divided by the base LR), in O(T)."""
    eta = np.asarray(multipliers, dtype=np.float64)
    if eta.ndim != 1 or len(eta) == 0 or np.any(eta < 0) or not eta.sum() > 0:
        raise ValueError("the schedule must be a non-empty 1-D array of LRs >= 0, not all 0")
    total = eta.sum()
    squares = eta**2
    tail = np.cumsum(eta[::-1])[::-1]  # Σ_{t=k}^T η_t
    tail_sq = np.cumsum(squares[::-1])[::-1]  # Σ_{t=k}^T η_t²
    after = tail[1:]  # Σ_{t=k+1}^T η_t for k = 1..T-1
    head = eta[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(head > 0, head / after * tail_sq[:-1] / tail[:-1], 0.0)
    t3 = G**2 / 2 * float(np.sum(terms))
    return BoundTerms(D**2 / (2 * total), G**2 * float(squares.sum()) / (2 * total), t3)


def bound_curve(multipliers: Array, lr: float, points: int = 200) -> tuple[Array, Array]:
    """(steps, bound at base LR ``lr`` of the schedule stopped after that many updates): the
    bound's curve, on up to ``points`` steps."""
    eta = np.asarray(multipliers, dtype=np.float64)
    first = int(np.argmax(eta > 0)) + 1
    steps = np.unique(np.linspace(first, len(eta), min(points, len(eta))).astype(int))
    values = np.array([bound_terms(eta[:n]).at(lr) for n in steps])
    return steps, values


def transfer_lr(lr: float, tuned_for: Array, target: Array) -> float:
    """The LR for schedule ``target`` that keeps the ratio to the bound's optimum that ``lr``
    had for ``tuned_for``: lr · γ*(target) / γ*(tuned_for)."""
    return lr * bound_terms(target).optimal_lr / bound_terms(tuned_for).optimal_lr
