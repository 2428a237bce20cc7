"""Where a review store lives: URLs, and SQLAlchemy engines whose write transactions lock.

SQLite: foreign keys on, write-ahead logging (so that readers do not block
the writer), a busy timeout of :data:`BUSY_TIMEOUT_S`, and ``BEGIN
IMMEDIATE`` for a write, so that the write lock is taken before the state
is read rather than at the first write. PostgreSQL goes through psycopg 3;
its writes lock rows with ``SELECT ... FOR UPDATE`` (see
:mod:`~napari_nsclc.review.store`).

A connection with the execution option ``nsclc_write=True`` begins a
write transaction.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import sqlalchemy as sa

__all__ = ["BUSY_TIMEOUT_S", "DEFAULT_NAME", "default_url", "describe", "make_engine", "store_url"]

#: The store's file name in a project folder.
DEFAULT_NAME = "review.db"

#: How long a SQLite writer waits for another's transaction before giving up.
BUSY_TIMEOUT_S = 30.0


def default_url(folder: str | os.PathLike) -> str:
    """The default store of a project: ``sqlite:///<folder>/review.db``."""
    return f"sqlite:///{Path(folder).resolve() / DEFAULT_NAME}"


def store_url(url: str | os.PathLike) -> sa.URL:
    """The SQLAlchemy URL for ``url``: a SQLite file (a URL or a plain path), or PostgreSQL through psycopg 3.

    Raises
    ------
    ValueError
        For another database, or an in-memory SQLite one (each connection would get its own).
    """
    if isinstance(url, os.PathLike) or "://" not in str(url):
        return sa.URL.create("sqlite+pysqlite", database=str(Path(url).resolve()))
    parsed = sa.make_url(str(url))
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg"):
        return parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername in ("sqlite", "sqlite+pysqlite"):
        if not parsed.database or parsed.database == ":memory:" or parsed.database.startswith("file:"):
            raise ValueError(f"{url}: a review store needs a file: sqlite:///path/{DEFAULT_NAME}")
        return parsed.set(drivername="sqlite+pysqlite", database=str(Path(parsed.database).resolve()))
    raise ValueError(f"{url}: a review store is sqlite:///path/{DEFAULT_NAME} or postgresql://host/database")


def _use_wal(cursor) -> None:
    """Switch the file to write-ahead logging (it stays so): readers then no longer block the writer."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            # The switch needs the file to itself and SQLite does not wait for that (no busy handler),
            # so two processes creating a store at once would fail here: wait for the other one.
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def make_engine(url: str | os.PathLike) -> sa.Engine:
    """An engine whose write transactions lock (see the module docstring); ``url`` as for :func:`store_url`."""
    url = store_url(url)
    if url.get_backend_name() == "postgresql":
        return sa.create_engine(url, pool_pre_ping=True)
    engine = sa.create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S})

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection, record):
        # sqlite3 would begin transactions lazily, at the first write; _begin emits BEGIN instead
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        _use_wal(cursor)
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(connection):
        # IMMEDIATE takes the write lock now, before the state is read, not at the first write
        write = connection.get_execution_options().get("nsclc_write")
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def describe(engine: sa.Engine) -> str:
    """The store's file, or its URL with the password hidden: what messages name."""
    url = engine.url
    return url.database if url.get_backend_name() == "sqlite" else url.render_as_string(hide_password=True)
