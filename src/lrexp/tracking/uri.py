"""Tracking URIs without opening a store: the SQLite file a URI names, and why it is unusable.

Light on purpose (no MLflow import): config validation calls it before anything is written.
"""

from __future__ import annotations

import os
from pathlib import Path

SQLITE_HEADER = b"SQLite format 3\x00"


def sqlite_database(tracking_uri: str) -> Path | None:
    """The database file of a ``sqlite://`` URI (None for other schemes); ValueError for an
    in-memory or empty database part."""
    if not tracking_uri.startswith("sqlite:"):
        return None
    from sqlalchemy.engine import make_url

    database = make_url(tracking_uri).database
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
