"""What an LR search leaves behind: ``lr_find.csv``, ``lr_find.png`` and MLflow entries."""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

from lrexp.lr_find.search import LRFindResult

if TYPE_CHECKING:
    from lrexp.tracking.store import TrackedRun


def write_csv(result: LRFindResult, path: Path) -> Path:
    """``step,lr,loss`` rows of the search (loss is empty where it was not finite)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["step", "lr", "loss"])
        for step, (lr, loss) in enumerate(zip(result.lrs, result.losses, strict=True)):
            writer.writerow([step, repr(lr), repr(loss) if math.isfinite(loss) else ""])
    return path


def plot_lr_find(result: LRFindResult, path: Path, title: str) -> Path:
    """Smoothed loss against LR over the points the suggestion was picked from (the first
    ``skip_begin`` are dominated by the smoothing's start-up and are left out, as in fastai),
    with the suggestion marked. Log LR axis unless the LRs span under two decades. Drawn on an
    Agg canvas like :mod:`lrexp.plots`."""
    from lrexp.plots import log_scale, new_figure, save, wants_log_scale

    options = result.settings
    end = max(len(result.lrs) - options.skip_end, options.skip_begin)
    window = range(options.skip_begin, end)
    points = [(result.lrs[i], result.losses[i]) for i in window if math.isfinite(result.losses[i])]
    fig = new_figure(8.0, 4.5)
    ax = fig.add_subplot()
    ax.plot([p[0] for p in points], [p[1] for p in points], color="tab:blue", linewidth=1.8)
    if wants_log_scale(result.lrs):
        log_scale(ax, "x")
    suggestion = result.suggestion
    if points:
        at = min(points, key=lambda p: abs(p[0] - suggestion))
        ax.plot(*at, "o", color="tab:red", markersize=8, label=f"suggestion {suggestion:.3g}")
        ax.axvline(suggestion, color="tab:red", linestyle=":", linewidth=1.2)
        ax.legend(loc="best")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss (smoothed)")
    ax.set_title(f"{title} ({result.steps} steps, first {options.skip_begin} not shown)")
    ax.grid(True, which="major", alpha=0.3)
    return save(fig, path)


def log_lr_find(run: TrackedRun, result: LRFindResult, output_dir: Path, label: str) -> None:
    """Log ``lr_find.png``, ``lr_find.csv``, the param and the metric ``lr_find/suggestion``
    (written to ``output_dir`` first) into ``run``: a finder run, or a run with ``lr=auto``."""
    from mlflow.entities import Metric

    run.log_artifact(write_csv(result, output_dir / "lr_find.csv"))
    title = f"LR finder: {label}"
    run.log_artifact(plot_lr_find(result, output_dir / "lr_find.png", title))
    run.log_params({"lr_find/suggestion": repr(result.suggestion)})
    now = int(time.time() * 1000)
    run.log_metrics(
        [
            Metric("lr_find/suggestion", result.suggestion, now, 0),
            Metric("lr_find/steps", float(result.steps), now, 0),
        ]
    )
