"""Tracking URIs and MLflow's request limits, without importing MLflow.

Light on purpose: config validation checks a store with it before anything is written, and a
run imports MLflow only once it opens its MLflow run (after its first optimizer step).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote

SQLITE_HEADER = b"SQLite format 3\x00"
#: MLflow's ``log_batch`` limits: params/tags and metrics per request
PARAMS_PER_BATCH = 100
METRICS_PER_BATCH = 1000


def redact(uri: str) -> str:
    """Hide credentials in a tracking URI (``scheme://user:secret@host`` -> ``user:***``)."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", uri)


#: the store a bare path most likely meant, and what the docs and the training default use
DEFAULT_TRACKING_URI = "sqlite:///mlruns/mlflow.db"


def scheme_problem(tracking_uri: str) -> str | None:
    """Why ``tracking_uri`` names no store MLflow 3 can use, with the fix, or None.

    A URI without a scheme (``mlruns/mlflow.db``) or with ``file:`` would be MLflow's retired
    file store, which fails only after the first step ("filesystem tracking backend is in
    maintenance mode"); a SQLite file is written ``sqlite:///path`` (``sqlite:////abs/path``).
    """
    scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*):", tracking_uri)
    if scheme is not None and scheme.group(1).lower() != "file":
        return None
    path = tracking_uri.removeprefix("file://") if scheme else tracking_uri
    path = path or "mlruns"
    database = path if path.endswith((".db", ".sqlite", ".sqlite3")) else f"{path}/mlflow.db"
    database = database.removeprefix("./")
    what = "names MLflow's" if scheme else "has no scheme, so MLflow 3 would take it for its"
    return (
        f"{tracking_uri!r} {what} retired file store; for a SQLite store write "
        f"sqlite:///{database} (a server: http://host:port)"
    )


def is_new_store(tracking_uri: str) -> bool:
    """True for a ``sqlite://`` URI whose database file does not exist yet (opening it will
    create an empty store)."""
    try:
        database = sqlite_database(tracking_uri)
    except ValueError:
        return False
    return database is not None and not database.exists()


def sqlite_database(tracking_uri: str) -> Path | None:
    """The database file of a ``sqlite://`` URI (None for other schemes); ValueError for an
    in-memory or empty database part."""
    if not tracking_uri.startswith("sqlite:"):
        return None
    # SQLAlchemy's form: sqlite:///relative/path or sqlite:////absolute/path (?query allowed)
    database = unquote(tracking_uri.removeprefix("sqlite:").removeprefix("//").split("?")[0])
    database = database.removeprefix("/") if database.startswith("/") else database
    if not database or database == ":memory:":
        raise ValueError(f"{tracking_uri}: not an MLflow database file")
    return Path(database)


def _read_only(path: Path) -> bool:
    return not os.access(path, os.W_OK) or bool(os.statvfs(path).f_flag & os.ST_RDONLY)


def sqlite_problem(database: Path) -> str | None:
    """Why MLflow could not use (or create) the SQLite file ``database``, or None.

    MLflow creates a missing file and its missing folders; what it cannot get past is a file
    that is not a database, a read-only file or folder, or a path through a non-folder.
    """
    if database.exists():
        if database.is_dir():
            return f"{database} is a directory, not a database file"
        with database.open("rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
        if header and header != SQLITE_HEADER:
            return f"{database} is not a SQLite database"
        return f"{database} is read-only" if _read_only(database) else None
    ancestor = database.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"{ancestor} is not a directory, so {database} cannot be created"
    if _read_only(ancestor):
        return f"{ancestor} is read-only, so {database} cannot be created"
    return None


def make_sqlite_folder(tracking_uri: str) -> None:
    """Create the folder of a ``sqlite://`` store, as MLflow would when it opens it; OSError
    when it cannot be created. Done before training, so that a store that can never open is
    reported before the first step rather than after it."""
    database = sqlite_database(tracking_uri)
    if database is not None:
        database.parent.mkdir(parents=True, exist_ok=True)
