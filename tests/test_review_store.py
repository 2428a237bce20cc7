"""The supervisor-review store: API, state machine, schema migrations, two writers at once, a killed writer.

Most tests run on SQLite and on PostgreSQL. The PostgreSQL ones need a server:
``NSCLC_TEST_POSTGRES_URL=postgresql://user@host/database`` (each test gets
its own schema in it, dropped afterwards). scripts/test.sh starts one
(scripts/postgres.sh); without it they fail, never skip.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from napari_nsclc.model import NsclcFormatError
from napari_nsclc.review import schema
from napari_nsclc.review.engine import default_url, make_engine, store_url
from napari_nsclc.review.records import AmbiguousCase, CaseExists, UnknownCase
from napari_nsclc.review.schema import SCHEMA_VERSION, VERSION_TABLE, SchemaTooNew
from napari_nsclc.review.states import TRANSITIONS, IllegalTransition, NotAllowed
from napari_nsclc.review.store import open_store

WORKER = Path(__file__).with_name("review_store_worker.py")


def _postgres_server() -> str:
    url = os.environ.get("NSCLC_TEST_POSTGRES_URL")
    if url:
        return url
    # like the real samples, the PostgreSQL half of the suite fails rather than skips when it cannot run
    pytest.fail("no PostgreSQL server to test on: run the suite with scripts/test.sh, which starts one, or start "
                "one with 'eval \"$(bash scripts/postgres.sh start)\"' (sets NSCLC_TEST_POSTGRES_URL)")


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    """A URL of an empty store: a new SQLite file, or a new schema in the PostgreSQL test database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'review.db'}"
        return
    server = store_url(_postgres_server())
    name = f"nsclc_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server)
    with admin.begin() as connection:
        connection.execute(sa.schema.CreateSchema(name))
    # every connection of the store puts the new schema first in its search path
    yield server.update_query_dict({"options": f"-csearch_path={name}"}).render_as_string(hide_password=False)
    with admin.begin() as connection:
        connection.execute(sa.schema.DropSchema(name, cascade=True))
    admin.dispose()


@pytest.fixture
def store(url):
    with open_store(url) as opened:
        opened.set_supervisors(["sam"], by="admin")
        yield opened


def _replay(events):
    """Check each case's events form one legal chain; return each case's last state."""
    last = {}
    for event in events:
        key = (event.dataset, event.case)
        assert event.from_state == last.get(key), event
        if event.what == "transition":
            assert event.to_state in TRANSITIONS[event.from_state], event
        elif event.what != "add":
            assert event.to_state == event.from_state, event
        last[key] = event.to_state
    return last


def test_urls(tmp_path):
    assert store_url("postgresql://u@host/db").drivername == "postgresql+psycopg"
    assert store_url("postgres://u@host/db").drivername == "postgresql+psycopg"
    assert store_url(tmp_path / "r.db").database == str(tmp_path / "r.db")
    assert store_url(default_url(tmp_path)).database == str(tmp_path.resolve() / "review.db")
    for bad in ("sqlite://", "sqlite:///:memory:", "mysql://u@host/db"):
        with pytest.raises(ValueError, match="review store"):
            store_url(bad)


def test_sqlite_store_is_wal_with_foreign_keys(tmp_path):
    open_store(tmp_path / "review.db").close()
    engine = make_engine(tmp_path / "review.db")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
        with pytest.raises(sa.exc.IntegrityError):
            row = dict(case_ref=99, who="x", at=sa.func.now(), what="comment")
            connection.execute(sa.insert(schema.events).values(**row))
    engine.dispose()


def test_a_file_that_cannot_be_a_store_is_named(tmp_path):
    path = tmp_path / "review.db"
    path.write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(NsclcFormatError, match="review.db: cannot open the review store"):
        open_store(path)
    with pytest.raises(NsclcFormatError, match="no-such-folder.review.db: cannot open the review store"):
        open_store(tmp_path / "no-such-folder" / "review.db")


def test_a_case_through_review(store):
    add = store.add_case("lung1", "c1", by="admin")
    assert (add.what, add.from_state, add.to_state, add.who) == ("add", None, "new", "admin")
    assert store.assign("c1", "ann") is not None
    assert store.assign("c1", "ann") is None  # already assigned: nothing logged
    store.transition("c1", "in_progress", "ann")
    store.transition("c1", "submitted", "ann", comment="ready")
    store.transition("c1", "changes_requested", "sam", comment="the margin is off")
    store.transition("c1", "in_progress", "ann")
    store.transition("c1", "submitted", "ann")
    last = store.transition("c1", "approved", "sam")
    assert (last.from_state, last.to_state, last.case, last.dataset) == ("submitted", "approved", "c1", "lung1")
    assert store.state("c1") == "approved"
    log = store.events("c1")
    assert [e.what for e in log] == ["add", "assign"] + ["transition"] * 6
    assert [e.text for e in log][1:5] == ["ann", None, "ready", "the margin is off"]
    assert all(e.when.tzinfo is not None and e.when.utcoffset() == timezone.utc.utcoffset(None) for e in log)
    assert [e.when for e in log] == sorted(e.when for e in log)
    assert _replay(store.events()) == {("lung1", "c1"): "approved"}
    assert [c.text for c in store.comments("c1")] == ["ready", "the margin is off"]


def test_illegal_transition_writes_nothing(store):
    store.add_case("lung1", "c1")
    before = store.events()
    for to_state, message in [
        ("approved", "cannot go from new to approved: it can go to in_progress"),
        ("submitted", "cannot go from new to submitted"),
        ("aproved", "'aproved' is not a review state"),
    ]:
        with pytest.raises(IllegalTransition, match=message):
            store.transition("c1", to_state, "sam", comment="should not be kept")
    assert store.events() == before and store.state("c1") == "new" and store.comments("c1") == []
    for step in ("in_progress", "submitted", "approved"):
        store.transition("c1", step, "sam")
    with pytest.raises(IllegalTransition, match="it is final"):
        store.transition("c1", "in_progress", "sam")


def test_only_supervisors_approve_or_request_changes(store, url):
    store.add_case("lung1", "c1")
    store.transition("c1", "in_progress", "ann")
    store.transition("c1", "submitted", "ann")
    before = store.events()
    for to_state in ("approved", "changes_requested"):
        with pytest.raises(NotAllowed, match=f"only a supervisor may move a case to {to_state}; 'ann' is not one"):
            store.transition("c1", to_state, "ann")
    assert store.events() == before and store.state("c1") == "submitted"
    # the list is in the database: another store object (another process) sees it and changes it
    with open_store(url) as other:
        assert other.supervisors() == ("sam",)
        assert other.set_supervisors(["ann", "sam"]) == ("ann", "sam")
    store.transition("c1", "approved", "ann")
    store.set_supervisors([])
    store.add_case("lung1", "c2")
    store.transition("c2", "in_progress", "ann")
    store.transition("c2", "submitted", "ann")
    with pytest.raises(NotAllowed, match="nobody yet"):
        store.transition("c2", "approved", "sam")


def test_case_ids_shared_by_datasets(store):
    store.add_case("lung1", "c1")
    store.add_case("lung2", "c1")
    with pytest.raises(CaseExists, match="'c1' of dataset 'lung1' is already in the store"):
        store.add_case("lung1", "c1")
    with pytest.raises(AmbiguousCase, match="'lung1', 'lung2': pass dataset="):
        store.transition("c1", "in_progress", "ann")
    store.transition("c1", "in_progress", "ann", dataset="lung2")
    assert store.state("c1", dataset="lung1") == "new" and store.state("c1", dataset="lung2") == "in_progress"
    assert [e.what for e in store.events(dataset="lung2")] == ["add", "transition"]
    with pytest.raises(UnknownCase):
        store.state("c9")
    with pytest.raises(UnknownCase):
        store.state("c1", dataset="lung3")


def test_comments_with_positions(store):
    store.add_case("ct", "p1")
    store.comment("p1", "sam", "nodule?", position=(12.5, 30, 41.25), slice_index=7)
    store.comment("p1", "ann", "no position")
    first, second = store.comments("p1")
    assert (first.author, first.text, first.position, first.slice_index) == ("sam", "nodule?", (12.5, 30.0, 41.25), 7)
    assert (second.position, second.slice_index) == (None, None)
    assert [e.what for e in store.events("p1")] == ["add", "comment", "comment"]
    for bad in [dict(position=(1.0, float("nan"))), dict(position=()), dict(slice_index=-1), dict(slice_index=1.5)]:
        with pytest.raises(ValueError):
            store.comment("p1", "sam", "bad", **bad)
    with pytest.raises(ValueError, match="must not be empty"):
        store.comment("p1", "sam", "  ")
    assert len(store.comments("p1")) == 2


def test_queue(store):
    for dataset, case in [("lung1", "a"), ("lung1", "b"), ("lung2", "a")]:
        store.add_case(dataset, case)
    store.assign("b", "ann")
    store.assign("b", "bea")
    store.assign("a", "ann", dataset="lung2")
    store.transition("b", "in_progress", "ann")
    assert [(q.dataset, q.case, q.state, q.annotators) for q in store.queue()] == [
        ("lung1", "a", "new", ()),
        ("lung1", "b", "in_progress", ("ann", "bea")),
        ("lung2", "a", "new", ("ann",)),
    ]
    assert [(q.dataset, q.case) for q in store.queue(annotator="ann")] == [("lung1", "b"), ("lung2", "a")]
    assert [(q.dataset, q.case) for q in store.queue(state="new", annotator="ann")] == [("lung2", "a")]
    assert [q.case for q in store.queue(dataset="lung1", state="new")] == ["a"]
    assert store.queue(state="in_progress")[0].changed_by == "ann"
    with pytest.raises(ValueError, match="not a review state"):
        store.queue(state="done")


def _spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )


def test_two_processes_lose_nothing(store, url):
    """2 processes x 500 changes and comments at once, on 12 shared cases: exactly 1,000 events, one legal chain a case."""
    for number in range(12):
        store.add_case("lung1", f"c{number:02d}")
    store.set_supervisors(["p0", "p1"])
    workers = [_spawn("load", url, f"p{n}", str(n), "500") for n in range(2)]
    for worker in workers:
        assert worker.stdout.readline().strip() == "ready"
    started = time.perf_counter()
    for worker in workers:
        worker.stdin.write("go\n")
        worker.stdin.flush()
    reports = {}
    for n, worker in enumerate(workers):
        out, _ = worker.communicate(timeout=120)
        assert worker.returncode == 0
        reports[f"p{n}"] = json.loads(out.strip().splitlines()[-1])
    print(f"load: {time.perf_counter() - started:.1f} s, {reports}")
    log = store.events()
    changes = [e for e in log if e.what != "add"]
    assert len(changes) == 1000
    assert Counter((e.who, e.what) for e in changes) == {
        (who, what): report[what] for who, report in reports.items() for what in ("transition", "comment")
    }
    assert len({e.id for e in log}) == len(log)
    final = _replay(log)
    for case in final:  # a case's events are in time order too: the clock is read under the lock
        times = [e.when for e in log if (e.dataset, e.case) == case]
        assert times == sorted(times)
    assert {(q.dataset, q.case): q.state for q in store.queue()} == final
    comments = defaultdict(int)
    for e in changes:
        comments[e.case] += e.what == "comment"
    assert {case: len(store.comments(case)) for case in comments} == dict(comments)


def test_a_killed_writer_leaves_the_store_as_it_was(store, url):
    store.add_case("lung1", "c1")
    store.transition("c1", "in_progress", "alice")
    before = (store.state("c1"), store.events(), store.comments("c1"))
    worker = _spawn("hang", url, "c1")
    try:
        assert worker.stdout.readline().strip() == "inside"
    finally:
        worker.kill()  # SIGKILL: no rollback, no cleanup, no commit
        worker.wait(timeout=30)
    with open_store(url) as reopened:
        assert (reopened.state("c1"), reopened.events(), reopened.comments("c1")) == before
        reopened.transition("c1", "submitted", "alice")  # and the lock is gone
        assert reopened.state("c1") == "submitted"


def test_upgrade_from_the_first_schema_keeps_the_data(url):
    engine = make_engine(url)
    assert schema.upgrade(engine, url, "0001") == "0001"
    tables = sa.MetaData()
    now = datetime.now(timezone.utc)
    with engine.begin() as connection:
        tables.reflect(connection)
        assert "supervisors" not in tables.tables

        def insert(table, **values):
            return connection.execute(sa.insert(tables.tables[table]).values(**values)).inserted_primary_key[0]

        case = insert("cases", dataset="lung1", case_id="c1", added_at=now)
        insert("review_states", case_ref=case, state="submitted", changed_at=now, changed_by="ann")
        insert("assignments", case_ref=case, annotator="ann", assigned_at=now, assigned_by="sam")
        insert("comments", case_ref=case, author="ann", at=now, text="look here", position=[1.0, 2.0], slice_index=3)
        for before, after in [(None, "new"), ("new", "in_progress"), ("in_progress", "submitted")]:
            what = "add" if before is None else "transition"
            insert("events", case_ref=case, who="ann", at=now, what=what, from_state=before, to_state=after)
    engine.dispose()
    with open_store(url) as store:
        assert store.schema_version == SCHEMA_VERSION == "0003"
        assert store.state("c1") == "submitted"
        steps = [(e.what, e.to_state) for e in store.events("c1")]
        assert steps == [("add", "new"), ("transition", "in_progress"), ("transition", "submitted")]
        assert store.events("c1")[0].when == now
        assert [(c.text, c.position, c.slice_index) for c in store.comments("c1")] == [("look here", (1.0, 2.0), 3)]
        assert store.queue()[0].annotators == ("ann",)
        # the new things: a supervisors table, and the index on a case's events
        assert store.supervisors() == ()
        store.set_supervisors(["sam"])
        store.transition("c1", "approved", "sam")
        with store._engine.connect() as connection:
            indexes = sa.inspect(connection).get_indexes("events")
        assert [(i["name"], i["column_names"]) for i in indexes] == [("ix_events_case_ref", ["case_ref", "id"])]
        new = store.add_case("lung1", "c2")
        assert new.id == 5  # the event ids go on after the old ones
        # revision 0003: old events have no details, new ones keep theirs; datasets can be located
        assert [e.details for e in store.events("c1")] == [None] * 4
        store.transition("c2", "in_progress", "ann", details={"dice": {"tumour": 0.5}})
        assert store.events("c2")[-1].details == {"dice": {"tumour": 0.5}}
        assert store.location("lung1") is None


def test_migrations_build_the_tables_the_code_uses(store):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with store._engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        assert compare_metadata(context, schema.metadata) == []


def test_a_newer_schema_is_refused(url):
    open_store(url).close()
    engine = make_engine(url)
    version = sa.table(VERSION_TABLE, sa.column("version_num"))
    with engine.begin() as connection:
        connection.execute(sa.update(version).values(version_num="0004"))
    engine.dispose()
    with pytest.raises(SchemaTooNew) as raised:
        open_store(url)
    message = str(raised.value)
    assert isinstance(raised.value, NsclcFormatError) and "\n" not in message
    where = store_url(url).database if url.startswith("sqlite") else "postgresql+psycopg://"
    assert message.startswith(where) and "schema version 0004" in message and "(up to 0003)" in message
    assert raised.value.path in message


def test_two_processes_create_a_new_store_at_once(url):
    code = "import sys; from napari_nsclc.review.store import open_store; sys.stdin.readline(); open_store(sys.argv[1]).close()"
    workers = [subprocess.Popen([sys.executable, "-c", code, url], stdin=subprocess.PIPE, text=True) for _ in range(2)]
    time.sleep(1.0)  # both have imported the store and wait on stdin
    for worker in workers:
        worker.stdin.write("\n")
        worker.stdin.flush()
    assert [worker.wait(timeout=60) for worker in workers] == [0, 0]
    with open_store(url) as store:
        assert store.schema_version == SCHEMA_VERSION


def test_a_submission_keeps_its_details_and_refuses_what_json_cannot_hold(store):
    store.add_case("NSCLC-NAT", "2")
    store.transition("2", "in_progress", "ann")
    details = {"masks": {"dice": {"tumour bed": 0.91, "normal": None}, "pixels_changed": 1204}}
    event = store.transition("2", "submitted", "ann", details=details)
    assert event.details == details
    assert store.events("2")[-1].details == details and store.events("2")[-1].id == event.id
    with pytest.raises(ValueError, match="JSON-ready"):
        store.transition("2", "changes_requested", "sam", details={"dice": float("nan")})
    assert store.state("2") == "submitted" and len(store.events("2")) == 3  # nothing written


def test_a_dataset_location_is_recorded_and_replaced(store, tmp_path):
    assert store.location("NSCLC-NAT") is None
    first = store.locate("NSCLC-NAT", tmp_path / "nat", tmp_path / "nat" / "corrections", by="ann")
    assert (first.source, first.corrections, first.recorded_by) == (
        str(tmp_path / "nat"), str(tmp_path / "nat" / "corrections"), "ann")
    store.locate("NSCLC-NAT", tmp_path / "copy", tmp_path / "mine", by="bob")
    found = store.location("NSCLC-NAT")
    assert (found.source, found.corrections, found.recorded_by) == (str(tmp_path / "copy"), str(tmp_path / "mine"), "bob")
    assert found.recorded_at.tzinfo is not None
