"""System metrics (CPU, memory, disk, network, GPU when present) for a run.

MLflow's :class:`~mlflow.system_metrics.system_metrics_monitor.SystemMetricsMonitor` samples
them on its own thread, logs each sample straight to the store and asks the store after
every sample whether the run still runs: one failed request and it stops for good, so a
server away for a few seconds ends a run's system metrics. Its two loop methods are replaced
here (MLflow is pinned to 3.17, whose attributes they use): ``monitor`` samples until the
run's lifecycle calls ``finish``, and ``publish_metrics`` hands each sample to the run's
outbox, so samples are retried, spilled and sent by ``lrexp-sync`` like every other point. A
resumed run continues the ``system/*`` steps where the store left them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lrexp.tracking.spill import Point

if TYPE_CHECKING:
    from lrexp.tracking.store import TrackedRun


def system_monitor(
    interval: float | None,
    run: TrackedRun,
    resumed: bool,
    deliver: Callable[[list[Point]], None],
) -> Any:
    """MLflow's sampler for ``run``, a sample every ``interval`` seconds sent to ``deliver``
    (None when ``interval`` is None: switched off)."""
    if interval is None:
        return None
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    class OutboxMonitor(SystemMetricsMonitor):
        def monitor(self) -> None:
            stopped = self._shutdown_event
            while not stopped.is_set():
                for _ in range(self.samples_before_logging):
                    self.collect_metrics()
                    if stopped.wait(self.sampling_interval):
                        return
                self.publish_metrics(self.aggregate_metrics())

        def publish_metrics(self, metrics: dict[str, float]) -> None:
            prefix = self._metrics_prefix + (f"{self.node_id}/" if self.node_id else "")
            now = int(time.time() * 1000)
            step = self._logging_step
            deliver([(prefix + key, float(value), now, step) for key, value in metrics.items()])
            self._logging_step += 1
            for monitor in self.monitors:
                monitor.clear_metrics()

    return OutboxMonitor(
        run.run_id, interval, resume_logging=resumed, tracking_uri=run.tracking_uri
    )
