"""Reading an MLflow store: open it and select the runs to compare (their metric histories
are read by :mod:`lrexp.compare.histories`)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lrexp.compare.common import CompareError
from lrexp.tracking.uri import DEFAULT_TRACKING_URI, scheme_problem, sqlite_database

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

PARENT_TAG = "mlflow.parentRunId"
SWEEP_TAG = "sweep"  # lrexp.cli.SweepTracker tags its parent runs sweep=parent


def sqlite_path(tracking_uri: str) -> Path | None:
    """The database file of a ``sqlite://`` URI (None for other schemes)."""
    try:
        return sqlite_database(tracking_uri)
    except ValueError as err:
        raise CompareError(str(err)) from None


def open_client(tracking_uri: str) -> MlflowClient:
    """An ``MlflowClient`` for an existing store; never creates or migrates a SQLite file."""
    wrong_scheme = scheme_problem(tracking_uri)
    if wrong_scheme:
        raise CompareError(f"--tracking-uri: {wrong_scheme}")
    database = sqlite_path(tracking_uri)
    if database is not None:
        if not database.is_file():
            hint = (
                "; train in this folder first, or pass --tracking-uri"
                if tracking_uri == DEFAULT_TRACKING_URI
                else ""
            )
            raise CompareError(f"no MLflow database at {database} (from {tracking_uri}){hint}")
        if not has_mlflow_tables(database):
            raise CompareError(f"{database} is not an MLflow tracking database")
    from mlflow.tracking import MlflowClient

    try:
        client = MlflowClient(tracking_uri)
        client.search_experiments(max_results=1)
    except Exception as err:
        message = first_line(err)
        if "Max retries exceeded" in message or "Failed to establish" in message:
            message = "the tracking server does not answer"
        raise CompareError(f"cannot read the MLflow store at {tracking_uri}: {message}") from err
    return client


def has_mlflow_tables(database: Path) -> bool:
    """Whether a SQLite file holds MLflow's ``experiments``, ``runs`` and ``metrics`` tables."""
    import sqlite3

    try:
        con = sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            rows = con.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        finally:
            con.close()
    except sqlite3.Error:
        return False
    return {"experiments", "runs", "metrics"} <= {name for (name,) in rows}


def first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0][:300]


def paged(fetch: Callable[[str | None], Any]) -> list[Any]:
    """All items of a paginated MLflow search (``fetch(page_token)`` returns a PagedList)."""
    items: list[Any] = []
    token: str | None = None
    while True:
        page = fetch(token)
        items.extend(page)
        token = page.token
        if not token:
            return items


def search(client: MlflowClient, experiment_ids: list[str], filter_string: str = "") -> list[Run]:
    def fetch(token: str | None) -> Any:
        return client.search_runs(experiment_ids, filter_string, max_results=1000, page_token=token)

    try:
        return paged(fetch)
    except Exception as err:
        raise CompareError(f"search failed: {first_line(err)}") from err


def select_runs(
    client: MlflowClient,
    *,
    experiment: str | None,
    parent: str | None,
    filter_string: str | None,
) -> tuple[list[Run], str]:
    """The runs to compare and a phrase describing the selection.

    ``experiment`` and ``parent`` exclude each other; ``filter_string`` alone searches every
    active experiment, and with one of them narrows it. Sweep parents (runs tagged
    ``sweep=parent`` or the parent of another selected run) are left out.
    """
    if experiment is not None and parent is not None:
        raise CompareError("give either an experiment or a parent run, not both")
    if experiment is None and parent is None and not filter_string:
        raise CompareError("select runs with an experiment, a parent run id or a filter")
    extra = filter_string or ""
    if experiment is not None:
        found = client.get_experiment_by_name(experiment)
        if found is None:
            names = sorted(e.name for e in paged(lambda t: client.search_experiments(page_token=t)))
            raise CompareError(
                f"unknown experiment {experiment!r} (known: {', '.join(names) or 'none'})"
            )
        runs = search(client, [found.experiment_id], extra)
        what = f"experiment {experiment!r}"
    elif parent is not None:
        if not re.fullmatch(r"[0-9A-Za-z_-]+", parent):
            raise CompareError(f"{parent!r} is not a run id")
        try:
            parent_run = client.get_run(parent)
        except Exception:
            raise CompareError(f"no run with id {parent}") from None
        children = f"tags.`{PARENT_TAG}` = '{parent}'"
        runs = search(
            client,
            [parent_run.info.experiment_id],
            f"{children} and {extra}" if extra else children,
        )
        what = f"children of run {parent}"
        if not runs and not extra:
            raise CompareError(f"run {parent} has no child runs")
    else:
        experiments = paged(lambda t: client.search_experiments(page_token=t))
        runs = search(client, [e.experiment_id for e in experiments], extra)
        what = "all experiments"
    if filter_string:
        what += f" matching {filter_string!r}"
    parents = {r.data.tags.get(PARENT_TAG) for r in runs}
    runs = [
        r for r in runs if r.info.run_id not in parents and r.data.tags.get(SWEEP_TAG) != "parent"
    ]
    if not runs:
        raise CompareError(f"no runs in {what}")
    return runs, what
