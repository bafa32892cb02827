"""One process at a time on a store's critical sections: creating (migrating) it, and claiming.

MLflow and Optuna both create their schema on first use with no lock of their own, so
processes started together on a new SQLite file race on the migration (``duplicate column
name``, ``table ... already exists``) and all but one die. :func:`store_lock` serializes
those few calls and nothing else: a SQLite store is locked with ``fcntl.flock`` on
``<database>.lock`` beside it (processes of one machine, which is all SQLite supports), a
PostgreSQL store with a session advisory lock (processes on any host). Other stores (an
``http://`` tracking server, which migrates its own database) need no lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import zlib
from collections.abc import Iterator
from pathlib import Path

from lrexp.tracking.uri import sqlite_database

#: suffix of the lock file beside a SQLite database
LOCK_SUFFIX = ".lock"


def lock_file(uri: str) -> Path | None:
    """The lock file of a ``sqlite://`` store (None for other schemes or in-memory)."""
    try:
        database = sqlite_database(uri)
    except ValueError:  # in-memory: one process only
        return None
    return None if database is None else database.with_name(database.name + LOCK_SUFFIX)


@contextlib.contextmanager
def _flock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _advisory_lock(uri: str, name: str) -> Iterator[None]:
    """A PostgreSQL session advisory lock keyed by ``name``, on a connection of its own (so
    the caller's transactions are untouched); released when the connection closes, also when
    the process dies."""
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    engine = sqlalchemy.create_engine(uri, poolclass=NullPool)
    key = zlib.crc32(name.encode())
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            connection.commit()
            try:
                yield
            finally:
                connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                connection.commit()
    finally:
        engine.dispose()


@contextlib.contextmanager
def store_lock(uri: str, name: str = "lrexp") -> Iterator[None]:
    """Hold an exclusive lock on the store ``uri`` for the block (see the module docstring);
    ``name`` tells independent locks of one PostgreSQL database apart."""
    path = lock_file(uri)
    if path is not None:
        with _flock(path):
            yield
    elif uri.startswith("postgresql"):
        with _advisory_lock(uri, name):
            yield
    else:
        yield
