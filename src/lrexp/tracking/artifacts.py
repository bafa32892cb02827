"""Per-run artifacts: the planned LR (CSV) when the run opens; at its end the planned-vs-observed
LR figure, the learning curves and the history file (:mod:`lrexp.tracking.history_file`), all
from the histories read back from the store, so they hold what the store holds."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from lrexp.plots import plot_learning_curves, plot_lr_plan
from lrexp.tracking.history_file import (
    CURVE_KEYS,
    HISTORY_FILE,
    TOKEN_TAG,
    StoredPoint,
    kept_keys,
    new_token,
    write_history_file,
)

if TYPE_CHECKING:
    from lrexp.tracking.store import TrackedRun

Stored = dict[str, list[StoredPoint]]


def write_plan_csv(planned: Sequence[float], path: Path) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["step", "planned_lr"])
        writer.writerows(enumerate(planned))
    return path


def stored_histories(run: TrackedRun) -> Stored:
    """Every point of the run's LR and learning-curve keys, as the store holds them."""
    client, run_id = run.client, run.run_id
    keys = kept_keys(client.get_run(run_id).data.metrics)
    return {
        key: [(m.step, m.timestamp, m.value) for m in client.get_metric_history(run_id, key)]
        for key in keys
    }


def log_run_figures(
    run: TrackedRun, planned: Sequence[float], stored: Stored, output_dir: Path, label: str
) -> None:
    """After training: planned vs observed LR, and the learning curves."""
    observed = [(step, value) for step, _, value in stored.get("lr", [])]
    if planned or observed:
        run.log_artifact(plot_lr_plan(planned, observed, output_dir / "lr_plan.png", label))
    histories = {
        key: [(step, value) for step, _, value in stored.get(key, [])] for key in CURVE_KEYS
    }
    if any(histories.values()):
        run.log_artifact(plot_learning_curves(histories, output_dir / "learning_curves.png", label))


def log_history_file(run: TrackedRun, stored: Stored, output_dir: Path) -> None:
    """Log :data:`HISTORY_FILE` and the tag that vouches for it (a fresh token)."""
    if not stored:
        return
    token = new_token()
    run.log_artifact(write_history_file(stored, token, output_dir / HISTORY_FILE))
    run.set_tags({TOKEN_TAG: token})
