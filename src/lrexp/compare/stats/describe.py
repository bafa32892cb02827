"""Per configuration: n, mean, median, sample sd and a 95 % BCa bootstrap CI of the mean."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from lrexp.compare.stats import CONFIDENCE, N_RESAMPLES, SEED

NAN = math.nan


@dataclass(frozen=True)
class Description:
    """What the verdict table says about one configuration's values."""

    n: int
    mean: float
    median: float
    sd: float
    ci_low: float
    ci_high: float


def bootstrap_ci(
    data: Sequence[np.ndarray],
    statistic: Callable[..., np.ndarray],
    *,
    method: str = "BCa",
    seed: int = SEED,
) -> tuple[float, float]:
    """A 95 % ``scipy.stats.bootstrap`` CI of a vectorized ``statistic(*data, axis)``.

    Each sample needs at least 3 values (NaN otherwise). Data whose resamples all give one
    value (every seed equal) get that value as both bounds, and a BCa interval that comes out
    undefined falls back to the percentile interval.
    """
    from scipy.stats import bootstrap

    if min(len(d) for d in data) < 3:
        return NAN, NAN
    point = float(statistic(*data, axis=-1))
    if all(np.all(d == d[0]) for d in data):
        return point, point
    for how in (method, "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = bootstrap(
                tuple(data),
                statistic,
                n_resamples=N_RESAMPLES,
                confidence_level=CONFIDENCE,
                method=how,
                vectorized=True,
                rng=np.random.default_rng(seed),
            )
        low, high = result.confidence_interval
        if math.isfinite(low) and math.isfinite(high):
            return float(low), float(high)
    return point, point  # every resample equal (e.g. P(beat) when one arm always wins)


def mean_ci(values: np.ndarray, seed: int = SEED) -> tuple[float, float]:
    """The 95 % BCa bootstrap CI of the mean."""
    return bootstrap_ci((values,), np.mean, seed=seed)


def describe(values: Sequence[float], seed: int = SEED) -> Description:
    """n, mean, median, sample sd (ddof 1) and the BCa CI of the mean of finite ``values``."""
    x = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    if x.size == 0:
        return Description(0, NAN, NAN, NAN, NAN, NAN)
    sd = float(np.std(x, ddof=1)) if x.size > 1 else NAN
    low, high = mean_ci(x, seed)
    return Description(int(x.size), float(np.mean(x)), float(np.median(x)), sd, low, high)
