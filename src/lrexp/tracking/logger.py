"""A Lightning logger that buffers metric points and writes them to MLflow in batches."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from mlflow.entities import Metric
from pytorch_lightning.loggers.logger import Logger
from pytorch_lightning.utilities import rank_zero_only

from lrexp.tracking.store import METRICS_PER_BATCH, TrackedRun


class BufferedMlflowLogger(Logger):
    """Collects ``(key, value, step)`` points in memory and flushes them with ``log_batch``.

    Flushes happen when the buffer holds a full batch, at every :meth:`save` (Lightning calls
    it after each validation) and at :meth:`finalize`, so a per-step value costs an append.
    """

    def __init__(self, run: TrackedRun) -> None:
        super().__init__()
        self.run = run
        self.buffer: list[Metric] = []

    @property
    def name(self) -> str:
        return self.run.experiment_name

    @property
    def version(self) -> str:
        return self.run.run_id

    @property
    def experiment(self) -> TrackedRun:
        return self.run

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        """Params are logged from the resolved config by the training entry point."""

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        now = int(time.time() * 1000)
        step = step or 0
        for key, value in metrics.items():
            if step > self.run.logged_until.get(key, -1):
                self.buffer.append(Metric(key, float(value), now, step))
        if len(self.buffer) >= METRICS_PER_BATCH:
            self.flush()

    @rank_zero_only
    def flush(self) -> None:
        """Write every buffered point; the buffer is emptied only after a successful write."""
        if self.buffer:
            self.run.log_metrics(self.buffer)
            self.buffer = []

    @rank_zero_only
    def save(self) -> None:
        self.flush()

    @rank_zero_only
    def finalize(self, status: str) -> None:
        self.flush()
