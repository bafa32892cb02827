"""Across configurations: Friedman blocked by seed, an all-pairs post-hoc, the top group,
P(rank first) and the P(row beats column) matrix.

The post-hoc is the pairwise exact test of :mod:`~lrexp.compare.stats.pairwise` (signed-rank
for proven pairs, rank-sum otherwise) on every pair of configurations, Holm-adjusted over all
pairs: Benavoli et al. (JMLR 2016) recommend it over mean-rank post-hocs, whose verdict on a
pair changes with the other configurations in the study. It draws the bars of the
critical-difference diagram. Over all k(k-1)/2 pairs it is strict (at 10 seeds no pair of 10
configurations can pass), so the top group comes from the k - 1 comparisons with the leader.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lrexp.compare.stats import ALPHA, N_RESAMPLES, SEED
from lrexp.compare.stats.pairwise import rank_sum_p, signed_rank_p
from lrexp.compare.stats.power import holm


@dataclass(frozen=True)
class Friedman:
    """``scipy.stats.friedmanchisquare`` over the seeds that every configuration ran."""

    statistic: float
    p: float
    n_blocks: int
    k: int


def oriented(matrix: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """Values where larger is better."""
    return matrix if higher_is_better else -matrix


def mean_ranks(blocks: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """Mean rank of each column over the rows (1 = best; ties share the mean rank)."""
    from scipy.stats import rankdata

    return np.mean(rankdata(-oriented(blocks, higher_is_better), axis=1), axis=0)


def friedman(blocks: np.ndarray) -> Friedman | None:
    """The Friedman test on complete blocks (rows = seeds, columns = configurations); None
    with fewer than 3 configurations or 2 blocks."""
    from scipy.stats import friedmanchisquare

    n, k = blocks.shape
    if k < 3 or n < 2:
        return None
    if np.all(blocks == blocks[:, :1]):  # every configuration equal on every seed
        return Friedman(0.0, 1.0, n, k)
    result = friedmanchisquare(*blocks.T)
    return Friedman(float(result.statistic), float(result.pvalue), n, k)


def pair_p(a: np.ndarray, b: np.ndarray, paired: bool, seed: int = SEED) -> float:
    """The post-hoc p of one pair: signed-rank when paired (same-length, same-seed arrays)."""
    return signed_rank_p(a - b, seed) if paired else rank_sum_p(a, b, seed)


def posthoc(
    columns: Sequence[np.ndarray],
    paired: np.ndarray,
    pairs: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]],
    seed: int = SEED,
) -> np.ndarray:
    """Holm-adjusted p of every pair (a symmetric matrix, 1 on the diagonal).

    ``pairs[(i, j)]`` holds the values of i and j over their shared seeds when ``paired[i, j]``;
    other pairs use all of ``columns[i]`` and ``columns[j]``.
    """
    k = len(columns)
    keys = [(i, j) for i in range(k) for j in range(i + 1, k)]
    raw = []
    for i, j in keys:
        a, b = pairs[(i, j)] if paired[i, j] else (columns[i], columns[j])
        raw.append(pair_p(a, b, bool(paired[i, j]), seed))
    adjusted = holm(raw)
    out = np.ones((k, k))
    for (i, j), p in zip(keys, adjusted, strict=True):
        out[i, j] = out[j, i] = p if math.isfinite(p) else 1.0
    return out


def top_group(
    columns: Sequence[np.ndarray],
    paired: np.ndarray,
    pairs: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]],
    test: Friedman | None,
    seed: int = SEED,
) -> list[int]:
    """The leader (index 0) and every configuration not distinguishable from it: its exact
    test against the leader, Holm-adjusted over the k - 1 comparisons with the leader (a
    comparison with a control, Demšar 2006), is not below α. Everything when the Friedman
    test does not reject."""
    k = len(columns)
    if k == 0:
        return []
    if test is not None and test.p >= ALPHA:
        return list(range(k))
    raw = [
        pair_p(*(pairs[(0, j)] if paired[0, j] else (columns[0], columns[j])), bool(paired[0, j]),
               seed)
        for j in range(1, k)
    ]  # fmt: skip
    adjusted = holm(raw)
    return [0] + [j for j, p in zip(range(1, k), adjusted, strict=True) if not p < ALPHA]


def rank_first(
    columns: Sequence[np.ndarray],
    blocks: np.ndarray | None,
    higher_is_better: bool,
    seed: int = SEED,
) -> np.ndarray:
    """P(each configuration has the best mean), from a bootstrap over seeds: whole blocks
    (rows of ``blocks``, seeds every configuration ran, proven paired) resampled together,
    else each configuration's seeds resampled on their own. Ties share the win."""
    rng = np.random.default_rng(seed)
    if blocks is not None and blocks.shape[0] > 0:
        n = blocks.shape[0]
        index = rng.integers(0, n, size=(N_RESAMPLES, n))
        means = oriented(blocks, higher_is_better)[index].mean(axis=1)
    else:
        means = np.column_stack(
            [
                oriented(c, higher_is_better)[rng.integers(0, c.size, (N_RESAMPLES, c.size))].mean(
                    axis=1
                )
                if c.size
                else np.full(N_RESAMPLES, -np.inf)
                for c in columns
            ]
        )
    best = means == means.max(axis=1, keepdims=True)
    return np.asarray((best / best.sum(axis=1, keepdims=True)).mean(axis=0), dtype=float)


def beat_matrix(
    columns: Sequence[np.ndarray],
    paired: np.ndarray,
    pairs: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]],
    higher_is_better: bool,
) -> np.ndarray:
    """P(row beats column): the share of shared seeds the row wins (paired), else of all pairs
    of runs; ties count half; NaN on the diagonal and where a side has no value."""
    k = len(columns)
    out = np.full((k, k), np.nan)
    for i in range(k):
        for j in range(i + 1, k):
            a, b = pairs[(i, j)] if paired[i, j] else (columns[i], columns[j])
            if a.size == 0 or b.size == 0:
                continue
            diff = (a - b) if paired[i, j] else (a[:, None] - b[None, :]).ravel()
            diff = diff if higher_is_better else -diff
            out[i, j] = float(np.mean((diff > 0) + 0.5 * (diff == 0)))
            out[j, i] = 1.0 - out[i, j]
    return out
