"""MLflow run lifecycle: create the run up front, log params in batches, end with a status."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from mlflow.entities import Dataset, DatasetInput, Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from lrexp.errors import TrackingUnavailableError
from lrexp.tracking.history_file import TOKEN_TAG
from lrexp.tracking.server import access_error, is_http
from lrexp.tracking.storelock import store_lock
from lrexp.tracking.uri import METRICS_PER_BATCH, PARAMS_PER_BATCH, redact

T = TypeVar("T")


def is_unreachable(err: BaseException) -> bool:
    """True for connection failures (as opposed to a refusal by a server that answered)."""
    text = f"{type(err).__name__} {err}".lower()
    return any(
        word in text
        for word in ("connection", "max retries", "timed out", "name or service", "refused")
    )


def retry_locked(call: Callable[[], T], attempts: int = 20, delay: float = 0.05) -> T:
    """Run ``call``, retrying with backoff while SQLite reports the database as locked."""
    for attempt in range(attempts):
        try:
            return call()
        except Exception as err:
            if "locked" not in str(err).lower() or attempt == attempts - 1:
                raise
            time.sleep(delay * (1.5**attempt))
    raise AssertionError("unreachable")


def artifact_uri(tracking_uri: str, artifact_location: str | None) -> str | None:
    """Where a new experiment keeps its artifacts: ``artifact_location`` as a URI, except that
    a tracking server is left to choose (its ``--artifacts-destination``) rather than being
    given a folder of this machine that no one else can read."""
    if not artifact_location:
        return None
    if "://" in artifact_location or ":" in artifact_location.split("/")[0]:
        return artifact_location
    return None if is_http(tracking_uri) else Path(artifact_location).resolve().as_uri()


def chunks(items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def open_client(tracking_uri: str) -> MlflowClient:
    """An MLflow client; a new store is created (migrated) by one process at a time."""
    with store_lock(tracking_uri):
        return MlflowClient(tracking_uri)


class TrackedRun:
    """One MLflow run, created before training so every process can share its id."""

    def __init__(
        self,
        tracking_uri: str,
        experiment_name: str,
        run_name: str,
        tags: Mapping[str, str],
        artifact_location: str | None = None,
        run_id: str | None = None,
    ) -> None:
        self.tracking_uri = tracking_uri
        if tracking_uri.startswith(("http://", "https://")):
            # fail within seconds, not after MLflow's default minutes of retries
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
        try:
            # creating (migrating) a new store and the experiment: one process at a time
            with store_lock(tracking_uri):
                self.client = MlflowClient(tracking_uri)
                location = artifact_uri(tracking_uri, artifact_location)
                experiment_id = None if run_id else self.experiment_id(experiment_name, location)
            self._open(experiment_id, experiment_name, run_name, tags, run_id)
        except Exception as err:
            status = getattr(err, "get_http_status_code", lambda: 0)()
            refused = access_error(tracking_uri, experiment_name, status)
            if refused is not None:
                raise refused from None
            if not is_unreachable(err):
                raise
            reason = str(err).splitlines()[0][:200]
            raise TrackingUnavailableError(
                f"cannot reach the MLflow tracking server at {redact(tracking_uri)} ({reason}); "
                "start it, fix logger.tracking_uri, or set logger.fallback_to_local=true"
            ) from None

    def _open(
        self,
        experiment_id: str | None,
        experiment_name: str,
        run_name: str,
        tags: Mapping[str, str],
        run_id: str | None,
    ) -> None:
        if run_id is None:
            assert experiment_id is not None
            run = retry_locked(
                lambda: self.client.create_run(experiment_id, run_name=run_name, tags=dict(tags))
            )
            run_id = run.info.run_id
        self.run_id: str = run_id
        #: metric key -> last step already in the store (a resumed run skips those steps)
        self.logged_until: dict[str, int] = {}
        self.experiment_name = experiment_name
        self.run_name = run_name

    def experiment_id(self, name: str, location: str | None) -> str:
        """The id of experiment ``name``, created when missing; another process creating it
        at the same moment (runs started together) is not an error."""
        from mlflow.exceptions import MlflowException

        experiment = retry_locked(lambda: self.client.get_experiment_by_name(name))
        if experiment is not None:
            return str(experiment.experiment_id)
        try:
            return str(retry_locked(lambda: self.client.create_experiment(name, location)))
        except MlflowException as err:
            if err.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        experiment = retry_locked(lambda: self.client.get_experiment_by_name(name))
        if experiment is None:  # created and deleted again in between
            raise MlflowException(f"experiment {name!r} vanished while it was being created")
        return str(experiment.experiment_id)

    def reopen(self) -> None:
        """Mark a resumed run RUNNING again and note the last step logged for each metric; its
        history file no longer holds every point, so the tag vouching for it goes."""
        run = retry_locked(lambda: self.client.get_run(self.run_id))
        if TOKEN_TAG in run.data.tags:
            retry_locked(lambda: self.client.delete_tag(self.run_id, TOKEN_TAG))
        for key in run.data.metrics:
            history = retry_locked(partial(self.client.get_metric_history, self.run_id, key))
            self.logged_until[key] = max(m.step for m in history)
        retry_locked(lambda: self.client.update_run(self.run_id, status="RUNNING"))
        self.set_tags({"host": socket.gethostname(), "pid": str(os.getpid())})

    def log_dataset(self, name: str, digest: str, source: str, sizes: Mapping[str, int]) -> None:
        """Record the training data as an MLflow dataset input (name, digest, split sizes)."""
        profile = json.dumps({"num_examples": dict(sizes)})
        dataset = Dataset(name, digest, "lrexp", source, profile=profile)
        retry_locked(lambda: self.client.log_inputs(self.run_id, [DatasetInput(dataset)]))

    def log_params(self, params: Mapping[str, str]) -> None:
        items = [Param(k, v) for k, v in params.items()]
        for part in chunks(items, PARAMS_PER_BATCH):
            retry_locked(partial(self.client.log_batch, self.run_id, params=part))

    def set_tags(self, tags: Mapping[str, str]) -> None:
        items = [RunTag(k, v) for k, v in tags.items()]
        for part in chunks(items, PARAMS_PER_BATCH):
            retry_locked(partial(self.client.log_batch, self.run_id, tags=part))

    def log_metrics(self, metrics: Sequence[Metric]) -> None:
        for part in chunks(metrics, METRICS_PER_BATCH):
            retry_locked(partial(self.client.log_batch, self.run_id, metrics=part))

    def log_artifact(self, path: Path) -> None:
        retry_locked(lambda: self.client.log_artifact(self.run_id, str(path)))

    def end(self, status: str) -> None:
        """Mark the run FINISHED, FAILED or KILLED."""
        retry_locked(lambda: self.client.set_terminated(self.run_id, status))


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def mark_dead_runs_killed(client: MlflowClient, runs: Sequence[Any]) -> list[str]:
    """Runs still RUNNING whose process (recorded in the ``host``/``pid`` tags) is gone on this
    host, e.g. after SIGKILL, are marked KILLED; returns their ids."""
    host = socket.gethostname()
    reaped = []
    for run in runs:
        tags = run.data.tags
        if run.info.status != "RUNNING" or tags.get("host") != host or "pid" not in tags:
            continue
        if not process_alive(int(tags["pid"])):
            retry_locked(partial(client.set_terminated, run.info.run_id, "KILLED"))
            run.info._status = "KILLED"
            reaped.append(run.info.run_id)
    return reaped
