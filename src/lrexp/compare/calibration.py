"""How well the verdicts keep their promises, by simulation: ``python
scripts/verdict_calibration.py`` prints, measured in one run,

- the share of sweeps with a false better/worse verdict when every configuration is equal;
- the coverage of the 95 % BCa interval of the mean, by number of seeds;
- the seeds ``--plan-seeds`` asks for against the power the real test reaches with them;
- for one paired comparison with few seeds (3, 5, 10): the false-verdict rate of each test
  (``--test t``, ``rank``, ``auto``) under a null effect, with normal and with heavy-tailed
  (Student t, 2 degrees of freedom) differences, and its power on known effects.

The tests (``tests/test_verdicts.py``) call the same functions with fewer repetitions.
"""

from __future__ import annotations

import argparse
import gc
from collections.abc import Sequence

import numpy as np

from lrexp.compare.stats import ALPHA
from lrexp.compare.stats.describe import mean_ci
from lrexp.compare.stats.family import decide
from lrexp.compare.stats.pairwise import TESTS, paired_stats, paired_test
from lrexp.compare.stats.power import seeds_needed

SD = 0.004  # seed-to-seed sd of an accuracy (the README's schedule_study: about 0.4 %)
VAL_SIZE = 500  # accuracies are multiples of 1/500


def false_calls(sweeps: int, k: int, n: int, seed: int, leader: bool = True) -> int:
    """Sweeps (of k equal configurations x n seeds, paired with correlation 0.5) in which some
    comparison is called better or worse; against the best mean when ``leader``, as by
    default, else against the first configuration."""
    rng = np.random.default_rng(seed)
    count = 0
    for _ in range(sweeps):
        values = 0.97 + rng.normal(0, SD, (n, 1)) + rng.normal(0, SD, (n, k))
        values = np.round(values * VAL_SIZE) / VAL_SIZE
        base = int(np.argmax(values.mean(axis=0))) if leader else 0
        rows = [paired_stats(values[:, j], values[:, base], 0.0) for j in range(k) if j != base]
        count += any(d.verdict in ("better", "worse") for d in decide(rows, True))
    return count


def coverage(studies: int, n: int, seed: int) -> float:
    """Share of studies (n normal values each) whose 95 % BCa interval holds the true mean."""
    rng = np.random.default_rng(seed)
    hits = 0
    for i in range(studies):
        low, high = mean_ci(rng.normal(0.97, SD, n), seed=i)
        hits += low <= 0.97 <= high
    return hits / studies


def simulated_power(delta: float, sd: float, n: int, m: int, sims: int, seed: int) -> float:
    """Power of the exact signed-rank test at Holm's first step (α/m) for normal paired
    differences with mean ``delta`` and sd ``sd``."""
    from scipy.stats import wilcoxon

    diffs = np.random.default_rng(seed).normal(delta, sd, (sims, n))
    return float(np.mean(wilcoxon(diffs, axis=1, method="exact").pvalue < ALPHA / m))


NOISES = ("normal", "heavy")


def differences(rng: np.random.Generator, noise: str, sims: int, n: int) -> np.ndarray:
    """Paired differences with sd about 1: normal, or Student t with 2 degrees of freedom
    (heavy tails: its variance is infinite)."""
    if noise == "normal":
        return rng.normal(0.0, 1.0, (sims, n))
    return rng.standard_t(2, (sims, n))


def verdict_rate(test: str, noise: str, n: int, effect: float, sims: int, seed: int) -> float:
    """Share of ``sims`` single paired comparisons of ``n`` seeds called better or worse by
    ``test`` (p < α), the differences shifted by ``effect``: the false-verdict rate when it is
    0, the power otherwise."""
    rng = np.random.default_rng(seed)
    diffs = differences(rng, noise, sims, n) + effect
    return float(np.mean([paired_test(d, test)[1] < ALPHA for d in diffs]))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sweeps", type=int, default=200)
    parser.add_argument("--studies", type=int, default=500)
    parser.add_argument("--sims", type=int, default=2000)
    args = parser.parse_args(argv)
    gc.freeze()  # multipletests(method="holm") calls gc.collect() each time
    print(f"Δ = 0: sweeps with a false better/worse verdict ({args.sweeps} sweeps, α {ALPHA})")
    print("| configurations | seeds | baseline | sweeps | share |\n|---:|---:|---|---:|---:|")
    for k, n, baselines in ((2, 10, 1), (5, 10, 2), (17, 10, 1)):
        for leader in (True, False)[:baselines]:
            count = false_calls(args.sweeps, k, n, seed=k * 100 + n, leader=leader)
            which = "best mean" if leader else "fixed"
            print(f"| {k} | {n} | {which} | {count} | {count / args.sweeps:.3f} |")
    print(f"\nBCa 95% CI of the mean: coverage over {args.studies} studies (normal values)")
    print("| seeds | coverage |\n|---:|---:|")
    for n in (3, 5, 10, 20, 50, 100):
        print(f"| {n} | {coverage(args.studies, n, seed=n):.3f} |")
    print(f"\n--plan-seeds against simulated power ({args.sims} simulations, signed-rank test)")
    print("| Δ | sd of differences | comparisons | planned seeds | power at plan−2 | at plan | "
          "at plan+2 |\n|---:|---:|---:|---:|---:|---:|---:|")  # fmt: skip
    for delta, sd, m in ((0.003, 0.004, 1), (0.003, 0.004, 16), (0.002, 0.002, 5)):
        planned = int(seeds_needed(delta, sd, m, paired=True))
        powers = [
            simulated_power(delta, sd, max(n, 2), m, args.sims, seed=n)
            for n in (planned - 2, planned, planned + 2)
        ]
        cells = " | ".join(f"{p:.3f}" for p in powers)
        print(f"| {delta} | {sd} | {m} | {planned} | {cells} |")
    print(
        f"\nOne paired comparison: share called better/worse ({args.sims} simulations, α {ALPHA})"
    )
    print("| differences | effect (sd) | seeds | " + " | ".join(TESTS) + " |")
    print("|---|---:|---:|" + "---:|" * len(TESTS))
    for noise in NOISES:
        for effect in (0.0, 1.0, 2.0):
            for n in (3, 5, 10):
                rates = [verdict_rate(t, noise, n, effect, args.sims, seed=n) for t in TESTS]
                cells = " | ".join(f"{r:.3f}" for r in rates)
                print(f"| {noise} | {effect:g} | {n} | {cells} |")
