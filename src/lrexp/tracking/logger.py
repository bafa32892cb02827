"""A Lightning logger that buffers metric points and writes them to MLflow in batches."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytorch_lightning.loggers.logger import Logger
from pytorch_lightning.utilities import rank_zero_only

from lrexp.tracking.spill import CloseRecord, Point, SpillFile
from lrexp.tracking.uri import METRICS_PER_BATCH

if TYPE_CHECKING:
    from lrexp.tracking.outbox import Outbox
    from lrexp.tracking.store import TrackedRun


#: points wait at most this long (ms) before they go to the outbox, so the store follows a run
FLUSH_MS = 5000


class BufferedMlflowLogger(Logger):
    """Collects ``(key, value, timestamp, step)`` points in memory and flushes them with
    ``log_batch``, so a per-step value costs an append.

    Flushes happen when the buffer holds a full batch or a point older than
    :data:`FLUSH_MS`, at every :meth:`save` (Lightning calls it after each validation) and at
    :meth:`finalize`. A flush hands the points to an
    :class:`~lrexp.tracking.outbox.Outbox`, which sends them on a background thread, retries
    while the server is away and spills them to ``<spill_dir>/unsent/`` after
    ``retry_seconds``; :meth:`finalize` waits for them. ``run`` may be set later (a run opened
    after its first step): until then points wait in the buffer. Points at steps the store
    already holds (a resumed run) are dropped at the flush. :meth:`put` takes points from
    other threads (the system-metrics sampler) straight to the outbox.
    """

    def __init__(
        self,
        run: TrackedRun | None = None,
        spill_dir: Path | None = None,
        retry_seconds: float = 60.0,
    ) -> None:
        super().__init__()
        self.run = run
        self.buffer: list[tuple[str, float, int, int]] = []
        self.spill = SpillFile(spill_dir if spill_dir is not None else Path.cwd())
        self.retry_seconds = retry_seconds
        self.outbox: Outbox | None = None
        self.outbox_lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        """Without the lock and the outbox's thread, which cannot be pickled (DDP's spawn
        pickles the Trainer); a spawned process makes its own outbox when it logs."""
        state = {k: v for k, v in self.__dict__.items() if k != "outbox_lock"}
        return {**state, "outbox": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.outbox_lock = threading.Lock()

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
        if len(self.buffer) >= METRICS_PER_BATCH or now - self.buffer[0][2] >= FLUSH_MS:
            self.flush()

    @rank_zero_only
    def flush(self) -> None:
        """Hand every buffered point to the outbox (which sends it in the background)."""
        if not self.buffer or self.run is None:
            return
        logged = self.run.logged_until
        points = [point for point in self.buffer if point[3] > logged.get(point[0], -1)]
        if points:
            self.put(points)
        self.buffer = []

    def put(self, points: list[Point]) -> None:
        """Hand ``points`` to the outbox (made on first use); safe from any thread."""
        with self.outbox_lock:
            if self.run is None:
                return
            if self.outbox is None:
                from lrexp.tracking.outbox import Outbox

                self.outbox = Outbox(self.run, self.spill, self.retry_seconds)
            self.outbox.put(points)

    def drain(self, restart: bool = True) -> bool:
        """Flush and wait for the outbox; True when every point is in the store."""
        self.flush()
        return self.outbox.drain(restart) if self.outbox is not None else True

    @rank_zero_only
    def save(self) -> None:
        self.flush()

    @rank_zero_only
    def finalize(self, status: str) -> None:
        self.drain()

    def close_run(self, record: CloseRecord, planned: Sequence[float], output_dir: Path) -> bool:
        """Deliver every point, then end the run as ``record`` says; when the server is away
        the close goes to the spill file too. True when all of it is in the store."""
        from lrexp.tracking.outbox import finish_run, retryable

        assert self.run is not None
        if self.drain(restart=False):
            try:
                finish_run(self.run, record, planned, output_dir)
                return True
            except Exception as err:
                if not retryable(err):
                    raise
        self.spill.start(self.run.run_id, self.run.tracking_uri, self.run.experiment_name)
        self.spill.append_close(record)
        return False
