"""A Lightning logger that buffers metric points and writes them to MLflow in batches."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pytorch_lightning.loggers.logger import Logger
from pytorch_lightning.utilities import rank_zero_only

from lrexp.tracking.uri import METRICS_PER_BATCH

if TYPE_CHECKING:
    from lrexp.tracking.store import TrackedRun


class BufferedMlflowLogger(Logger):
    """Collects ``(key, value, timestamp, step)`` points in memory and flushes them with
    ``log_batch``, so a per-step value costs an append.

    Flushes happen when the buffer holds a full batch, at every :meth:`save` (Lightning calls
    it after each validation) and at :meth:`finalize`. ``run`` may be set later (a run opened
    after its first step): until then points wait in the buffer. Points at steps the store
    already holds (a resumed run) are dropped at the flush.
    """

    def __init__(self, run: TrackedRun | None = None) -> None:
        super().__init__()
        self.run = run
        self.buffer: list[tuple[str, float, int, int]] = []

    @property
    def name(self) -> str:
        return self.run.experiment_name if self.run is not None else "lrexp"

    @property
    def version(self) -> str:
        return self.run.run_id if self.run is not None else "pending"

    @property
    def experiment(self) -> TrackedRun | None:
        return self.run

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        """Params are logged from the resolved config by the run's lifecycle."""

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        now = int(time.time() * 1000)
        step = step or 0
        self.buffer.extend((key, float(value), now, step) for key, value in metrics.items())
        if len(self.buffer) >= METRICS_PER_BATCH:
            self.flush()

    @rank_zero_only
    def flush(self) -> None:
        """Write every buffered point; the buffer is emptied only after a successful write."""
        if not self.buffer or self.run is None:
            return
        from mlflow.entities import Metric

        logged = self.run.logged_until
        points = [
            Metric(key, value, timestamp, step)
            for key, value, timestamp, step in self.buffer
            if step > logged.get(key, -1)
        ]
        if points:
            self.run.log_metrics(points)
        self.buffer = []

    @rank_zero_only
    def save(self) -> None:
        self.flush()

    @rank_zero_only
    def finalize(self, status: str) -> None:
        self.flush()
