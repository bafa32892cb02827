"""The summary's numbers: per-run metrics and their mean and std per configuration or group.

Numbers
    Per run: final and best ``val/acc`` (and the step of the best), final ``val/loss``,
    ``test/acc``, ``test/loss`` and ms per optimizer step = (end_time - start_time) / number of
    logged LR steps (a run resumed into the same MLflow run also counts the time between
    its attempts). Per configuration: mean and sample std (ddof=1) over the runs that logged
    the metric. The status is the run status, or ``diverged`` for a run tagged ``diverged=true``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lrexp.compare.common import CompareError, Point
from lrexp.compare.records import RunRecord, config_labels, lookup, varying_params

STATUS_ORDER = ("FINISHED", "diverged", "FAILED", "KILLED", "RUNNING", "SCHEDULED")


METRICS: tuple[tuple[str, str, str], ...] = (
    # (csv name, markdown header, number format)
    ("best_val_acc", "best val/acc", ".4f"),
    ("best_val_acc_step", "step of best", ".0f"),
    ("final_val_acc", "final val/acc", ".4f"),
    ("final_val_loss", "final val/loss", ".4f"),
    ("test_acc", "test/acc", ".4f"),
    ("test_loss", "test/loss", ".4f"),
    ("ms_per_step", "ms/step", ".2f"),
)


def last_value(points: Sequence[Point]) -> float | None:
    return points[-1][1] if points else None


def run_numbers(r: RunRecord) -> dict[str, float | None]:
    """The per-run numbers of :data:`METRICS` (None where the run did not log them)."""
    acc = r.history.get("val/acc", [])
    finite = [(step, value) for step, value in acc if math.isfinite(value)]
    best = max(finite, key=lambda p: p[1]) if finite else None  # first step reaching the max
    lr_steps = max((len({s for s, _ in pts}) for pts in r.lr.values()), default=0)
    wall = (
        r.end_time - r.start_time
        if r.end_time is not None and r.start_time is not None and r.end_time >= r.start_time
        else None
    )
    return {
        "best_val_acc": best[1] if best else None,
        "best_val_acc_step": float(best[0]) if best else None,
        "final_val_acc": last_value(acc),
        "final_val_loss": last_value(r.history.get("val/loss", [])),
        "test_acc": r.latest.get("test/acc"),
        "test_loss": r.latest.get("test/loss"),
        "ms_per_step": wall / lr_steps if wall is not None and lr_steps else None,
    }


def mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    """Mean and sample std (ddof=1; None for fewer than two values). NaN propagates."""
    if not values:
        return None, None
    mean = math.fsum(values) / len(values)
    if len(values) < 2:
        return mean, None
    var = math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(var) if math.isfinite(var) else math.nan


def status_text(records: Sequence[RunRecord]) -> str:
    """``FINISHED`` when all agree, else counts such as ``2 FINISHED, 1 diverged``."""
    counts: dict[str, int] = defaultdict(int)
    for r in records:
        counts[r.status] += 1
    if len(counts) == 1:
        return next(iter(counts))
    order = {s: i for i, s in enumerate(STATUS_ORDER)}
    ranked = sorted(counts, key=lambda s: (order.get(s, len(order)), s))
    return ", ".join(f"{counts[s]} {s}" for s in ranked)


@dataclass
class Row:
    """One line of the summary: a configuration, or a ``--group-by`` value."""

    label: str
    records: list[RunRecord]
    numbers: dict[str, tuple[float | None, float | None]]
    value: str = ""
    params: dict[str, str] = field(default_factory=dict)
    n_configs: int = 1

    @property
    def sort_key(self) -> tuple[bool, float, str]:
        best = self.numbers["best_val_acc"][0]
        missing = best is None or not math.isfinite(best)
        return (missing, -(best or 0.0) if not missing else 0.0, self.label)


def make_row(label: str, records: list[RunRecord]) -> Row:
    per_run = [run_numbers(r) for r in records]
    numbers = {}
    for name, _, _ in METRICS:
        numbers[name] = mean_std([v for n in per_run if (v := n[name]) is not None])
    return Row(label, records, numbers)


def build_rows(records: Sequence[RunRecord], group_by: str | None) -> list[Row]:
    groups: dict[Any, list[RunRecord]] = defaultdict(list)
    labels: dict[Any, str] = {}
    varying = varying_params(records)
    if group_by is None:
        names = config_labels(records)
        for r in records:
            groups[r.identity].append(r)
            labels[r.identity] = names[r.identity]
    else:
        if all(lookup(r, group_by) is None for r in records):
            raise CompareError(f"--group-by {group_by}: no selected run has this param or tag")
        for r in records:
            value = lookup(r, group_by)
            groups[value].append(r)
            labels[value] = f"{group_by}={value if value is not None else '(unset)'}"
    rows = []
    for key, members in groups.items():
        row = make_row(labels[key], members)
        row.value = labels[key].split("=", 1)[-1] if group_by is not None else labels[key]
        row.n_configs = len({r.identity for r in members})
        if group_by is None:
            row.params = {k: dict(members[0].identity).get(k, "") for k in varying}
        rows.append(row)
    return sorted(rows, key=lambda row: row.sort_key)
