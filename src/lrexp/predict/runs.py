"""Reading runs for the laws: each selected run's LR trace and training loss, through
``lrexp-compare``'s readers (so every store it reads works: SQLite, PostgreSQL, a server).

The loss the laws fit is ``train/loss_window`` (the mean of every ``logger.train_loss_every``
steps) where the run has it, else the epoch means of ``train/loss``; or one key the user names
(``--loss val/loss``: in single-pass training the loss on a fixed held-out set estimates the
same population loss with far less noise). Each point sits at the optimizer updates done when
it was logged, the axis of the ``lr`` trace.

A cooldown fork (tag ``fork_of``) logs its LR from its fork step on; the updates before it are
its trunk's, so its trace is the trunk's ``lr`` up to the fork step followed by its own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from lrexp.compare.common import CompareError
from lrexp.compare.histories import read_histories
from lrexp.compare.records import (
    RunRecord,
    assign_identities,
    config_labels,
    deduplicate,
    to_record,
)
from lrexp.compare.store import open_client, select_runs
from lrexp.predict.laws import Curve
from lrexp.tracking.history_file import TRAIN_LOSS_WINDOW_KEY

LOSS_KEYS = (TRAIN_LOSS_WINDOW_KEY, "train/loss")
KEYS = ("lr", *LOSS_KEYS, "val/loss")


@dataclass
class RunCurves:
    """The selected runs as curves, with what the trust checks need."""

    curves: list[Curve]
    loss_key: dict[str, str] = field(default_factory=dict)  #: run id -> the loss key used
    val_loss: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    records: list[RunRecord] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  #: one line per run left out, and why


def lr_trace(points: Sequence[tuple[int, float]]) -> np.ndarray | None:
    """The LR of updates 0..T-1 from the ``lr`` points, or None if a step is missing."""
    steps = [s for s, _ in points]
    if not steps or steps != list(range(len(steps))):
        return None
    return np.array([v for _, v in points], dtype=np.float64)


def with_trunk(
    fork: Sequence[tuple[int, float]], trunk: Sequence[tuple[int, float]]
) -> list[tuple[int, float]]:
    """A fork's ``lr`` points preceded by its trunk's before the fork's first step."""
    start = min((s for s, _ in fork), default=0)
    return [(s, v) for s, v in trunk if s < start] + list(fork)


def to_curve(
    record: RunRecord, label: str, loss_keys: Sequence[str] = LOSS_KEYS, min_points: int = 2
) -> tuple[Curve | None, str, str]:
    """The run's curve on the first of ``loss_keys`` it has with ``min_points`` points (or
    None) and the key used, else why it is left out."""
    lrs = lr_trace(record.history.get("lr", []))
    if lrs is None:
        return None, "", f"{record.name}: no complete lr trace (steps 0..T-1)"
    for key in loss_keys:
        points = [(s, v) for s, v in record.history.get(key, []) if 1 <= s <= len(lrs)]
        points = [(s, v) for s, v in points if np.isfinite(v) and v > 0]
        if len(points) >= min_points:
            steps = np.array([s for s, _ in points], dtype=np.int64)
            loss = np.array([v for _, v in points], dtype=np.float64)
            curve = Curve(lrs, steps, loss, label, record.seed, record.run_id)
            return curve, key, ""
    return None, "", f"{record.name}: fewer than {min_points} points of {' or '.join(loss_keys)}"


def from_step(curves: Sequence[Curve], step: int) -> list[Curve]:
    """Each curve's observations at ``step`` or later (the first steps' fast fall, before the
    loss follows a power law in the LRs' sum, is outside the laws' regime); a curve left with
    fewer than 2 observations is dropped."""
    out = []
    for c in curves:
        keep = c.steps >= step
        if keep.sum() >= 2:
            out.append(dataclasses.replace(c, steps=c.steps[keep], loss=c.loss[keep]))
    return out


def read_runs(
    tracking_uri: str,
    *,
    experiment: str | None = None,
    parent: str | None = None,
    filter_string: str | None = None,
    run_ids: Sequence[str] = (),
    group_by: str | None = "schedule.name",
    loss: str | None = None,
    min_points: int = 2,
) -> RunCurves:
    """Select runs as ``lrexp-compare`` does (or by id) and read their curves. Each curve is
    labelled by ``group_by`` (a param or tag, default the schedule family), else by
    lrexp-compare's configuration label. ``loss`` names the loss key to fit (default: the
    training loss, :data:`LOSS_KEYS`); a run with fewer than ``min_points`` of it is left out
    (a fit needs 2; a held-out final loss, 1)."""
    loss_keys = (loss,) if loss else LOSS_KEYS
    client = open_client(tracking_uri)
    if run_ids:
        runs = [client.get_run(run_id) for run_id in run_ids]
    else:
        runs, _ = select_runs(
            client, experiment=experiment, parent=parent, filter_string=filter_string
        )
    records = [to_record(run) for run in runs if run.info.status == "FINISHED"]
    if not records:
        raise CompareError("no FINISHED run among the selected runs")
    records.sort(key=lambda r: (r.start_time or 0, r.name))
    assign_identities(records)
    records, _ = deduplicate(records)
    keys = tuple(dict.fromkeys((*KEYS, *loss_keys)))
    ids = [r.run_id for r in records]
    trunks = {r.run_id: r.tags["fork_of"] for r in records if r.tags.get("fork_of")}
    histories = read_histories(client, tracking_uri, ids, keys)
    missing = sorted(set(trunks.values()) - set(histories))
    if missing:
        histories.update(read_histories(client, tracking_uri, missing, ("lr",)))
    labels = config_labels(records)
    out = RunCurves([], records=records)
    for r in records:
        r.history = dict(histories.get(r.run_id, {}))
        if r.run_id in trunks:
            trunk_lr = histories.get(trunks[r.run_id], {}).get("lr", [])
            r.history["lr"] = with_trunk(r.history.get("lr", []), trunk_lr)
        label = (group_by and (r.params.get(group_by) or r.tags.get(group_by))) or labels[
            r.identity
        ]
        curve, key, why = to_curve(r, str(label), loss_keys, min_points)
        if curve is None:
            out.skipped.append(why)
            continue
        out.curves.append(curve)
        out.loss_key[r.run_id] = key
        out.val_loss[r.run_id] = list(r.history.get("val/loss", []))
    return out


def train_loss_verdicts(runs: RunCurves, baseline: str) -> dict[str, str]:
    """lrexp-compare's verdict of each curve label against ``baseline`` on the final training
    loss (lower is better): its paired statistics run on records whose last loss point is the
    tested number. Only labels that are one lrexp-compare configuration get a verdict."""
    from lrexp.compare.analysis import analyse
    from lrexp.compare.outcomes import outcome

    by_run = {c.run_id: c for c in runs.curves}
    records = [
        dataclasses.replace(
            r, history={"val/loss": list(zip(c.steps.tolist(), c.loss.tolist(), strict=True))}
        )
        for r in runs.records
        if (c := by_run.get(r.run_id)) is not None
    ]
    theirs = config_labels(records)
    mine: dict[str, set[str]] = {}
    for r in records:
        mine.setdefault(by_run[r.run_id].label, set()).add(theirs[r.identity])
    if len(mine.get(baseline, set())) != 1:
        return {}
    (base,) = mine[baseline]
    analysis = analyse(records, outcome("final_val_loss", None), baseline=base)
    out = {}
    for label, configs in mine.items():
        if len(configs) == 1 and (found := analysis.comparisons.get(next(iter(configs)))):
            out[label] = found.decision.verdict
    return out
