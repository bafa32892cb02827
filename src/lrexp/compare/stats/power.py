"""Multiplicity and power: Holm-adjusted p, the smallest detectable Δ, the seeds a Δ needs.

After Holm, a comparison is tested at least at level α/m (m comparisons in the family, the
first Holm step), so the power figures use α/m: a conservative reading of "80 % power after
Holm". They use the t-test's power (``statsmodels``), and also require that the exact test
can reach α/m at all: with n pairs a two-sided signed-rank or sign-flip p is never below
2/2^n, so 3 seeds cannot show anything however large Δ is.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from lrexp.compare.stats import ALPHA, POWER

MAX_SEEDS = 10_000


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values (``multipletests(method="holm")``); NaN entries stay NaN and
    are not counted in the family."""
    from statsmodels.stats.multitest import multipletests

    finite = [i for i, p in enumerate(pvalues) if math.isfinite(p)]
    out = [math.nan] * len(pvalues)
    if finite:
        adjusted = multipletests([pvalues[i] for i in finite], alpha=ALPHA, method="holm")[1]
        for i, p in zip(finite, adjusted, strict=True):
            out[i] = float(p)
    return out


def min_p(n: int, paired: bool, n_other: int | None = None) -> float:
    """The smallest two-sided p an exact signed-rank (paired, n pairs) or rank-sum (unpaired,
    n and ``n_other`` values) test can give."""
    if paired:
        return min(1.0, 2.0 / 2.0**n)
    return min(1.0, 2.0 / math.comb(n + (n_other if n_other is not None else n), n))


def family_alpha(m: int) -> float:
    """The level of Holm's first step in a family of ``m`` tests."""
    return ALPHA / max(m, 1)


@lru_cache(maxsize=1024)
def detectable_effect(n: int, alpha: float, paired: bool, ratio: float) -> float:
    """The standardized effect a t-test detects with 80 % power (cached: it depends on the
    design only)."""
    from statsmodels.stats.power import TTestIndPower, TTestPower

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if paired:
            effect = TTestPower().solve_power(nobs=n, alpha=alpha, power=POWER)
        else:
            effect = TTestIndPower().solve_power(nobs1=n, ratio=ratio, alpha=alpha, power=POWER)
    return float(np.asarray(effect).item())


def mde(sd: float, n: int, m: int, paired: bool, n_other: int | None = None) -> float:
    """The smallest |Δ| detected with 80 % power at level α/m, from the observed sd (of the
    paired differences, or pooled): inf when the exact test cannot reach α/m with n seeds."""
    alpha = family_alpha(m)
    if n < 2 or not math.isfinite(sd):
        return math.nan
    if min_p(n, paired, n_other) > alpha:
        return math.inf
    ratio = 1.0 if paired or n_other is None else n_other / n
    return detectable_effect(n, alpha, paired, ratio) * sd


def seeds_needed(delta: float, sd: float, m: int, paired: bool) -> float:
    """Seeds (pairs, or per arm when unpaired) that detect |``delta``| with 80 % power at
    level α/m, when the seed-to-seed sd is ``sd``; inf beyond 10,000."""
    from statsmodels.stats.power import TTestIndPower, TTestPower

    alpha = family_alpha(m)
    if not (math.isfinite(sd) and math.isfinite(delta)) or delta == 0:
        return math.nan
    floor = 2
    while min_p(floor, paired) > alpha:
        floor += 1
    if sd == 0:
        return float(floor)
    effect = abs(delta) / sd
    test = TTestPower() if paired else TTestIndPower()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if test.power(effect, MAX_SEEDS, alpha) < POWER:
            return math.inf
        n = float(np.asarray(test.solve_power(effect_size=effect, alpha=alpha, power=POWER)).item())
    if not math.isfinite(n):
        return math.inf
    return float(max(floor, math.ceil(n)))
