"""A worker that loses its Optuna storage for a while (a PostgreSQL restart, a network cut).

Every storage call of the sweeper (open, claim, tell, finish) is retried for
``hydra.sweeper.storage_retry_seconds``; past that, :class:`StorageUnavailable` stops the
worker with one line. Nothing is half-written in between: a call either committed or did not,
and a trial the worker was running stays RUNNING, goes stale (its heartbeat stops) and is run
again by another worker, or by the same command started again. The heartbeat threads keep
trying through an outage (Optuna's own thread dies at its first error, which would let
another worker fail a trial whose job is still running once the database is back).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import optuna
    from optuna.storages import BaseStorage

log = logging.getLogger("lrexp.search")
T = TypeVar("T")
#: seconds between attempts while the storage is away
RETRY_EVERY = 1.0


class StorageUnavailable(RuntimeError):
    """The storage stayed unreachable for longer than the retry bound."""


def storage_errors() -> tuple[type[BaseException], ...]:
    """What a lost database raises: SQLAlchemy's errors (connection refused or dropped), and
    Optuna's wrapper of them."""
    from optuna.exceptions import StorageInternalError
    from sqlalchemy.exc import SQLAlchemyError

    return (StorageInternalError, SQLAlchemyError)


def first_line(err: BaseException) -> str:
    text = str(err.__cause__ or err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def retry_storage(call: Callable[[], T], seconds: float, what: str) -> T:
    """``call()``, tried again every second while the storage is away, for ``seconds``."""
    deadline = time.monotonic() + seconds
    warned = False
    while True:
        try:
            return call()
        except storage_errors() as err:
            if time.monotonic() >= deadline:
                raise StorageUnavailable(
                    f"{what}: unreachable for {seconds:g} s ({first_line(err)})"
                ) from None
            if not warned:
                log.warning("Optuna storage away (%s); retrying for %g s", first_line(err), seconds)
                warned = True
            time.sleep(RETRY_EVERY)


class Heartbeat(threading.Thread):
    """Records a trial's heartbeat every ``interval`` seconds until stopped; through an
    outage it tries every :data:`RETRY_EVERY` seconds instead of dying."""

    def __init__(self, trial_id: int, storage: BaseStorage, interval: float) -> None:
        super().__init__(daemon=True)
        self.trial_id = trial_id
        self.storage = storage
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while True:
            try:
                self.storage.record_heartbeat(self.trial_id)  # type: ignore[attr-defined]
                wait = self.interval
            except storage_errors():
                wait = RETRY_EVERY
            if self.stopped.wait(wait):
                return


@contextlib.contextmanager
def heartbeats(trials: Sequence[optuna.Trial]) -> Iterator[None]:
    """A heartbeat thread for each trial while its job runs (with heartbeats enabled)."""
    from optuna.storages._heartbeat import is_heartbeat_enabled

    threads = [
        Heartbeat(t._trial_id, t.storage, t.storage.get_heartbeat_interval())  # type: ignore[attr-defined]
        for t in trials
        if is_heartbeat_enabled(t.storage)
    ]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        for thread in threads:
            thread.stopped.set()
            thread.join()
