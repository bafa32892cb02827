"""The convex bound against a brute-force evaluation of the published formula, and a published
qualitative fact (cosine's optimal base LR is about twice WSD's)."""

from __future__ import annotations

import numpy as np
import pytest

from lrexp.predict.bound import bound_curve, bound_terms, transfer_lr


def brute_bound(eta: list[float], lr: float, D: float, G: float) -> float:
    """Theorem 10 of Defazio et al. 2023 (as used by Schaipp et al. 2025), sum by sum."""
    T = len(eta)
    total = sum(eta)
    value = D**2 / (2 * lr * total) + lr * G**2 * sum(e * e for e in eta) / (2 * total)
    for k in range(T - 1):
        after = sum(eta[k + 1 :])
        tail_sq = sum(e * e for e in eta[k:])
        tail = sum(eta[k:])
        value += lr * G**2 / 2 * eta[k] / after * tail_sq / tail
    return value


def cosine(T: int) -> np.ndarray:
    return 0.5 * (1 + np.cos(np.pi * np.arange(T) / T))


def wsd(T: int, cooldown: float = 0.2) -> np.ndarray:
    """Constant, then a linear cooldown over the last ``cooldown`` share of the steps."""
    start = T - int(cooldown * T)
    t = np.arange(T)
    return np.where(t < start, 1.0, (T - t) / (T - start))


@pytest.mark.parametrize(
    "eta",
    [np.ones(7), cosine(9), wsd(10), np.array([0.1, 0.5, 1.0, 0.7, 0.2, 0.05]), np.ones(1)],
    ids=["constant", "cosine", "wsd", "ragged", "one-step"],
)
@pytest.mark.parametrize(("lr", "D", "G"), [(1.0, 1.0, 1.0), (0.3, 2.0, 0.5)])
def test_bound_equals_brute_force(eta: np.ndarray, lr: float, D: float, G: float) -> None:
    terms = bound_terms(eta, D, G)
    assert terms.at(lr) == pytest.approx(brute_bound([float(e) for e in eta], lr, D, G), rel=1e-12)
    # the optimum: no base LR on a fine grid does better, and it equals 2√(T₁(T₂+T₃))
    grid = np.geomspace(terms.optimal_lr / 10, terms.optimal_lr * 10, 2001)
    assert min(terms.at(g) for g in grid) >= terms.optimal_bound * (1 - 1e-12)
    assert terms.at(terms.optimal_lr) == pytest.approx(terms.optimal_bound, rel=1e-12)


def test_cosine_optimal_lr_is_about_twice_wsds() -> None:
    for T in (1000, 10000):
        ratio = bound_terms(cosine(T)).optimal_lr / bound_terms(wsd(T)).optimal_lr
        assert 1.75 < ratio < 2.05, (T, ratio)  # measured: 1.89


def test_horizon_transfer_lowers_the_lr_for_a_longer_run() -> None:
    # constant LR: γ* ∝ 1/√T up to log factors, so 4x the steps -> about half the LR
    moved = transfer_lr(0.1, np.ones(1000), np.ones(4000))
    assert 0.04 < moved < 0.06
    assert transfer_lr(0.1, wsd(1000), wsd(1000)) == pytest.approx(0.1, rel=1e-15)


def test_bound_curve_ends_at_the_full_bound() -> None:
    steps, values = bound_curve(cosine(500), lr=0.05, points=50)
    assert steps[-1] == 500 and len(steps) <= 50
    assert values[-1] == pytest.approx(bound_terms(cosine(500)).at(0.05), rel=1e-12)
