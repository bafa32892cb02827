"""Fitting a law to observed curves as the papers do, and parameter resamples over seeds.

Objective: the Huber loss (delta 1e-3) of log(observed) − log(predicted), summed over every
observation of every curve (scaled by 1/(n·delta²), which does not move the minimum but keeps
L-BFGS-B's tolerances meaningful), minimized by ``scipy.optimize.minimize(method="L-BFGS-B")``
from the best few points of a grid (the grid is evaluated first, as the papers' grid search).
The parameters are optimized as logarithms (all are positive), with the exact gradient of
:mod:`lrexp.predict.laws`.

Intervals come from resampling seeds: each resample draws seeds with replacement, keeps every
curve of each drawn seed (a seed pairs the runs of all schedules), and refits from the best fit.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize
from scipy.special import huber

from lrexp.predict.laws import Array, Curve, Law, MultiPowerLaw, TissueLaw

HUBER_DELTA = 1e-3
#: bounds of each parameter (all are positive); the optimizer works on their logarithms
BOUNDS = {
    "L0": (1e-6, 1e3),
    "A": (1e-8, 1e6),
    "alpha": (1e-3, 5.0),
    "B": (1e-8, 1e9),
    "C": (1e-6, 1e6),
    "beta": (1e-3, 5.0),
    "gamma": (1e-3, 3.0),
}


@dataclass
class Fit:
    """A law's fitted parameters and how well they fit."""

    law: str
    params: dict[str, float]
    objective: float  #: the scaled Huber objective at the optimum
    points: int  #: observations fitted
    curves: int
    #: parameter vectors refitted on seed resamples (rows), for intervals
    resamples: list[list[float]] = field(default_factory=list)

    @property
    def theta(self) -> Array:
        return np.array(list(self.params.values()))

    def interval(self, level: float = 0.95) -> dict[str, tuple[float, float]]:
        """Percentile interval of each parameter over the seed resamples."""
        if not self.resamples:
            return {}
        rows = np.array(self.resamples)
        tail = 100 * (1 - level) / 2
        low, high = np.percentile(rows, [tail, 100 - tail], axis=0)
        return {
            name: (float(a), float(b)) for name, a, b in zip(self.params, low, high, strict=True)
        }


class Objective:
    """The scaled Huber objective of ``law`` over ``curves``, in log-parameters, with gradient."""

    def __init__(self, law: Law, curves: Sequence[Curve], delta: float = HUBER_DELTA) -> None:
        if not curves:
            raise ValueError("no curve to fit")
        self.law = law
        self.delta = delta
        if any(np.any(~(np.asarray(c.loss) > 0)) for c in curves):
            raise ValueError("the laws fit log(loss): every observed loss must be > 0")
        self.prepared = [law.prepare(c.lrs, c.steps) for c in curves]
        self.log_loss = [np.log(np.asarray(c.loss, dtype=np.float64)) for c in curves]
        self.points = sum(len(c.loss) for c in curves)
        if self.points == 0:
            raise ValueError("the curves have no observations")

    def __call__(self, z: Array) -> tuple[float, Array]:
        theta = np.exp(z)
        total = 0.0
        grad = np.zeros_like(theta)
        scale = 1.0 / (self.points * self.delta**2)
        for prepared, log_loss in zip(self.prepared, self.log_loss, strict=True):
            pred, jac = self.law.predict(theta, prepared)
            safe = np.maximum(pred, 1e-10)
            r = log_loss - np.log(safe)
            total += float(huber(self.delta, r).sum())
            dr = np.clip(r, -self.delta, self.delta) * (-1.0 / safe) * (pred > 1e-10)
            grad += dr @ jac
        if not np.isfinite(total):
            return 1e30, np.zeros_like(z)
        return total * scale, grad * theta * scale


def log_bounds(law: Law) -> list[tuple[float, float]]:
    return [(float(np.log(BOUNDS[p][0])), float(np.log(BOUNDS[p][1]))) for p in law.params]


def starts(law: Law, curves: Sequence[Curve]) -> list[Array]:
    """The grid of starting points, scaled to the data: L0 below the lowest loss, A from the
    first loss, B and C so that the loss drop is of the size of the observed range."""
    first = float(np.median([c.loss[0] for c in curves]))
    lowest = float(min(np.min(c.loss) for c in curves))
    peak = float(max(np.max(c.lrs) for c in curves))
    s1 = float(np.median([np.sum(c.lrs[: c.steps[0]]) for c in curves]))
    drop = max(first - lowest, 1e-6) / peak
    grid: list[Array] = []
    for l0_share, alpha in itertools.product((0.5, 0.9), (0.3, 0.6)):
        l0 = max(lowest * l0_share, BOUNDS["L0"][0] * 10)
        a = max(first - l0, 1e-6) * s1**alpha
        if isinstance(law, MultiPowerLaw):
            shares = itertools.product((0.1, 1.0), (1.0, 10.0), (0.4, 0.7), (0.3, 0.6))
            for b_share, c_scale, beta, gamma in shares:
                c = c_scale * peak**gamma / max(s1, 1e-12)
                grid.append(np.array([l0, a, alpha, b_share * drop, c, beta, gamma]))
        elif isinstance(law, TissueLaw):
            for c_share in (0.01, 0.1, 1.0):
                grid.append(np.array([l0, a, alpha, c_share * drop]))
        else:
            raise TypeError(f"no starting grid for {type(law).__name__}")
    low = np.array([BOUNDS[p][0] for p in law.params])
    high = np.array([BOUNDS[p][1] for p in law.params])
    return [np.clip(theta, low, high) for theta in grid]


def minimize_from(objective: Objective, theta: Array) -> tuple[Array, float]:
    """One L-BFGS-B run from ``theta``: (parameters, objective)."""
    result = minimize(
        objective,
        np.log(theta),
        jac=True,
        method="L-BFGS-B",
        bounds=log_bounds(objective.law),
        options={"maxiter": 3000, "ftol": 1e-13, "gtol": 1e-9},
    )
    return np.exp(result.x), float(result.fun)


def fit_law(
    law: Law, curves: Sequence[Curve], grid: Sequence[Array] | None = None, polish: int = 3
) -> Fit:
    """Evaluate the objective on every point of ``grid`` (default: :func:`starts`), then run
    L-BFGS-B from the ``polish`` best of them; the best result wins."""
    objective = Objective(law, curves)
    points = list(grid if grid is not None else starts(law, curves))
    values = [objective(np.log(theta))[0] for theta in points]
    best: tuple[Array, float] | None = None
    for index in np.argsort(values)[:polish]:
        found = minimize_from(objective, points[int(index)])
        if np.isfinite(found[1]) and (best is None or found[1] < best[1]):
            best = found
    if best is None:
        raise ValueError(f"{law.name}: no start gave a finite fit")
    params = {name: float(v) for name, v in zip(law.params, best[0], strict=True)}
    return Fit(law.name, params, best[1], objective.points, len(curves))


def seed_groups(curves: Sequence[Curve]) -> dict[str, list[Curve]]:
    """Curves by seed (a curve without a seed is its own group)."""
    groups: dict[str, list[Curve]] = {}
    for i, c in enumerate(curves):
        groups.setdefault(c.seed if c.seed is not None else f"curve{i}", []).append(c)
    return groups


def resample_seeds(
    law: Law, curves: Sequence[Curve], fit: Fit, resamples: int, rng: np.random.Generator
) -> Fit:
    """Refit on ``resamples`` draws of the seeds with replacement (from the best fit); the
    rows go into ``fit.resamples``. With one seed there is nothing to resample."""
    groups = list(seed_groups(curves).values())
    if len(groups) < 2:
        return fit
    for _ in range(resamples):
        drawn = rng.integers(len(groups), size=len(groups))
        sample = [c for i in drawn for c in groups[i]]
        theta, _ = minimize_from(Objective(law, sample), fit.theta)
        fit.resamples.append([float(v) for v in theta])
    return fit
