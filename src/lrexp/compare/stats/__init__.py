"""The statistics of a comparison, on plain arrays (one value per seed).

Modules
    ``describe``: n, mean, median, sd and a BCa bootstrap CI of the mean per configuration.
    ``pairwise``: one arm against a baseline: Δ with its CI, P(beat) with its CI, an exact
        signed-rank (paired) or rank-sum (unpaired) p, TOST for equivalence, the verdict.
    ``power``: Holm adjustment, the smallest detectable Δ and the seeds a Δ needs.
    ``ranking``: Friedman test blocked by seed, all-pairs post-hoc, the top group, P(rank
        first) and the P(row beats column) matrix.

Libraries do the statistics (``scipy.stats``: ``bootstrap``, ``wilcoxon``, ``mannwhitneyu``,
``friedmanchisquare``; ``statsmodels``: ``multipletests(method="holm")``, ``ttost_paired``,
``ttost_ind``, ``TTestPower``); these modules are the glue. Every resampling takes a fixed
seed, so a report is reproducible to the last digit.
"""

ALPHA = 0.05  # familywise error rate of every family of tests in a report
CONFIDENCE = 0.95  # level of every confidence interval
POWER = 0.8  # power of the smallest detectable Δ and of the seed plan
N_RESAMPLES = 5000  # bootstrap resamples
SEED = 20261202  # the seed of every resampling
