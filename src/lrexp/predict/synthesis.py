"""Synthesize a schedule: the non-increasing LR after warmup (peak, length and warmup fixed)
that minimizes a fitted law's predicted final loss, as a ``tabulated`` table.

The table has ``knots + 1`` evenly spaced positions; its values are products of ratios in
[0, 1] (value 0 is the peak, 1.0), so every candidate is non-increasing and the search is a
box-bounded L-BFGS-B problem. It starts from linear, cosine and WSD-like tables and keeps the
best result. The LR of update t after warmup is peak · interp(t / steps, at, values), exactly
what the ``tabulated`` family gives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from lrexp.predict.laws import Array, Law, predict_curve


@dataclass
class Synthesized:
    at: list[float]
    values: list[float]
    predicted: float  #: the law's final loss for this schedule
    lrs: Array  #: LR of every update (warmup included)


def table_lrs(warmup_lrs: Array, peak: float, steps: int, at: Array, values: Array) -> Array:
    """Warmup, then peak · values interpolated at t / steps for t = 0..steps-1."""
    decay = peak * np.interp(np.arange(steps) / steps, at, values)
    return np.concatenate((np.asarray(warmup_lrs, dtype=np.float64), decay))


def values_of(ratios: Array) -> Array:
    return np.concatenate(([1.0], np.cumprod(ratios)))


def ratios_of(values: Array) -> Array:
    values = np.maximum(values, 1e-12)
    return np.clip(values[1:] / values[:-1], 0.0, 1.0)


def optimize_schedule(
    law: Law, theta: Array, warmup_lrs: Array, peak: float, steps: int, knots: int = 20
) -> Synthesized:
    """The best non-increasing table for ``law`` with parameters ``theta``."""
    if steps < 2 or knots < 1:
        raise ValueError("needs at least 2 steps after warmup and 1 knot")
    at = np.round(np.linspace(0.0, 1.0, knots + 1), 12)  # 0.15, not 0.15000000000000002
    total = len(warmup_lrs) + steps
    last = np.array([total])

    def final(ratios: Array) -> float:
        lrs = table_lrs(warmup_lrs, peak, steps, at, values_of(ratios))
        return float(predict_curve(law, theta, lrs, last)[0])

    candidates = [
        1 - at,  # linear to 0
        0.5 * (1 + np.cos(np.pi * at)),  # cosine to 0
        np.where(at < 0.8, 1.0, (1 - at) / 0.2),  # WSD, 20 % linear cooldown
    ]
    best: tuple[Array, float] | None = None
    for start in candidates:
        result = minimize(
            final,
            ratios_of(np.maximum(start, 1e-3)),
            method="L-BFGS-B",
            bounds=[(0.0, 1.0)] * knots,
            options={"maxiter": 500},
        )
        if best is None or result.fun < best[1]:
            best = (np.asarray(result.x), float(result.fun))
    assert best is not None
    values = values_of(best[0])
    lrs = table_lrs(warmup_lrs, peak, steps, at, values)
    return Synthesized([float(a) for a in at], [float(v) for v in values], best[1], lrs)
