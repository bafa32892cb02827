"""The study's finished runs in the store: final metrics by arm, LR and seed."""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from lrexp.compare.stats.pairwise import PairStats, paired_stats
from lrexp.findings.claims import LOSS


@dataclass
class Results:
    """Final metrics of the study's FINISHED runs: ``runs[arm][(lr, seed)] = metrics``."""

    runs: dict[str, dict[tuple[float, int], dict[str, float]]] = field(default_factory=dict)
    #: the ``schedule.values`` param of each (arm, LR, seed) that has one (tabulated schedules)
    tables: dict[tuple[str, float, int], str] = field(default_factory=dict)

    def has(self, arm: str, lr: float, seed: int) -> bool:
        return (lr, seed) in self.runs.get(arm, {})

    def best_lr(self, arm: str, grid: Sequence[float]) -> float:
        """The grid LR of the lowest final loss at seed 0 (a diverged run has none)."""
        losses = {lr: self.runs[arm][(lr, 0)].get(LOSS) for lr in grid if self.has(arm, lr, 0)}
        finite = {lr: v for lr, v in losses.items() if v is not None and v == v}
        if not finite:
            raise SystemExit(f"lm_findings: no finished grid run of {arm} has {LOSS}")
        return min(finite, key=lambda lr: finite[lr])

    def seeds_of(self, arm: str, lr: float, metric: str) -> dict[int, float]:
        return {
            seed: values[metric]
            for (run_lr, seed), values in self.runs.get(arm, {}).items()
            if run_lr == lr and metric in values
        }


def read_results(tracking_uri: str, experiment: str) -> Results:
    """Every FINISHED run of the study's experiment, by arm, LR and seed (the latest of
    duplicates)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    results = Results()
    if found is None:
        return results
    runs = client.search_runs(
        [found.experiment_id],
        "attributes.status = 'FINISHED'",
        max_results=50_000,
        order_by=["attributes.start_time ASC"],
    )
    for run in runs:
        arm = run.data.tags.get("study_arm")
        lr, seed = run.data.params.get("optimizer.lr"), run.data.params.get("seed")
        if arm and lr is not None and seed is not None:
            results.runs.setdefault(arm, {})[(float(lr), int(seed))] = dict(run.data.metrics)
            if "schedule.values" in run.data.params:
                key = (arm, float(lr), int(seed))
                results.tables[key] = run.data.params["schedule.values"]
    return results


Seed = TypeVar("Seed", bound=Hashable)


@dataclass(frozen=True)
class Paired:
    """Two arms' values paired by seed: how many seeds both have, each side's mean over them,
    and lrexp-compare's paired statistics of arm − base."""

    seeds: int
    arm_mean: float
    base_mean: float
    stats: PairStats


def pair_by_seed(arm: Mapping[Seed, float], base: Mapping[Seed, float], margin: float) -> Paired:
    """``arm`` against ``base`` on the seeds both have (the paired t-test below 6 seeds, the
    exact signed-rank test from 6; TOST within ``margin``)."""
    seeds = sorted(set(arm) & set(base), key=str)
    a = np.array([arm[s] for s in seeds], dtype=float)
    b = np.array([base[s] for s in seeds], dtype=float)
    mean_a = float(a.mean()) if seeds else math.nan
    mean_b = float(b.mean()) if seeds else math.nan
    return Paired(len(seeds), mean_a, mean_b, paired_stats(a, b, margin, test="auto"))
