"""One family of comparisons against a baseline: Holm adjustment, verdicts and power."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from lrexp.compare.stats import power
from lrexp.compare.stats.pairwise import PairStats, verdict


@dataclass(frozen=True)
class Decision:
    """What the family makes of one comparison."""

    p_holm: float
    tost_holm: float
    verdict: str
    mde: float  # smallest |Δ| detectable with 80 % power at Holm's first step
    seeds_needed: float  # seeds to detect the planned Δ (or the observed one)


def decide(
    rows: Sequence[PairStats], higher_is_better: bool, plan_delta: float | None = None
) -> list[Decision]:
    """Holm over every comparison of the family (signed-rank p and TOST p separately), the
    verdict of each, its smallest detectable Δ and the seeds ``plan_delta`` would need."""
    p_holm = power.holm([s.p for s in rows])
    tost_holm = power.holm([s.tost_p for s in rows])
    m = sum(math.isfinite(p) for p in p_holm)
    out = []
    for s, p, t in zip(rows, p_holm, tost_holm, strict=True):
        goal = plan_delta if plan_delta is not None else s.delta
        out.append(
            Decision(
                p_holm=p,
                tost_holm=t,
                verdict=verdict(s.delta, p, t, higher_is_better),
                mde=power.mde(s.sd, s.n, m, s.paired, None if s.paired else s.n_base),
                seeds_needed=power.seeds_needed(goal, s.sd, m, s.paired),
            )
        )
    return out
