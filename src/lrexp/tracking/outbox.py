"""Delivering a run's metric batches to its store without ever stalling training.

:class:`Outbox` sends batches in order on a background thread. While the tracking server does
not answer it retries with backoff (0.5 s doubling to 8 s); once it has been away for
``retry_seconds`` it spills the batch, and every batch after it, to the run's spill file
(:mod:`lrexp.tracking.spill`) and probes the server every few seconds. When the server answers
again the spill file is replayed in order and sending goes on from memory. :func:`deliver`
(shared with ``lrexp-sync``) replays a spill file.
"""

from __future__ import annotations

import csv
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lrexp.tracking.spill import CloseRecord, Point, SpillFile, close_record
from lrexp.tracking.uri import redact

if TYPE_CHECKING:
    from lrexp.tracking.store import TrackedRun

FIRST_BACKOFF = 0.5
MAX_BACKOFF = 8.0
PROBE_SECONDS = 2.0


def retryable(err: BaseException) -> bool:
    """Connection failures and server-side errors (5xx): worth sending again later."""
    from lrexp.tracking.store import is_unreachable

    server_side = getattr(err, "get_http_status_code", lambda: 0)() >= 500
    return is_unreachable(err) or server_side


def send_points(run: TrackedRun, points: Sequence[Sequence[Any]]) -> None:
    """Log ``(key, value, timestamp, step)`` points (tuples, or lists read back from JSON)."""
    from mlflow.entities import Metric

    run.log_metrics([Metric(str(k), float(v), int(t), int(s)) for k, v, t, s in points])


def read_planned(path: str | None) -> list[float]:
    """The planned LR per step from ``planned_lr.csv`` (empty when there is none)."""
    if not path or not Path(path).is_file():
        return []
    with open(path, newline="") as handle:
        return [float(row["planned_lr"]) for row in csv.DictReader(handle)]


def finish_run(
    run: TrackedRun, record: CloseRecord, planned: Sequence[float], output_dir: Path
) -> None:
    """Log the closing artifacts and figures, set the final tags, end with the status."""
    from lrexp.tracking.artifacts import log_history_file, log_run_figures, stored_histories

    for path in record.artifacts:
        run.log_artifact(Path(path))
    stored = stored_histories(run)
    log_run_figures(run, planned, stored, output_dir, record.label)
    log_history_file(run, stored, output_dir)
    run.set_tags(record.tags)
    run.end(record.status)


def deliver(spill: SpillFile, run: TrackedRun, output_dir: Path) -> tuple[int, str | None]:
    """Send every unsent record of ``spill`` to ``run``, marking each one sent as it lands;
    returns the points sent and the status a ``close`` record ended the run with."""
    points, status = 0, None
    for offset, record in spill.unsent():
        if record["kind"] == "metrics":
            send_points(run, record["points"])
            points += len(record["points"])
        elif record["kind"] == "close":
            close = close_record(record)
            finish_run(run, close, read_planned(close.planned_csv), output_dir)
            status = close.status
        spill.mark_sent(offset)
    return points, status


class Outbox:
    """Ordered background delivery of metric batches for one run; see the module docstring."""

    def __init__(self, run: TrackedRun, spill: SpillFile, retry_seconds: float) -> None:
        self.run = run
        self.spill = spill
        self.retry_seconds = retry_seconds
        self.queue: deque[list[Point]] = deque()
        self.cond = threading.Condition()
        self.closing = False
        self.spilling = spill.pending()  # left by an earlier attempt of this run
        self.outage_since: float | None = None
        self.thread = self._start()

    def _start(self) -> threading.Thread:
        thread = threading.Thread(target=self._loop, name="lrexp-outbox", daemon=True)
        thread.start()
        return thread

    def put(self, points: list[Point]) -> None:
        with self.cond:
            self.queue.append(points)
            self.cond.notify_all()

    def drain(self, restart: bool = True) -> bool:
        """Wait until every batch is in the store, or spilled after ``retry_seconds`` without
        a server; True when everything is in the store."""
        with self.cond:
            self.closing = True
            self.cond.notify_all()
        self.thread.join()
        delivered = not self.spilling
        if restart:
            self.closing = False
            self.thread = self._start()
        return delivered

    def _loop(self) -> None:
        while True:
            with self.cond:
                if not self.queue and not self.spilling:
                    if self.closing:
                        return
                    self.cond.wait()
                    continue
                batch = self.queue.popleft() if self.queue else None
            if batch is not None and not self.spilling:
                self._send(batch)
            elif batch is not None:
                self.spill.append_points(batch)
            elif self._replay():
                self.spilling = False
            elif self.closing:
                return
            else:
                with self.cond:
                    self.cond.wait(PROBE_SECONDS)

    def _send(self, batch: list[Point]) -> None:
        """Send one batch, retrying with backoff; spill it once the outage is too long."""
        backoff = FIRST_BACKOFF
        while True:
            try:
                send_points(self.run, batch)
                self.outage_since = None
                return
            except Exception as err:
                now = time.monotonic()
                self.outage_since = self.outage_since or now
                waited = now - self.outage_since
                if not retryable(err) or waited >= self.retry_seconds:
                    self._start_spilling(err, waited)
                    self.spill.append_points(batch)
                    return
            time.sleep(min(backoff, self.retry_seconds - waited))
            backoff = min(2 * backoff, MAX_BACKOFF)

    def _start_spilling(self, err: BaseException, waited: float) -> None:
        self.spilling = True
        run = self.run
        self.spill.start(run.run_id, run.tracking_uri, run.experiment_name)
        reason = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        print(
            f"lrexp: warning: the tracking server at {redact(run.tracking_uri)} has not taken "
            f"points for {waited:.0f} s ({reason}); training goes on, points are kept in "
            f"{self.spill.path} and sent when it answers",
            file=sys.stderr,
            flush=True,
        )

    def _replay(self) -> bool:
        """Send the spill file; False (and nothing lost) when the server is still away."""
        try:
            points, _ = deliver(self.spill, self.run, self.spill.folder.parent)
        except Exception:
            return False
        print(
            f"lrexp: the tracking server at {redact(self.run.tracking_uri)} answers again; "
            f"sent {points} kept points",
            file=sys.stderr,
            flush=True,
        )
        self.outage_since = None
        return True
