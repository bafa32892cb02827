"""Reading full metric histories (``lr``/``lr/<group>``, ``val/acc``, ``val/loss``) in bulk.

Each kind of store has its fast path, and every one falls back to MLflow's client
(``get_metric_history`` per run and key, in 8 threads) when it fails:

- ``sqlite://``: the ``metrics`` table read directly (read-only, one indexed query per run
  and key);
- ``postgresql://``: the same table read directly with psycopg, one query per key;
- ``http(s)://``: each run's history file where it vouches for one, else the server's bulk
  endpoint (:mod:`lrexp.compare.bulk_http`), many runs per request, requests in parallel.

``make bench-compare`` times them on 50 runs x 10k ``lr`` points (README).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from lrexp.compare.bulk_http import Voucher, http_histories
from lrexp.compare.common import CompareError, History, Point, is_lr_key
from lrexp.compare.store import first_line, sqlite_path

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient


def sqlite_histories(
    database: Path, run_ids: Sequence[str], keys: Sequence[str]
) -> dict[str, History]:
    """Every point of ``keys`` for ``run_ids``, in step order, read straight from the
    ``metrics`` table of an MLflow SQLite file (read-only connection).

    One query per (run, key) over MLflow's ``(run_uuid, key, step)`` index, returning only step
    and value: Python's per-row cost dominates, and a single ``IN`` query that also returns the
    run id and key of every row measured about twice as slow. ``ORDER BY step`` also steers
    SQLite to that index (without it, it scans the primary key of every run's rows: ~8x slower).
    LR keys are not tie-broken by timestamp (a second LR value at one step changes nothing
    here); the few validation points are, so the last value is the last one logged.
    """
    import sqlite3

    select = "SELECT step, value, is_nan FROM metrics WHERE run_uuid = ? AND key = ? "
    by_step = select + "ORDER BY step"
    by_step_time = select + "ORDER BY step, timestamp"
    out: dict[str, History] = {}
    con = sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        for run_id in run_ids:
            history: History = {}
            for key in keys:
                query = by_step if is_lr_key(key) else by_step_time
                rows = con.execute(query, (run_id, key)).fetchall()
                if rows:
                    history[key] = [
                        (step, math.nan if is_nan else value) for step, value, is_nan in rows
                    ]
            out[run_id] = history
    finally:
        con.close()
    return out


def is_postgres(tracking_uri: str) -> bool:
    return tracking_uri.split(":", 1)[0].split("+")[0] in ("postgresql", "postgres")


def postgres_histories(
    tracking_uri: str, run_ids: Sequence[str], keys: Sequence[str]
) -> dict[str, History]:
    """The same as :func:`sqlite_histories` from a ``postgresql://`` store, with psycopg: one
    query per key over MLflow's ``(run_uuid, key, step)`` index, in a read-only transaction."""
    try:
        import psycopg
    except ImportError:
        raise CompareError(
            "reading a postgresql:// store needs psycopg: pip install 'psycopg[binary]'"
        ) from None
    from sqlalchemy.engine import make_url

    url = make_url(tracking_uri)
    out: dict[str, History] = {run_id: {} for run_id in run_ids}
    query = (
        "SELECT run_uuid, step, value, is_nan FROM metrics WHERE key = %s "
        "AND run_uuid = ANY(%s) ORDER BY run_uuid, step, timestamp"
    )
    from psycopg.conninfo import make_conninfo

    options = {k: str(v) for k, v in url.query.items()}
    conninfo = make_conninfo(
        host=url.host, port=url.port, user=url.username, password=url.password,
        dbname=url.database, **options,
    )  # fmt: skip
    with psycopg.connect(conninfo) as con:
        con.read_only = True
        for key in keys:
            for run_id, step, value, is_nan in con.execute(query, (key, list(run_ids))):
                point: Point = (step, math.nan if is_nan else value)
                out[run_id].setdefault(key, []).append(point)
    return out


def client_histories(
    client: MlflowClient, run_ids: Sequence[str], keys: Sequence[str], workers: int = 8
) -> dict[str, History]:
    """The same as :func:`sqlite_histories` through ``get_metric_history`` (any store)."""

    def one(run_id: str, key: str) -> tuple[str, str, list[Point]]:
        history = client.get_metric_history(run_id, key)
        ordered = sorted(history, key=lambda m: (m.step, m.timestamp))
        return run_id, key, [(int(m.step), float(m.value)) for m in ordered]

    out: dict[str, History] = {run_id: {} for run_id in run_ids}
    jobs = [(run_id, key) for run_id in run_ids for key in keys]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for run_id, key, points in pool.map(lambda job: one(*job), jobs):
            if points:
                out[run_id][key] = points
    return out


def read_histories(
    client: MlflowClient,
    tracking_uri: str,
    run_ids: Sequence[str],
    keys: Sequence[str],
    bulk: bool = True,
    vouchers: Mapping[str, Voucher] | None = None,
) -> dict[str, History]:
    """Full histories of ``keys``: the store's bulk path, else (or on failure) the client.
    ``vouchers`` (run id -> history-file token and latest metrics) lets a server's runs be
    read from their history files."""
    if bulk and run_ids and keys:
        database = sqlite_path(tracking_uri)
        try:
            if database is not None:
                return sqlite_histories(database, run_ids, keys)
            if is_postgres(tracking_uri):
                return postgres_histories(tracking_uri, run_ids, keys)
            if tracking_uri.startswith(("http://", "https://")):
                return http_histories(tracking_uri, run_ids, keys, vouchers)
        except Exception as err:  # an unexpected schema or server: the slow path still works
            print(
                f"lrexp-compare: bulk read failed ({first_line(err)}); "
                "falling back to get_metric_history",
                file=sys.stderr,
            )
    try:
        return client_histories(client, run_ids, keys)
    except Exception as err:
        raise CompareError(f"reading metric histories failed: {first_line(err)}") from err
