"""Is a pair of configurations paired by seed? Proven by the runs' digest tags.

Every training run tags ``init_digest`` (a hash of its initial weights) and ``order_digest``
(a hash of its first epoch's sample order). Two configurations are compared seed by seed only
when, on every seed they share, both runs carry both tags and the tags are equal. Otherwise
the comparison falls back to unpaired statistics, and the report says why in one line; a run
whose data module gives no order digest carries ``order_unknown`` with the reason instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lrexp.compare.records import RunRecord
from lrexp.tags import ORDER_UNKNOWN_TAG

DIGEST_TAGS = ("init_digest", "order_digest")
MISSING = "runs without init_digest/order_digest tags"
#: the start of the reason for runs whose data module gives no order digest
UNKNOWN_ORDER = "data order unknown"


@dataclass(frozen=True)
class Pairing:
    """Whether two configurations are proven paired, and if not, why (one phrase)."""

    paired: bool
    reason: str = ""


def seed_list(seeds: Sequence[str]) -> str:
    return ", ".join(sorted(seeds, key=lambda s: (len(s), s)))


def check(a: Mapping[str, RunRecord], b: Mapping[str, RunRecord]) -> Pairing:
    """The pairing of two configurations, given as ``{seed: run}``."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return Pairing(False, "no shared seeds")
    unknown = sorted(
        {
            r.tags[ORDER_UNKNOWN_TAG]
            for s in seeds
            for r in (a[s], b[s])
            if ORDER_UNKNOWN_TAG in r.tags
        }
    )
    if unknown:
        return Pairing(False, f"{UNKNOWN_ORDER}: {'; '.join(unknown)}")
    if any(tag not in r.tags for s in seeds for r in (a[s], b[s]) for tag in DIGEST_TAGS):
        return Pairing(False, MISSING)
    broken = [
        f"{tag} differs on seed{'s' * (len(bad) > 1)} {seed_list(bad)}"
        for tag in DIGEST_TAGS
        if (bad := [s for s in seeds if a[s].tags[tag] != b[s].tags[tag]])
    ]
    return Pairing(not broken, "; ".join(broken))


def pairing_lines(checks: Sequence[tuple[str, str, Pairing]]) -> list[str]:
    """One line per comparison that is not paired, except that missing tags, the usual case
    for runs logged before the tags existed, are one line for all comparisons."""
    lines = []
    missing = [arm for arm, _, p in checks if not p.paired and p.reason == MISSING]
    if missing:
        lines.append(
            f"pairing not proven for {len(missing)} of {len(checks)} comparisons "
            f"({MISSING}): unpaired statistics used for them"
        )
    unknown = [p.reason for _, _, p in checks if p.reason.startswith(UNKNOWN_ORDER)]
    if unknown:
        lines.append(
            f"unpaired: {len(unknown)} of {len(checks)} comparisons: {sorted(set(unknown))[0]} "
            "(an order digest proves that runs with one seed saw the same batches); unpaired "
            "statistics used for them"
        )
    for arm, base, p in checks:
        if not p.paired and p.reason != MISSING and not p.reason.startswith(UNKNOWN_ORDER):
            lines.append(f"pairing broken: {arm} vs {base}: {p.reason}; unpaired statistics used")
    return lines
