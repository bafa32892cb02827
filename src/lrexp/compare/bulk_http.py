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

Before any of that, a run that vouches for its history file (:mod:`lrexp.tracking.history_file`)
is read from that one artifact (``/get-artifact``), which the server sends as a file instead of
building a row per point; a file that is missing, carries another token or disagrees with the
run's latest metrics is ignored and the run goes through the bulk endpoint.

Credentials are MLflow's: ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD`` (or
``MLFLOW_TRACKING_TOKEN``), or a ``user:password@`` in the URI.
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from lrexp.compare.common import History, Point, is_lr_key
from lrexp.tracking.history_file import HISTORY_FILE, read_history_file
from lrexp.tracking.server import auth_headers

BULK = "/ajax-api/2.0/mlflow/metrics/get-history-bulk"
PAGED = "/api/2.0/mlflow/metrics/get-history"
ARTIFACT = "/get-artifact"
MAX_RUNS = 100
MAX_POINTS = 25_000
TIMEOUT = 300

#: a request: metric key, run ids (sorted), whether to page through one run's history
Job = tuple[str, tuple[str, ...], bool]
#: what a run's history file must agree with: its token tag and its latest metric values
Voucher = tuple[str, Mapping[str, float]]


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

    def history_file(self, run_id: str, voucher: Voucher, keys: Sequence[str]) -> History | None:
        """The run's ``keys`` from its history file, or None when it cannot be trusted."""
        response = self.session.get(
            self.base + ARTIFACT, params={"run_id": run_id, "path": HISTORY_FILE}, timeout=TIMEOUT
        )
        if response.status_code != 200:
            return None
        try:
            token, history = read_history_file(response.content)
        except (ValueError, KeyError, OSError, zipfile.BadZipFile):  # not a history file
            return None
        return trusted(token, history, voucher, keys)

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


def same_value(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def trusted(token: str, history: History, voucher: Voucher, keys: Sequence[str]) -> History | None:
    """``history`` cut to ``keys`` when the file's token is the run's and every key the run
    has ends on the run's latest value; else None."""
    expected, latest = voucher
    wanted = [key for key in keys if key in latest]
    if token != expected or any(
        not history.get(key) or not same_value(history[key][-1][1], latest[key]) for key in wanted
    ):
        return None
    return {key: history[key] for key in wanted}


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
    tracking_uri: str,
    run_ids: Sequence[str],
    keys: Sequence[str],
    vouchers: Mapping[str, Voucher] | None = None,
    workers: int = 8,
) -> dict[str, History]:
    """Every point of ``keys`` for ``run_ids`` from the server at ``tracking_uri``: from the
    history files of the runs in ``vouchers`` that pass their checks, the rest in bulk."""
    reader = BulkReader(tracking_uri, workers)
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    out: dict[str, History] = {run_id: {} for run_id in run_ids}
    vouchers = vouchers or {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        vouched = [run_id for run_id in run_ids if run_id in vouchers]
        files = pool.map(lambda r: reader.history_file(r, vouchers[r], keys), vouched)
        from_files = {r: h for r, h in zip(vouched, files, strict=True) if h is not None}
        out.update(from_files)
        rest = [run_id for run_id in run_ids if run_id not in from_files]
        running: set[Future[tuple[Job, list[dict[str, Any]]]]] = {
            pool.submit(reader.run, job) for job in first_jobs(rest, keys)
        }
        while running:
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                job, metrics = future.result()
                complete, again = split(job, metrics)
                for m in complete:
                    grouped.setdefault((m["run_id"], job[0]), []).append(m)
                running |= {pool.submit(reader.run, retry) for retry in again}
    for (run_id, key), metrics in grouped.items():
        if run_id in out:
            out[run_id][key] = points_of(metrics)
    return out
