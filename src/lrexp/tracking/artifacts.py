"""Per-run figures and tables: the planned LR (CSV) when the run opens, and at its end the
planned-vs-observed LR figure and the learning curves, read back from the store."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from lrexp.plots import plot_learning_curves, plot_lr_plan

if TYPE_CHECKING:
    from lrexp.tracking.store import TrackedRun

CURVE_KEYS = ("train/loss", "train/acc", "val/loss", "val/acc", "test/loss", "test/acc")


def write_plan_csv(planned: Sequence[float], path: Path) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["step", "planned_lr"])
        writer.writerows(enumerate(planned))
    return path


def log_run_figures(
    run: TrackedRun, planned: Sequence[float], output_dir: Path, label: str
) -> None:
    """After training: planned vs observed LR, and the learning curves, from the store."""
    client, run_id = run.client, run.run_id
    observed = [(m.step, m.value) for m in client.get_metric_history(run_id, "lr")]
    if planned or observed:
        run.log_artifact(plot_lr_plan(planned, observed, output_dir / "lr_plan.png", label))
    histories = {
        key: [(m.step, m.value) for m in client.get_metric_history(run_id, key)]
        for key in CURVE_KEYS
    }
    if any(histories.values()):
        run.log_artifact(plot_learning_curves(histories, output_dir / "learning_curves.png", label))
