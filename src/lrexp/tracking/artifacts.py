"""Per-run figures and tables: the planned LR before training, the observed trace after."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import pytorch_lightning as pl

from lrexp.plots import plot_learning_curves, plot_lr_plan
from lrexp.tracking.store import TrackedRun

CURVE_KEYS = ("train/loss", "train/acc", "val/loss", "val/acc", "test/loss", "test/acc")


def write_plan_csv(planned: Sequence[float], path: Path) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["step", "planned_lr"])
        writer.writerows(enumerate(planned))
    return path


class PlanArtifacts(pl.Callback):
    """Logs ``planned_lr.csv`` and ``lr_plan.png`` when fitting starts (after the optimizer
    and schedule exist), so the plan is visible in MLflow while the run trains."""

    def __init__(self, run: TrackedRun, output_dir: Path) -> None:
        self.run = run
        self.output_dir = output_dir

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        planned: list[float] = getattr(pl_module, "planned_lr", [])
        if trainer.global_rank != 0 or not planned:
            return
        self.run.log_artifact(write_plan_csv(planned, self.output_dir / "planned_lr.csv"))
        figure = plot_lr_plan(planned, None, self.output_dir / "lr_plan.png", title(pl_module))
        self.run.log_artifact(figure)


def title(pl_module: pl.LightningModule) -> str:
    """Figure title; metric-driven schedules can only be planned up to the first validation."""
    metric_driven = getattr(pl_module, "metric_driven", False)
    return "planned LR" + (" (metric-driven: as before any validation)" if metric_driven else "")


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
