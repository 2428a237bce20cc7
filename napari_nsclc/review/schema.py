"""The review store's tables, and its schema version kept by Alembic.

The tables below are the newest schema (:data:`SCHEMA_VERSION`); the
migrations in ``napari_nsclc/review/migrations/versions`` build it step by
step, and a test checks that the two agree. Each migration spells out its
own tables instead of importing these, so that it keeps meaning what it
meant when it was written.

Alembic records the version in its own table, ``nsclc_review_version``
(not ``alembic_version``), so a store can share a PostgreSQL database with
another Alembic-managed application.
"""

from __future__ import annotations

import functools
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from ..model import NsclcFormatError

__all__ = ["SCHEMA_VERSION", "VERSION_TABLE", "SchemaTooNew", "current_version", "metadata", "upgrade"]

#: Alembic's version table for the review store.
VERSION_TABLE = "nsclc_review_version"

#: The newest schema version this code knows (an Alembic revision id).
SCHEMA_VERSION = "0003"

# Two sessions upgrading one PostgreSQL database at once wait for each other on this lock.
_PG_MIGRATION_LOCK = 0x6E73636C63  # "nsclc"

# Explicit constraint names: the same on SQLite and PostgreSQL, so a migration can name them.
metadata = sa.MetaData(
    naming_convention={
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ix": "ix_%(table_name)s_%(column_0_name)s",
    }
)

_when = sa.DateTime(timezone=True)

cases = sa.Table(
    "cases",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("dataset", sa.Text, nullable=False),
    sa.Column("case_id", sa.Text, nullable=False),
    sa.Column("added_at", _when, nullable=False),
    sa.UniqueConstraint("dataset", "case_id"),
)


def _case_ref(**kwargs) -> sa.Column:
    return sa.Column("case_ref", sa.Integer, sa.ForeignKey("cases.id"), nullable=False, **kwargs)


assignments = sa.Table(
    "assignments",
    metadata,
    _case_ref(primary_key=True),
    sa.Column("annotator", sa.Text, primary_key=True),
    sa.Column("assigned_at", _when, nullable=False),
    sa.Column("assigned_by", sa.Text, nullable=False),
)

# One row per case: the row a transition locks, so that checking the state and changing it are one step.
review_states = sa.Table(
    "review_states",
    metadata,
    _case_ref(primary_key=True),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("changed_at", _when, nullable=False),
    sa.Column("changed_by", sa.Text, nullable=False),
)

comments = sa.Table(
    "comments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _case_ref(index=True),
    sa.Column("author", sa.Text, nullable=False),
    sa.Column("at", _when, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("position", sa.JSON, nullable=True),  # world coordinates, a list of floats
    sa.Column("slice_index", sa.Integer, nullable=True),
)

# Append-only: the store inserts and never updates or deletes. ``id`` orders the log.
events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _case_ref(),
    sa.Column("who", sa.Text, nullable=False),
    sa.Column("at", _when, nullable=False),
    sa.Column("what", sa.String(16), nullable=False),
    sa.Column("from_state", sa.String(32), nullable=True),
    sa.Column("to_state", sa.String(32), nullable=True),
    sa.Column("text", sa.Text, nullable=True),
    # revision 0003: on a submission, the correction's agreement with the original (JSON-ready numbers)
    sa.Column("details", sa.JSON, nullable=True),
    # revision 0002: a case's history without scanning the whole log
    sa.Index("ix_events_case_ref", "case_ref", "id"),
)

# revision 0002: in the database, so that every process sees the same list
supervisors = sa.Table(
    "supervisors",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("added_at", _when, nullable=False),
    sa.Column("added_by", sa.Text, nullable=False),
)


# revision 0003: the folders a dataset was corrected in, so that a supervisor can open its cases
datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("corrections", sa.Text, nullable=False),
    sa.Column("recorded_at", _when, nullable=False),
    sa.Column("recorded_by", sa.Text, nullable=False),
)


class SchemaTooNew(NsclcFormatError):
    """The store was written by a newer napari-nsclc; this one refuses to open it rather than damage it."""


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
    config.set_main_option("path_separator", "os")
    return config


@functools.cache
def _known_versions() -> tuple[str, ...]:
    """The revisions in the migrations folder, newest first."""
    return tuple(script.revision for script in ScriptDirectory.from_config(_config()).walk_revisions())


def current_version(connection: sa.Connection) -> str | None:
    """The store's schema version, or ``None`` for a database without a store yet."""
    heads = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}).get_current_heads()
    return heads[0] if heads else None


def _check_not_newer(version: str | None, where: str) -> None:
    if version is None or version in _known_versions():
        return
    raise SchemaTooNew(
        where,
        f"the review store has schema version {version}, newer than this napari-nsclc knows "
        f"(up to {SCHEMA_VERSION}); update napari-nsclc to open it",
    )


def upgrade(engine: sa.Engine, where: str, version: str = "head") -> str:
    """Create or upgrade the store's tables in one transaction; returns the version it is at.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        An engine made by :func:`napari_nsclc.review.store.make_engine` (its write
        transactions lock the database).
    where : str
        The file or URL, for messages.
    version : str
        The revision to go to: ``"head"``, or an older one (tests build old stores).

    Raises
    ------
    SchemaTooNew
        When the database is at a version this code does not know.
    """
    with engine.connect().execution_options(nsclc_write=True) as connection, connection.begin():
        # Taken before reading the version, so that two processes opening a new store do not both create it.
        if connection.dialect.name == "postgresql":
            connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_MIGRATION_LOCK)))
        before = current_version(connection)
        _check_not_newer(before, where)
        target = SCHEMA_VERSION if version == "head" else version
        if before != target:
            config = _config()
            config.attributes["connection"] = connection
            # Only forwards: opening a store never downgrades it.
            if before is None or _known_versions().index(before) > _known_versions().index(target):
                command.upgrade(config, version)
        return current_version(connection)
