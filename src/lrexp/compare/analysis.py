"""The glue between runs and statistics: configurations, the verdict table and the ranking.

A configuration is the runs that differ only in seed (see :mod:`lrexp.compare.records`),
keyed by seed. The verdict table compares every configuration with the baseline (by default
the one with the best mean): one Holm family over all of its comparisons. The ranking
(Friedman, post-hoc, top group, P(rank first), P(row beats column)) covers every
configuration that has a value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from lrexp.compare.common import CompareError
from lrexp.compare.outcomes import Outcome, value
from lrexp.compare.pairing import Pairing, check, pairing_lines
from lrexp.compare.records import RunRecord, config_labels, lookup
from lrexp.compare.stats import ranking
from lrexp.compare.stats.describe import Description, describe
from lrexp.compare.stats.family import Decision, decide
from lrexp.compare.stats.pairwise import (
    NORMALITY_ALPHA,
    PairStats,
    paired_stats,
    unpaired_stats,
)


@dataclass
class Config:
    """One configuration: its runs and values by seed, and their description."""

    label: str
    runs: dict[str, RunRecord]
    values: dict[str, float]
    description: Description
    panel: str = ""

    def array(self, seeds: Sequence[str] | None = None) -> np.ndarray:
        keys = sorted(self.values) if seeds is None else seeds
        return np.array([self.values[s] for s in keys], dtype=float)


@dataclass
class Comparison:
    """One row of the verdict table: an arm against the baseline."""

    arm: str
    stats: PairStats
    pairing: Pairing
    decision: Decision


@dataclass
class Ranking:
    """Across all configurations (indices follow ``Analysis.configs``)."""

    friedman: ranking.Friedman | None
    mean_ranks: list[float]
    posthoc: np.ndarray
    top_group: list[str]
    rank_first: list[float]
    beats: np.ndarray
    blocks: list[str]  # the seeds that every configuration ran


@dataclass
class Analysis:
    """Everything the report writes."""

    outcome: Outcome
    target: float | None
    baseline: str
    margin: float
    margin_note: str
    plan_delta: float | None
    configs: list[Config]
    comparisons: dict[str, Comparison]
    ranking: Ranking
    notes: list[str] = field(default_factory=list)
    #: which test gave each comparison's p, and why (the report's, not the console's)
    tests: list[str] = field(default_factory=list)

    @property
    def family_size(self) -> int:
        return sum(math.isfinite(c.decision.p_holm) for c in self.comparisons.values())


def build_configs(
    records: Sequence[RunRecord], which: Outcome, target: float | None, panel_key: str | None
) -> list[Config]:
    """Configurations sorted by mean, best first (those without a value last)."""
    labels = config_labels(records)
    grouped: dict[str, dict[str, RunRecord]] = {}
    for r in records:
        grouped.setdefault(labels[r.identity], {})[r.seed if r.seed is not None else r.run_id] = r
    configs = []
    for label, runs in grouped.items():
        values = {s: v for s, r in runs.items() if math.isfinite(v := value(r, which, target))}
        first = next(iter(runs.values()))
        panel = (lookup(first, panel_key) or "(unset)") if panel_key else ""
        configs.append(Config(label, runs, values, describe(list(values.values())), panel))
    sign = 1.0 if which.higher_is_better else -1.0

    def key(c: Config) -> tuple[bool, float, str]:
        missing = c.description.n == 0
        return (missing, 0.0 if missing else -sign * c.description.mean, c.label)

    return sorted(configs, key=key)


def find_baseline(configs: Sequence[Config], wanted: str | None) -> Config | None:
    """``--baseline``: an exact label, else the one label starting with ``wanted-``; by
    default the configuration with the best mean (None when no run has a value)."""
    ranked = [c for c in configs if c.description.n > 0]
    if wanted is None:
        return ranked[0] if ranked else None
    exact = [c for c in configs if c.label == wanted]
    found = exact or [c for c in configs if c.label.startswith(f"{wanted}-")]
    if len(found) == 1:
        if found[0].description.n == 0:
            raise CompareError(f"--baseline {wanted}: {found[0].label} has no value to compare")
        return found[0]
    which = "matches several" if found else "matches none"
    names = ", ".join(c.label for c in (found or configs))
    raise CompareError(f"--baseline {wanted}: {which} of the configurations ({names})")


def shared(a: Config, b: Config) -> list[str]:
    return sorted(set(a.values) & set(b.values), key=lambda s: (len(s), s))


def pair_stats(
    arm: Config, base: Config, pairing: Pairing, margin: float, test: str = "auto"
) -> PairStats:
    if pairing.paired:
        seeds = shared(arm, base)
        return paired_stats(arm.array(seeds), base.array(seeds), margin, test=test)
    return unpaired_stats(arm.array(), base.array(), margin, test=test)


def default_margin(records: Sequence[RunRecord], which: Outcome) -> tuple[float, str]:
    """One validation example's worth of accuracy: 1 / ``dataset.val_size``."""
    if not which.accuracy:
        return math.nan, f"no equivalence margin for {which.label}: give --equivalence"
    sizes = {r.params.get("dataset.val_size") for r in records}
    if len(sizes) == 1 and (size := sizes.pop()) is not None and size.isdigit() and int(size):
        return 1.0 / int(size), f"1/{size}: one validation example (dataset.val_size {size})"
    return math.nan, "no single dataset.val_size param: give --equivalence for equivalence"


def compare_all(
    configs: list[Config],
    base: Config | None,
    which: Outcome,
    margin: float,
    plan: float | None,
    test: str = "auto",
) -> dict[str, Comparison]:
    if base is None:
        return {}
    arms = [c for c in configs if c is not base and c.description.n > 0]
    pairings = [check(c.runs, base.runs) for c in arms]
    stats = [pair_stats(c, base, p, margin, test) for c, p in zip(arms, pairings, strict=True)]
    decisions = decide(stats, which.higher_is_better, plan)
    return {
        c.label: Comparison(c.label, s, p, d)
        for c, s, p, d in zip(arms, stats, pairings, decisions, strict=True)
    }


def rank_all(configs: list[Config], which: Outcome) -> Ranking:
    present = [c for c in configs if c.description.n > 0]
    k = len(present)
    if k == 0:
        return Ranking(None, [], np.ones((0, 0)), [], [], np.ones((0, 0)), [])
    columns = [c.array() for c in present]
    paired = np.zeros((k, k), dtype=bool)
    pairs: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
    for i in range(k):
        for j in range(i + 1, k):
            paired[i, j] = paired[j, i] = check(present[i].runs, present[j].runs).paired
            seeds = shared(present[i], present[j])
            pairs[(i, j)] = (present[i].array(seeds), present[j].array(seeds))
    common = set.intersection(*(set(c.values) for c in present)) if present else set()
    seeds = sorted(common, key=lambda s: (len(s), s))
    blocks = np.column_stack([c.array(seeds) for c in present]) if seeds else np.empty((0, k))
    test = ranking.friedman(blocks)
    adjusted = ranking.posthoc(columns, paired, pairs)
    all_paired = bool(np.all(paired | np.eye(k, dtype=bool)))
    first = ranking.rank_first(
        columns, blocks if all_paired and seeds else None, which.higher_is_better
    )
    ranks = ranking.mean_ranks(blocks, which.higher_is_better).tolist() if seeds else [math.nan] * k
    return Ranking(
        friedman=test,
        mean_ranks=ranks,
        posthoc=adjusted,
        top_group=[present[i].label for i in ranking.top_group(columns, paired, pairs, test)],
        rank_first=first.tolist(),
        beats=ranking.beat_matrix(columns, paired, pairs, which.higher_is_better),
        blocks=seeds,
    )


TEST_NAMES = {
    "t": "the paired t-test (assumes normal differences)",
    "signed-rank": "the exact signed-rank test (no assumption on the differences' shape)",
    "rank-sum": "the rank-sum test (unpaired)",
    "welch-t": "Welch's t-test (unpaired; assumes normal values)",
}


def test_lines(comparisons: dict[str, Comparison], test: str) -> list[str]:
    """Which test gave each comparison's p, and why (``--test``); a t-test whose differences
    Shapiro-Wilk finds far from normal is named."""
    by_test: dict[str, list[str]] = {}
    for comp in comparisons.values():
        by_test.setdefault(comp.stats.test, []).append(comp.arm)
    rule = {
        "auto": "--test auto: the exact signed-rank test from 6 seeds on, where it can reach "
        "p < 0.05, the paired t-test below",
        "rank": "--test rank",
        "t": "--test t",
    }[test]
    lines = [
        f"p from {TEST_NAMES[name]} for {', '.join(arms)} ({rule})"
        for name, arms in by_test.items()
    ]
    for comp in comparisons.values():
        normal = comp.stats.normality_p
        if comp.stats.test == "t" and normal < NORMALITY_ALPHA:
            lines.append(
                f"the differences of {comp.arm} do not look normal (Shapiro-Wilk p "
                f"{normal:.3g}): its t-test p is approximate"
            )
    return lines


def analyse(
    records: Sequence[RunRecord],
    which: Outcome,
    *,
    target: float | None = None,
    baseline: str | None = None,
    equivalence: float | None = None,
    plan_delta: float | None = None,
    panel_key: str | None = None,
    test: str = "auto",
) -> Analysis:
    """Every number of the report, for the runs of ``records`` (deduplicated)."""
    configs = build_configs(records, which, target, panel_key)
    base = find_baseline(configs, baseline)
    if equivalence is None:
        margin, note = default_margin(records, which)
    else:
        margin, note = equivalence, "--equivalence"
    comparisons = compare_all(configs, base, which, margin, plan_delta, test)
    label = base.label if base is not None else "–"
    notes = pairing_lines([(c.arm, label, c.pairing) for c in comparisons.values()])
    missing = [c.label for c in configs if c.description.n == 0]
    if missing:
        notes.append(f"no value of {which.label} for: {', '.join(missing)}")
    return Analysis(
        outcome=which,
        target=target,
        baseline=label,
        margin=margin,
        margin_note=note,
        plan_delta=plan_delta,
        configs=configs,
        comparisons=comparisons,
        ranking=rank_all(configs, which),
        notes=notes,
        tests=test_lines(comparisons, test),
    )
