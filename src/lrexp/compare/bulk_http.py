"""Metric histories from an MLflow tracking server in bulk, over HTTP.

MLflow 3.17's ``GET /ajax-api/2.0/mlflow/metrics/get-history-bulk`` (server handler
``get_metric_history_bulk_handler``) takes one metric key and up to 100 ``run_id``s and
answers at most 25,000 points, sorted by run id, then timestamp and step, with no page token:
an answer of exactly 25,000 points may have been cut. The runs before the last one in such an
answer are complete; the last one and those after it are asked again, each on its own. A
single run with more than 25,000 points of one key is read page by page from
``/api/2.0/mlflow/metrics/get-history`` (which has page tokens). LR keys (a point per step)
are asked one run per request, validation keys 100 runs per request; requests go out in
parallel. ``.../get-history-bulk-interval`` is not used: it samples (<= 2,500 points a run).

Credentials are MLflow's: ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD`` (or
``MLFLOW_TRACKING_TOKEN``), or a ``user:password@`` in the URI.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from lrexp.compare.common import History, Point, is_lr_key
from lrexp.tracking.server import auth_headers

BULK = "/ajax-api/2.0/mlflow/metrics/get-history-bulk"
PAGED = "/api/2.0/mlflow/metrics/get-history"
MAX_RUNS = 100
MAX_POINTS = 25_000
TIMEOUT = 300

#: a request: metric key, run ids (sorted), whether to page through one run's history
Job = tuple[str, tuple[str, ...], bool]


def points_of(metrics: list[dict[str, Any]]) -> list[Point]:
    """``(step, value)`` in step order (timestamp breaks ties, so the last one logged wins)."""
    rows = sorted(
        (int(m.get("step", 0)), int(m.get("timestamp", 0)), float(m.get("value", 0.0)))
        for m in metrics
    )
    return [(step, math.nan if value != value else value) for step, _, value in rows]


class BulkReader:
    """One HTTP session (pooled connections, the user's credentials) for a reading."""

    def __init__(self, tracking_uri: str, workers: int) -> None:
        import requests
        from requests.adapters import HTTPAdapter

        self.base = tracking_uri.rstrip("/")
        self.session = requests.Session()
        self.session.headers.update(auth_headers())
        adapter = HTTPAdapter(pool_connections=workers, pool_maxsize=workers)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def get(self, path: str, params: list[tuple[str, str]]) -> dict[str, Any]:
        response = self.session.get(self.base + path, params=params, timeout=TIMEOUT)
        if response.status_code != 200:
            raise RuntimeError(f"{path}: HTTP {response.status_code}: {response.text[:200]}")
        return response.json()

    def run(self, job: Job) -> tuple[Job, list[dict[str, Any]]]:
        key, ids, paged = job
        if paged:
            return job, self.paged(key, ids[0])
        params = [("run_id", run_id) for run_id in ids]
        params += [("metric_key", key), ("max_results", str(MAX_POINTS))]
        return job, self.get(BULK, params).get("metrics", [])

    def paged(self, key: str, run_id: str) -> list[dict[str, Any]]:
        metrics: list[dict[str, Any]] = []
        token = ""
        while True:
            params = [("run_id", run_id), ("metric_key", key), ("max_results", str(MAX_POINTS))]
            if token:
                params.append(("page_token", token))
            answer = self.get(PAGED, params)
            metrics += [{**m, "run_id": run_id} for m in answer.get("metrics", [])]
            token = answer.get("next_page_token", "")
            if not token:
                return metrics


def first_jobs(run_ids: Sequence[str], keys: Sequence[str]) -> list[Job]:
    ordered = sorted(set(run_ids))
    jobs: list[Job] = []
    for key in keys:
        size = 1 if is_lr_key(key) else MAX_RUNS
        jobs += [(key, tuple(ordered[i : i + size]), False) for i in range(0, len(ordered), size)]
    return jobs


def split(job: Job, metrics: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[Job]]:
    """The points of the runs an answer holds completely, and the jobs that ask again."""
    key, ids, paged = job
    if paged or len(metrics) < MAX_POINTS:
        return metrics, []
    last = metrics[-1]["run_id"]
    if ids == (last,):
        return [], [(key, ids, True)]  # one run, more points than one answer: page through
    complete = [m for m in metrics if m["run_id"] != last]
    again: list[Job] = [(key, (run_id,), False) for run_id in ids if run_id >= last]
    return complete, again


def http_histories(
    tracking_uri: str, run_ids: Sequence[str], keys: Sequence[str], workers: int = 8
) -> dict[str, History]:
    """Every point of ``keys`` for ``run_ids`` from the server at ``tracking_uri``."""
    reader = BulkReader(tracking_uri, workers)
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        running: set[Future[tuple[Job, list[dict[str, Any]]]]] = {
            pool.submit(reader.run, job) for job in first_jobs(run_ids, keys)
        }
        while running:
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                job, metrics = future.result()
                complete, again = split(job, metrics)
                for m in complete:
                    grouped.setdefault((m["run_id"], job[0]), []).append(m)
                running |= {pool.submit(reader.run, retry) for retry in again}
    out: dict[str, History] = {run_id: {} for run_id in run_ids}
    for (run_id, key), metrics in grouped.items():
        if run_id in out:
            out[run_id][key] = points_of(metrics)
    return out
