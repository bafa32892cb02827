"""One arm against a baseline: Δ, P(beat), a test of Δ = 0, TOST and the verdict.

Paired (runs of the two arms share each seed and are proven to start alike): the
differences d = arm − baseline over the shared seeds give Δ = mean(d) with a BCa bootstrap
CI, P(beat) = share of seeds where the arm wins (ties count half) with a percentile bootstrap
CI, the p of Δ = 0 and ``ttost_paired``. The p comes from one of two tests (``test``):

* ``rank``: the signed-rank test (``scipy.stats.wilcoxon``: exact without ties or zeros, else
  an exact sign-flip enumeration up to 16 pairs). It assumes nothing about the shape of the
  differences, but its smallest two-sided p with n pairs is 2/2^n: with fewer than 6 pairs
  no effect, however large, reaches p < 0.05;
* ``t``: the paired t-test (``scipy.stats.ttest_1samp`` on d), whose power grows with the
  size of the effect against the spread, not only with n. It assumes normal differences;
* ``auto`` (the default): the rank test from :data:`RANK_FROM` pairs on, where it can reach
  p < 0.05 and keeps the familywise α even against a best-mean baseline; the t-test below,
  where the rank test could call nothing. The report names the test each comparison used,
  and the Shapiro-Wilk p of the differences (``scipy.stats.shapiro``, from 3 pairs) checks
  the t-test's assumption: a t-test on differences it rejects is flagged as approximate.

Unpaired (the fallback when the pairing is not proven): Δ = difference of the means with an
independent BCa bootstrap CI, P(beat) = P(arm > baseline) over all pairs of runs, the
rank-sum p (``scipy.stats.mannwhitneyu``, exact or permutation; Welch's t-test with
``test=t``) and ``ttost_ind``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lrexp.compare.stats import ALPHA, SEED
from lrexp.compare.stats.describe import bootstrap_ci

EXACT_RESAMPLES = 2**16  # permutation tests enumerate every sign flip up to 16 pairs
NAN = math.nan
#: the tests of Δ = 0 a comparison may use (see the module's docstring)
TESTS = ("auto", "rank", "t")
#: a t-test's differences that Shapiro-Wilk rejects at this level are flagged
NORMALITY_ALPHA = 0.05
#: ``auto`` takes the rank test from this many pairs on: the first n whose smallest
#: signed-rank p, 2/2^n, is below α = 0.05
RANK_FROM = 6


@dataclass(frozen=True)
class PairStats:
    """The numbers of one comparison, before multiplicity adjustment."""

    paired: bool
    n: int  # pairs when paired, else the arm's runs
    n_base: int  # pairs when paired, else the baseline's runs
    delta: float
    delta_low: float
    delta_high: float
    p_beat: float
    p_beat_low: float
    p_beat_high: float
    p: float
    tost_p: float
    sd: float  # sd of the paired differences, or the pooled sd
    test: str = "signed-rank"  #: the test that gave ``p``: signed-rank, t, rank-sum, welch-t
    normality_p: float = NAN  #: Shapiro-Wilk p of the paired differences (from 3 pairs)


def _beat_share(d: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean((d > 0) + 0.5 * (d == 0), axis=axis)


def _beat_all_pairs(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    diff = np.expand_dims(a, -1) - np.expand_dims(b, -2)
    return np.mean((diff > 0) + 0.5 * (diff == 0), axis=(-2, -1))


def _mean_diff(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(a, axis=axis) - np.mean(b, axis=axis)


def _has_ties(values: np.ndarray) -> bool:
    return len(np.unique(values)) < len(values)


def _rank_sum_of_positives(d: np.ndarray, axis: int = -1) -> np.ndarray:
    """The signed-rank statistic R+ (vectorized: sign flips leave the ranks of |d| alone)."""
    from scipy.stats import rankdata

    return np.sum((d > 0) * rankdata(np.abs(d), axis=axis), axis=axis)


def _rank_sum(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    """The rank sum of ``a`` in the pooled sample (the Mann-Whitney U plus a constant)."""
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([a, b], axis=axis), axis=axis)
    return np.sum(ranks[..., : a.shape[axis]], axis=axis)


def _permutation_p(data: tuple[np.ndarray, ...], statistic: object, kind: str, seed: int) -> float:
    from scipy.stats import permutation_test

    result = permutation_test(
        data,
        statistic,
        permutation_type=kind,
        vectorized=True,
        n_resamples=EXACT_RESAMPLES,
        rng=np.random.default_rng(seed),
    )
    return float(result.pvalue)


def signed_rank_p(d: np.ndarray, seed: int = SEED) -> float:
    """Two-sided Wilcoxon signed-rank p of the paired differences ``d``: scipy's exact
    distribution without ties or zeros; otherwise zeros are dropped (scipy's ``wilcox``) and
    the same statistic is referred to every sign flip (``permutation_test``, exact up to 16
    pairs), which equals ``wilcoxon(d, method=PermutationMethod(...))`` and is vectorized."""
    from scipy.stats import wilcoxon

    d = np.asarray(d, dtype=float)
    if d.size == 0:
        return NAN
    nonzero = d[d != 0]
    if nonzero.size < 2:  # one sign flip or none: p is 1
        return 1.0
    if nonzero.size == d.size and not _has_ties(np.abs(d)):
        return float(wilcoxon(d, method="exact").pvalue)
    return _permutation_p((nonzero,), _rank_sum_of_positives, "samples", seed)


def rank_sum_p(a: np.ndarray, b: np.ndarray, seed: int = SEED) -> float:
    """Two-sided Mann-Whitney p: scipy's exact distribution without ties, else a permutation
    test of the rank sum (exact while the splits number at most 2^16)."""
    from scipy.stats import mannwhitneyu

    if a.size == 0 or b.size == 0:
        return NAN
    both = np.concatenate([a, b])
    if both.size < 3 or np.all(both == both[0]):  # at most two splits: p is 1
        return 1.0
    if not _has_ties(both) or min(a.size, b.size) < 2:  # scipy permutes samples of 2 or more
        return float(mannwhitneyu(a, b, method="exact").pvalue)
    return _permutation_p((a, b), _rank_sum, "independent", seed)


def paired_t_p(d: np.ndarray) -> float:
    """Two-sided p of the paired t-test (mean of ``d`` = 0). Differences without spread give
    0 when their mean is not 0 (t is infinite), else 1; a single difference gives 1."""
    from scipy.stats import ttest_1samp

    d = np.asarray(d, dtype=float)
    if d.size < 2:
        return 1.0
    if np.ptp(d) == 0:
        return 0.0 if d[0] != 0 else 1.0
    return float(ttest_1samp(d, 0.0).pvalue)


def normality_p(d: np.ndarray) -> float:
    """Shapiro-Wilk p of ``d`` (NaN below 3 values or without spread)."""
    from scipy.stats import shapiro

    d = np.asarray(d, dtype=float)
    if d.size < 3 or np.ptp(d) == 0:
        return NAN
    return float(shapiro(d).pvalue)


def paired_test(d: np.ndarray, test: str) -> tuple[str, float]:
    """The test ``test`` picks for the differences ``d`` (t or signed-rank), and its p."""
    if test not in TESTS:
        raise ValueError(f"test must be one of {', '.join(TESTS)}, got {test!r}")
    if test == "auto":
        test = "rank" if d.size >= RANK_FROM else "t"
    if test == "t":
        return "t", paired_t_p(d)
    return "signed-rank", signed_rank_p(d)


def tost_p(arm: np.ndarray, base: np.ndarray, margin: float, paired: bool) -> float:
    """TOST p for |Δ| < ``margin`` (NaN without a margin or with fewer than 2 values)."""
    from statsmodels.stats.weightstats import ttost_ind, ttost_paired

    if not margin > 0 or min(arm.size, base.size) < 2:
        return NAN
    d = arm - base if paired else np.array([np.mean(arm) - np.mean(base)])
    spread = np.std(arm - base) if paired else np.std(arm) + np.std(base)
    if spread == 0:  # no variation: equivalent exactly when Δ lies inside the margin
        return 0.0 if abs(float(np.mean(d))) < margin else 1.0
    if paired:
        return float(ttost_paired(arm, base, -margin, margin)[0])
    return float(ttost_ind(arm, base, -margin, margin, usevar="unequal")[0])


def paired_stats(
    arm: np.ndarray, base: np.ndarray, margin: float, seed: int = SEED, test: str = "auto"
) -> PairStats:
    """The paired numbers; ``arm[i]`` and ``base[i]`` come from the same seed; ``test``: the
    test of Δ = 0 (:data:`TESTS`)."""
    d = np.asarray(arm, dtype=float) - np.asarray(base, dtype=float)
    n = int(d.size)
    used, p = paired_test(d, test) if n >= 1 else ("signed-rank", NAN)
    low, high = bootstrap_ci((d,), np.mean, seed=seed)
    beat_low, beat_high = bootstrap_ci((d,), _beat_share, method="percentile", seed=seed)
    return PairStats(
        paired=True,
        n=n,
        n_base=n,
        delta=float(np.mean(d)) if n else NAN,
        delta_low=low,
        delta_high=high,
        p_beat=float(_beat_share(d)) if n else NAN,
        p_beat_low=beat_low,
        p_beat_high=beat_high,
        p=p,
        tost_p=tost_p(np.asarray(arm, float), np.asarray(base, float), margin, paired=True),
        sd=float(np.std(d, ddof=1)) if n > 1 else NAN,
        test=used,
        normality_p=normality_p(d),
    )


def unpaired_stats(
    arm: np.ndarray, base: np.ndarray, margin: float, seed: int = SEED, test: str = "auto"
) -> PairStats:
    """The unpaired numbers, for arms whose runs are not proven to share their starts: the
    rank-sum test, or Welch's t-test when ``test`` is ``t``."""
    from scipy.stats import ttest_ind

    a, b = np.asarray(arm, dtype=float), np.asarray(base, dtype=float)
    welch = test == "t" and min(a.size, b.size) >= 2
    low, high = bootstrap_ci((a, b), _mean_diff, seed=seed)
    beat_low, beat_high = bootstrap_ci((a, b), _beat_all_pairs, method="percentile", seed=seed)
    some = a.size > 0 and b.size > 0
    pooled = (
        math.sqrt(
            ((a.size - 1) * np.var(a, ddof=1) + (b.size - 1) * np.var(b, ddof=1))
            / (a.size + b.size - 2)
        )
        if a.size > 1 and b.size > 1
        else NAN
    )
    return PairStats(
        paired=False,
        n=int(a.size),
        n_base=int(b.size),
        delta=float(np.mean(a) - np.mean(b)) if some else NAN,
        delta_low=low,
        delta_high=high,
        p_beat=float(_beat_all_pairs(a, b)) if some else NAN,
        p_beat_low=beat_low,
        p_beat_high=beat_high,
        p=float(ttest_ind(a, b, equal_var=False).pvalue) if welch else rank_sum_p(a, b, seed),
        tost_p=tost_p(a, b, margin, paired=False),
        sd=pooled,
        test="welch-t" if welch else "rank-sum",
    )


def verdict(delta: float, p_holm: float, tost_holm: float, higher_is_better: bool) -> str:
    """better / worse (Holm p < α, by the sign of Δ), equivalent (Holm TOST p < α) or
    inconclusive."""
    if math.isfinite(p_holm) and p_holm < ALPHA and delta != 0:
        return "better" if (delta > 0) == higher_is_better else "worse"
    if math.isfinite(tost_holm) and tost_holm < ALPHA:
        return "equivalent"
    return "inconclusive"
