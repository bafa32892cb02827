"""The MLflow side of one run, reused by every trainer (training, the LR finder, forks).

:class:`RunLifecycle` is a context manager. Entering makes the buffered Lightning logger and
opens a new run (tags, the flattened config as params) or reopens the run a checkpoint was
written by; with ``defer=True`` (a single-process run) a new run is opened only after the
first optimizer step (:meth:`RunLifecycle.callbacks`), so that neither importing MLflow nor
opening its store delays training; points wait in the logger's buffer meanwhile. Opening logs
the planned LR (``planned_lr.csv``) and starts the system-metrics sampler. Leaving flushes
every buffered point, logs the resolved config and the run's figures, and ends the run
FINISHED, FAILED (any exception; tagged ``diverged=true`` for a non-finite loss) or KILLED
(SIGTERM, Ctrl-C, ``sys.exit``). A run that fails on a config, data or store error before it
was opened is never opened. Only the process of rank 0 tracks: ranks started by a launcher
(Lightning's ddp, torchrun) get no run.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from lrexp.errors import ConfigError, DataUnavailableError, DivergedError
from lrexp.run.callbacks import AtStep
from lrexp.tracking.logger import BufferedMlflowLogger
from lrexp.tracking.spill import CloseRecord, check_unsent
from lrexp.tracking.system_metrics import system_monitor
from lrexp.tracking.uri import make_sqlite_folder, redact

if TYPE_CHECKING:
    from lrexp.run.spec import RunSpec, TrackingSpec
    from lrexp.tracking.store import TrackedRun

#: File in a multirun's sweep directory that holds the sweep's parent run id.
PARENT_FILE = ".lrexp_parent_run_id"
#: Exceptions that mean "stopped from outside", not "failed".
STOPPED = (KeyboardInterrupt, SystemExit)
#: Errors that leave a deferred run unopened: the user fixes the input and runs again.
NEVER_OPENED = (ConfigError, DataUnavailableError)


def parent_run_id() -> str | None:
    """The sweep's parent run id when called inside a multirun job, else None."""
    try:
        hydra_cfg = HydraConfig.get()
    except ValueError:
        return None
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return None
    marker = Path(hydra_cfg.sweep.dir) / PARENT_FILE
    return marker.read_text().strip() if marker.is_file() else None


def git_commit(root: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def launched_rank() -> int:
    """The global rank a launcher (Lightning's ddp, torchrun) gave this process, else 0."""
    return int(os.environ.get("RANK") or os.environ.get("LOCAL_RANK") or 0)


def start_run(
    spec: RunSpec,
    tracking: TrackingSpec,
    output_dir: Path,
    extra_tags: dict[str, str] | None = None,
) -> TrackedRun:
    """Create the MLflow run ``spec.name`` with its tags and the run's params (the resolved
    config, flattened)."""
    from lrexp.search.workers import trial_tags
    from lrexp.tracking.store import TrackedRun, TrackingUnavailableError

    tags = {**(extra_tags or {}), **spec.labels, "output_dir": str(output_dir)}
    commit = git_commit(spec.root_dir)
    if commit:
        tags["git_commit"] = commit
    parent = parent_run_id()
    if parent:
        tags["mlflow.parentRunId"] = parent
        tags["sweep_id"] = parent
    tags.update({"host": socket.gethostname(), "pid": str(os.getpid())})
    tags.update(trial_tags(os.environ))  # a search's job: its study and trial
    uri, name, experiment = tracking.tracking_uri, spec.name, tracking.experiment_name
    artifacts = tracking.artifact_location
    try:
        run = TrackedRun(uri, experiment, name, tags, artifact_location=artifacts)
    except OSError as err:  # e.g. MLflow cannot create the SQLite file's folder
        raise ConfigError("logger.tracking_uri", f"cannot open {redact(uri)}: {err}") from None
    except TrackingUnavailableError as err:
        if not tracking.fallback_to_local:
            raise
        local = tracking.local_store
        print(f"lrexp: warning: {err}; logging to {local} instead", file=sys.stderr)
        run = TrackedRun(local, experiment, name, tags, artifact_location=artifacts)
    run.log_params(spec.params)
    return run


#: Called with the open run right after it is opened (e.g. to log an LR search into it).
OnOpen = Callable[["TrackedRun"], None]


class RunLifecycle:
    """Open (or reopen), log to and close the MLflow run ``spec`` describes; see the module
    docstring.

    ``run_id``: the run to continue (a resumed checkpoint's, opened at once), tagged
    ``resumed_from=resume``. ``extra_tags``: for a new run. ``defer``: open a new run after
    the first optimizer step. Set :attr:`planned` (the planned LR per optimizer step) before
    the run opens, and add to :attr:`tags` while it trains.
    """

    def __init__(
        self,
        spec: RunSpec,
        output_dir: Path,
        *,
        resume: Path | None = None,
        run_id: str | None = None,
        extra_tags: dict[str, str] | None = None,
        on_open: Sequence[OnOpen] = (),
        defer: bool = False,
    ) -> None:
        self.spec = spec
        self.tracking = spec.tracking
        self.output_dir = output_dir
        self.resume = resume
        self.resumed_run_id = run_id
        self.extra_tags = extra_tags
        self.on_open = on_open
        self.defer = defer
        self.open_failed = False
        self.run: TrackedRun | None = None
        self.logger: BufferedMlflowLogger | None = None
        self.planned: Sequence[float] = ()
        self.tags: dict[str, str] = {}
        self.monitor: Any = None

    @property
    def run_id(self) -> str | None:
        return self.run.run_id if self.run is not None else None

    def callbacks(self) -> list[pl.Callback]:
        """Lightning callbacks of the tracked run: a deferred run opens after the first step."""
        if self.logger is None or self.run is not None:
            return []
        return [AtStep(1, lambda trainer: self.open())]

    def __enter__(self) -> RunLifecycle:
        if self.tracking is None or launched_rank() != 0:
            return self
        check_unsent(self.output_dir, self.resumed_run_id)
        retry_seconds = self.tracking.retry_seconds
        self.logger = BufferedMlflowLogger(spill_dir=self.output_dir, retry_seconds=retry_seconds)
        if not self.defer or self.resumed_run_id is not None:
            self.open()
            return self
        uri = self.tracking.tracking_uri
        try:
            make_sqlite_folder(uri)
        except OSError as err:
            folder = f"the folder {err.filename}" if err.filename else "its folder"
            reason = err.strerror or str(err)
            raise ConfigError(
                "logger.tracking_uri",
                f"cannot open {redact(uri)}: cannot create {folder} ({reason})",
            ) from None
        return self

    def open(self) -> None:
        """Open (or reopen) the run, once; then run the ``on_open`` hooks and flush. A failed
        open is not tried again (at the close, say): its error is what the user sees."""
        if self.run is not None or self.logger is None or self.open_failed:
            return
        from lrexp.tracking.artifacts import write_plan_csv

        try:
            self.run = self.connect()
        except BaseException:
            self.open_failed = True
            raise
        self.logger.run = self.run
        if self.planned:
            self.run.log_artifact(write_plan_csv(self.planned, self.output_dir / "planned_lr.csv"))
        for hook in self.on_open:
            hook(self.run)
        resumed = self.resumed_run_id is not None
        assert self.tracking is not None  # a logger exists only for a tracked run
        interval = self.tracking.system_metrics_interval
        self.monitor = system_monitor(interval, self.run, resumed, self.logger.put)
        if self.monitor is not None:
            self.monitor.start()
        self.logger.flush()

    def connect(self) -> TrackedRun:
        """A new run, or the resumed run marked RUNNING again and tagged ``resumed_from``."""
        from lrexp.tracking.store import TrackedRun

        assert self.tracking is not None
        self.output_dir.mkdir(parents=True, exist_ok=True)
        if self.resumed_run_id is None:
            return start_run(self.spec, self.tracking, self.output_dir, self.extra_tags)
        run = TrackedRun(
            self.tracking.tracking_uri,
            self.tracking.experiment_name,
            self.spec.name,
            {},
            run_id=self.resumed_run_id,
        )
        run.reopen()
        run.set_tags({"resumed_from": str(self.resume)})
        return run

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        from pytorch_lightning.utilities.exceptions import SIGTERMException

        if self.logger is not None and self.run is None:
            if isinstance(exc, NEVER_OPENED):
                return  # nothing was tracked yet: leave nothing half-done in the store
            self.open()
        if exc is None:
            status = "FINISHED"
        elif isinstance(exc, (*STOPPED, SIGTERMException)):
            status = "KILLED"
        else:
            status = "FAILED"
            if isinstance(exc, DivergedError):
                self.tags["diverged"] = "true"
        if self.monitor is not None:
            self.monitor.finish()
        if self.run is not None:
            self.close(status)

    def close(self, status: str) -> None:
        """Deliver buffered points, log the config and figures, then set the final status;
        with the server away, all of that is kept for ``lrexp-sync`` (one line says so)."""
        assert self.run is not None and self.logger is not None
        config_file = self.output_dir / "resolved_config.yaml"
        config_file.write_text(self.spec.resolved_yaml)
        last = self.output_dir / "checkpoints" / "last.ckpt"
        if last.is_file():
            self.tags["checkpoint"] = str(last)
        planned = str(self.output_dir / "planned_lr.csv") if self.planned else None
        label = self.spec.name
        record = CloseRecord(status, dict(self.tags), [str(config_file)], planned, label)
        if not self.logger.close_run(record, self.planned, self.output_dir):
            print(
                f"lrexp: the tracking server at {redact(self.run.tracking_uri)} is away; this "
                f"run's unsent points and its end are kept in {self.logger.spill.folder}; "
                f"upload them with: lrexp-sync {self.output_dir}",
                file=sys.stderr,
                flush=True,
            )
