"""The supervisor-review store: cases, assignments, review states, comments and an append-only event log.

:func:`open_store` takes ``sqlite:///path/review.db`` (the default, a file
in the project folder: see :func:`~.engine.default_url`) or ``postgresql://…`` for a
team that has outgrown a shared folder. SQLite must sit on a local disk:
on a network share (SMB, NFS) its file locks are unreliable and its
write-ahead log needs shared memory between the machines, so two writers
on two machines can corrupt the file; give such a team PostgreSQL.

How a case is named
    A case is the pair ``(dataset, case_id)``: :meth:`ReviewStore.add_case`
    takes both. Every other method takes the ``case_id`` and an optional
    ``dataset=``; without it the case id must be unique in the store, else
    :class:`AmbiguousCase` lists the datasets that share it.

Supervisors
    Kept in the database (:meth:`ReviewStore.set_supervisors`), so that
    every process and machine sees the same list. Only a listed name may
    approve a case or request changes (:class:`~.states.NotAllowed`). This
    is attribution, not authentication: names are taken as given, and
    anyone who can write to the database can change the list. The log
    records who said what, not who they really are.

Events
    Every change appends one :class:`Event`: ``add``, ``assign``,
    ``transition`` or ``comment``. Each carries the case's state before and
    after (equal for assign and comment), so a case's last event always
    ends in its current state. The store never updates or deletes an event.

Concurrency and faults
    Each call is one transaction. A write first locks the case: SQLite's
    ``BEGIN IMMEDIATE`` takes the database's write lock (waiting up to
    :data:`~.engine.BUSY_TIMEOUT_S`), PostgreSQL's ``SELECT … FOR UPDATE`` locks the
    case's state row. Checking a transition and making it are therefore
    one step, and a writer killed before its commit leaves nothing behind.

Schema
    Opening a store creates or upgrades its tables with the Alembic
    migrations in ``napari_nsclc/review/migrations``. A store written by a
    newer napari-nsclc is refused with :class:`~.schema.SchemaTooNew`.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa

from ..model import NsclcFormatError
from . import schema
from .engine import describe, make_engine
from .records import AmbiguousCase, CaseExists, Comment, DatasetLocation, Event, QueueEntry, UnknownCase
from .schema import assignments, cases, comments, datasets, events, review_states, supervisors
from .states import NEW, STATES, check_transition

__all__ = ["ReviewStore", "open_store"]


@dataclass(frozen=True)
class _Case:
    ref: int
    dataset: str
    case_id: str

    @property
    def label(self) -> str:
        return f"{self.dataset}/{self.case_id}"


def open_store(url: str | os.PathLike) -> ReviewStore:
    """Open the review store at ``url``, creating or upgrading its tables.

    Parameters
    ----------
    url : str or os.PathLike
        ``sqlite:///path/review.db`` (or just the path), or ``postgresql://user@host/database``
        (driven by psycopg 3: ``postgresql+psycopg://`` is used for it).

    Raises
    ------
    SchemaTooNew
        When a newer napari-nsclc wrote the store.
    NsclcFormatError
        When the database cannot be opened (not a database, no such folder, server unreachable).
    """
    engine = make_engine(url)
    where = describe(engine)
    try:
        schema.upgrade(engine, where)
    except sa.exc.DBAPIError as error:
        engine.dispose()
        problem = " ".join(str(error.orig).split())  # psycopg's messages run over several lines
        raise NsclcFormatError(where, f"cannot open the review store: {problem}") from error
    except BaseException:
        engine.dispose()
        raise
    return ReviewStore(engine, where)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _utc(value: datetime) -> datetime:
    # SQLite keeps no time zone: the store writes UTC, so a naive value read back is UTC
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _name(value, what: str) -> str:
    text = str(value).strip() if value is not None else ""
    if not text:
        raise ValueError(f"{what} must not be empty")
    return text


def _default_who(by: str | None) -> str:
    if by is not None:
        return _name(by, "by")
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name (a container without a passwd entry)
        return "unknown"


def _position(position: Sequence[float] | None) -> list[float] | None:
    if position is None:
        return None
    values = [float(v) for v in position]
    if not values or not all(math.isfinite(v) for v in values):
        raise ValueError(f"a comment's position is finite world coordinates, not {position!r}")
    return values


def _json_ready(value, what: str):
    if value is None:
        return None
    try:  # refused here, not half-way through a transaction
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise ValueError(f"{what} must be JSON-ready (no NaN, no arrays): {error}") from error


class ReviewStore:
    """An open review store; made by :func:`open_store`. Safe to use from several processes at once.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        From :func:`make_engine`, on an up-to-date schema.
    where : str
        The file or URL (password hidden), for messages.
    """

    def __init__(self, engine: sa.Engine, where: str):
        self._engine = engine
        self.where = where

    def __repr__(self) -> str:
        return f"ReviewStore({self.where!r})"

    def __enter__(self) -> ReviewStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the store's connections."""
        self._engine.dispose()

    @property
    def schema_version(self) -> str | None:
        """The database's schema version (:data:`~.schema.SCHEMA_VERSION` once opened)."""
        with self._read() as connection:
            return schema.current_version(connection)

    @contextlib.contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        with self._engine.connect().execution_options(nsclc_write=True) as connection, connection.begin():
            yield connection

    @contextlib.contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        with self._engine.connect() as connection, connection.begin():  # one snapshot for the whole call
            yield connection

    def _case(self, connection: sa.Connection, case_id, dataset: str | None) -> _Case:
        query = sa.select(cases.c.id, cases.c.dataset, cases.c.case_id).where(cases.c.case_id == str(case_id))
        if dataset is not None:
            query = query.where(cases.c.dataset == str(dataset))
        rows = connection.execute(query.order_by(cases.c.dataset)).all()
        if not rows:
            where = f" in dataset {dataset!r}" if dataset is not None else ""
            raise UnknownCase(f"{self.where}: no case {case_id!r}{where}")
        if len(rows) > 1:
            names = ", ".join(repr(row.dataset) for row in rows)
            raise AmbiguousCase(f"{self.where}: case {case_id!r} is in datasets {names}: pass dataset=")
        return _Case(*rows[0])

    def _lock(self, connection: sa.Connection, case: _Case) -> str:
        """The case's state, locked until the transaction ends (SQLite's BEGIN IMMEDIATE already locks).

        Callers read the clock after this, so that a case's events are in time order as well as id order.
        """
        query = sa.select(review_states.c.state).where(review_states.c.case_ref == case.ref).with_for_update()
        return connection.execute(query).scalar_one()

    def _log(self, connection, case: _Case, who, what, from_state, to_state, text, when, details=None) -> Event:
        values = dict(who=who, at=when, what=what, from_state=from_state, to_state=to_state, text=text)
        result = connection.execute(sa.insert(events).values(case_ref=case.ref, details=details, **values))
        event_id = result.inserted_primary_key[0]
        return Event(who, when, what, from_state, to_state, case.case_id, text, case.dataset, event_id, details)

    def add_case(self, dataset: str, case_id: str, *, by: str | None = None) -> Event:
        """Add the case ``(dataset, case_id)``, in state ``new``; returns its ``add`` event.

        ``by`` defaults to the login name. Raises :class:`CaseExists` if the store has it.
        """
        dataset, case_id, who = _name(dataset, "dataset"), _name(case_id, "case id"), _default_who(by)
        exists = CaseExists(f"{self.where}: case {case_id!r} of dataset {dataset!r} is already in the store")
        try:
            with self._write() as connection:
                if connection.execute(sa.select(cases.c.id).filter_by(dataset=dataset, case_id=case_id)).first():
                    raise exists
                when = _now()
                result = connection.execute(sa.insert(cases).values(dataset=dataset, case_id=case_id, added_at=when))
                case = _Case(result.inserted_primary_key[0], dataset, case_id)
                state = dict(case_ref=case.ref, state=NEW, changed_at=when, changed_by=who)
                connection.execute(sa.insert(review_states).values(**state))
                return self._log(connection, case, who, "add", None, NEW, None, when)
        except sa.exc.IntegrityError as error:  # PostgreSQL: another session added it since our check
            raise exists from error

    def assign(self, case_id: str, annotator: str, *, dataset: str | None = None, by: str | None = None) -> Event | None:
        """Assign the case to ``annotator``; returns the ``assign`` event, or ``None`` if it already was."""
        annotator, who = _name(annotator, "annotator"), _default_who(by)
        with self._write() as connection:
            case = self._case(connection, case_id, dataset)
            state, when = self._lock(connection, case), _now()
            key = dict(case_ref=case.ref, annotator=annotator)
            if connection.execute(sa.select(assignments.c.case_ref).filter_by(**key)).first():
                return None
            connection.execute(sa.insert(assignments).values(**key, assigned_at=when, assigned_by=who))
            return self._log(connection, case, who, "assign", state, state, annotator, when)

    def transition(self, case_id: str, to_state: str, by: str, comment: str | None = None, *, dataset=None,
                   details: dict | None = None) -> Event:  # fmt: skip
        """Move the case to ``to_state`` (see :mod:`~.states`); returns the ``transition`` event.

        A ``comment`` is the event's text and is also returned by :meth:`comments`.
        ``details`` (JSON-ready: dicts, lists, strings, numbers, ``None``) is
        kept on the event; a submission keeps there how the correction
        agrees with the original (see :mod:`~.session`).

        Raises
        ------
        IllegalTransition
            When the case cannot go there from its state; nothing is written.
        NotAllowed
            When only a supervisor may, and ``by`` is not one; nothing is written.
        """
        by = _name(by, "by")
        comment = (comment.strip() or None) if comment is not None else None
        details = _json_ready(details, "details")
        with self._write() as connection:
            case = self._case(connection, case_id, dataset)
            from_state, when = self._lock(connection, case), _now()
            listed = connection.execute(sa.select(supervisors.c.name)).scalars().all()
            check_transition(case.label, from_state, to_state, by, listed)
            update = sa.update(review_states).where(review_states.c.case_ref == case.ref)
            connection.execute(update.values(state=to_state, changed_at=when, changed_by=by))
            if comment is not None:
                connection.execute(sa.insert(comments).values(case_ref=case.ref, author=by, at=when, text=comment))
            return self._log(connection, case, by, "transition", from_state, to_state, comment, when, details)

    def comment(self, case_id: str, by: str, text: str, position=None, *, slice_index=None, dataset=None) -> Comment:
        """Comment on the case, optionally at ``position`` (world coordinates) on slice ``slice_index``."""
        by, text, position = _name(by, "by"), _name(text, "a comment"), _position(position)
        if slice_index is not None and (int(slice_index) != slice_index or slice_index < 0):
            raise ValueError(f"a slice index is a whole number from 0, not {slice_index!r}")
        slice_index = None if slice_index is None else int(slice_index)
        with self._write() as connection:
            case = self._case(connection, case_id, dataset)
            state, when = self._lock(connection, case), _now()
            values = dict(author=by, at=when, text=text, position=position, slice_index=slice_index)
            result = connection.execute(sa.insert(comments).values(case_ref=case.ref, **values))
            self._log(connection, case, by, "comment", state, state, text, when)
        where = tuple(position) if position is not None else None
        return Comment(case.case_id, case.dataset, by, when, text, where, slice_index, result.inserted_primary_key[0])

    def state(self, case_id: str, *, dataset: str | None = None) -> str:
        """The case's review state, one of :data:`~.states.STATES`."""
        with self._read() as connection:
            case = self._case(connection, case_id, dataset)
            query = sa.select(review_states.c.state).where(review_states.c.case_ref == case.ref)
            return connection.execute(query).scalar_one()

    def events(self, case_id: str | None = None, *, dataset: str | None = None) -> list[Event]:
        """The event log, oldest first: of one case, of one dataset, or all of it."""
        query = sa.select(events, cases.c.dataset, cases.c.case_id).join(cases, events.c.case_ref == cases.c.id)
        with self._read() as connection:
            if case_id is not None:
                query = query.where(events.c.case_ref == self._case(connection, case_id, dataset).ref)
            elif dataset is not None:
                query = query.where(cases.c.dataset == str(dataset))
            rows = connection.execute(query.order_by(events.c.id)).all()
        return [
            Event(row.who, _utc(row.at), row.what, row.from_state, row.to_state, row.case_id, row.text, row.dataset,
                  row.id, row.details)
            for row in rows
        ]

    def comments(self, case_id: str, *, dataset: str | None = None) -> list[Comment]:
        """The case's comments, oldest first (a transition's comment included)."""
        with self._read() as connection:
            case = self._case(connection, case_id, dataset)
            query = sa.select(comments).where(comments.c.case_ref == case.ref).order_by(comments.c.id)
            rows = connection.execute(query).all()
        return [
            Comment(
                case.case_id, case.dataset, row.author, _utc(row.at), row.text,
                tuple(row.position) if row.position is not None else None, row.slice_index, row.id,
            )
            for row in rows
        ]  # fmt: skip

    def queue(self, state: str | None = None, annotator: str | None = None, dataset: str | None = None) -> list[QueueEntry]:
        """The cases, by dataset and case id, with their state and annotators; each filter is optional.

        ``annotator`` keeps the cases assigned to that name.
        """
        if state is not None and state not in STATES:
            raise ValueError(f"{state!r} is not a review state (states: {', '.join(STATES)})")
        joined = cases.join(review_states, review_states.c.case_ref == cases.c.id)
        query = sa.select(cases.c.id, cases.c.dataset, cases.c.case_id, review_states).select_from(joined)
        if state is not None:
            query = query.where(review_states.c.state == state)
        if dataset is not None:
            query = query.where(cases.c.dataset == str(dataset))
        if annotator is not None:
            assigned = sa.select(assignments.c.case_ref).where(assignments.c.annotator == str(annotator).strip())
            query = query.where(cases.c.id.in_(assigned))
        names = sa.select(assignments.c.case_ref, assignments.c.annotator)
        names = names.where(assignments.c.case_ref.in_(query.with_only_columns(cases.c.id)))
        with self._read() as connection:
            rows = connection.execute(query.order_by(cases.c.dataset, cases.c.case_id)).all()
            by_case: dict[int, list[str]] = {}
            for ref, name in connection.execute(names.order_by(assignments.c.annotator)):
                by_case.setdefault(ref, []).append(name)
        return [
            QueueEntry(row.dataset, row.case_id, row.state, tuple(by_case.get(row.id, ())), _utc(row.changed_at), row.changed_by)
            for row in rows
        ]

    def queue_entry(self, case_id: str, *, dataset: str | None = None) -> QueueEntry:
        """One case's line of :meth:`queue`: its state, annotators and last change."""
        with self._read() as connection:
            case = self._case(connection, case_id, dataset)
            row = connection.execute(sa.select(review_states).where(review_states.c.case_ref == case.ref)).one()
            names = sa.select(assignments.c.annotator).where(assignments.c.case_ref == case.ref)
            annotators = tuple(connection.execute(names.order_by(assignments.c.annotator)).scalars())
        return QueueEntry(case.dataset, case.case_id, row.state, annotators, _utc(row.changed_at), row.changed_by)

    def supervisors(self) -> tuple[str, ...]:
        """The names that may approve cases and request changes, sorted."""
        with self._read() as connection:
            return tuple(connection.execute(sa.select(supervisors.c.name).order_by(supervisors.c.name)).scalars())

    def set_supervisors(self, names: Iterable[str], *, by: str | None = None) -> tuple[str, ...]:
        """Replace the supervisors list, for every process using the store; returns it sorted.

        Attribution, not authentication: nothing checks who calls this. ``by``
        (default: the login name) is kept with each newly listed name.
        """
        wanted = {_name(name, "a supervisor's name") for name in ([names] if isinstance(names, str) else names)}
        who, when = _default_who(by), _now()
        for attempt in range(3):
            try:
                with self._write() as connection:
                    listed = set(connection.execute(sa.select(supervisors.c.name)).scalars())
                    if listed - wanted:
                        gone = supervisors.c.name.in_(sorted(listed - wanted))
                        connection.execute(sa.delete(supervisors).where(gone))
                    for name in sorted(wanted - listed):
                        connection.execute(sa.insert(supervisors).values(name=name, added_at=when, added_by=who))
                break
            except sa.exc.IntegrityError:
                # PostgreSQL: another session listed the same name since we read the list; read it again
                if attempt == 2:
                    raise
        return tuple(sorted(wanted))

    def locate(self, dataset: str, source, corrections, *, by: str | None = None) -> DatasetLocation:
        """Record where ``dataset`` is read from and where its corrections go (replacing an older record).

        A supervisor's dock opens a queued case from here. Paths are kept as
        given, resolved: they must mean the same on the supervisor's machine.
        """
        name, who, when = _name(dataset, "dataset"), _default_who(by), _now()
        values = dict(source=str(Path(source).resolve()), corrections=str(Path(corrections).resolve()),
                      recorded_at=when, recorded_by=who)  # fmt: skip
        for attempt in range(3):
            try:
                with self._write() as connection:
                    if connection.execute(sa.select(datasets.c.name).filter_by(name=name)).first():
                        connection.execute(sa.update(datasets).where(datasets.c.name == name).values(**values))
                    else:
                        connection.execute(sa.insert(datasets).values(name=name, **values))
                break
            except sa.exc.IntegrityError:  # PostgreSQL: another session recorded it since our check
                if attempt == 2:
                    raise
        return DatasetLocation(name, values["source"], values["corrections"], when, who)

    def location(self, dataset: str) -> DatasetLocation | None:
        """Where ``dataset`` was last corrected (see :meth:`locate`), or ``None``."""
        with self._read() as connection:
            row = connection.execute(sa.select(datasets).where(datasets.c.name == str(dataset))).first()
        if row is None:
            return None
        return DatasetLocation(row.name, row.source, row.corrections, _utc(row.recorded_at), row.recorded_by)
