"""A store's tables are created once however many processes open it at the same moment: a
server's parent and each of its workers open a new store together, as the nodes of a deployment
open a new database together."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Sequence
from multiprocessing.synchronize import Barrier
from pathlib import Path
from uuid import uuid4

import psycopg

from ingest.pipeline import prepare_statements
from lrs.application import LearningRecordStore
from lrs.auth import Principal
from lrs.config import Settings
from tests.statements import agent, statement, voiding, with_id

OPENERS = 3
WRITER = Principal("writer", "writer", frozenset({"all"}), "urn:lrs:credentials")


def _open(settings: Settings, store: str, barrier: Barrier) -> str:
    store_settings = settings.for_store(store)
    barrier.wait(timeout=60)
    try:
        LearningRecordStore(env=store_settings.event_store_env()).close()
    except Exception as exc:  # reported to the test, which names it
        return repr(exc)
    return "opened"


def test_a_store_opened_by_several_processes_at_once_opens_in_each(settings: Settings) -> None:
    LearningRecordStore(env=settings.event_store_env()).close()  # the default store, as a server's
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, context.Pool(OPENERS) as pool:
        for attempt in range(5):  # before the fix, PostgreSQL lost most tries, SQLite some
            barrier = manager.Barrier(OPENERS)
            outcomes = pool.starmap(_open, [(settings, f"new{attempt}", barrier)] * OPENERS)
            assert outcomes == ["opened"] * OPENERS


def _statement_indexes(store: LearningRecordStore, settings: Settings,
                       change: Sequence[str] = (), on: str | None = None) -> set[str]:
    """The indexes of the statement table (those of column ``on`` alone, if given), after
    running ``change`` on the store's database."""
    if settings.event_store:
        listing = ("SELECT indexname AS name FROM pg_indexes WHERE tablename = 'xapi_statement'"
                   " AND schemaname = current_schema()"
                   + (f" AND indexdef LIKE '%({on})'" if on else ""))
    else:
        listing = ("SELECT il.name AS name FROM pragma_index_list('xapi_statement') il,"
                   " pragma_index_info(il.name) ii" + (f" WHERE ii.name = '{on}'" if on else ""))
    with store.recorder.datastore.transaction(commit=True) as c:
        for statement in change:
            c.execute(statement)
        c.execute(listing)
        return {row["name"] for row in c.fetchall()}


def test_a_store_made_with_full_reference_indexes_gets_partial_ones_when_opened(
        settings: Settings) -> None:
    """Stores made before the indexes of object_ref and voids became partial (most rows hold
    NULL there) lose the full indexes, which cost every write, the next time they are opened."""
    store = LearningRecordStore(env=settings.event_store_env())
    made_before = _statement_indexes(store, settings, [
        "DROP INDEX xapi_statement_object_ref_set", "DROP INDEX xapi_statement_voids_set",
        "CREATE INDEX xapi_statement_object_ref ON xapi_statement (object_ref)",
        "CREATE INDEX xapi_statement_voids ON xapi_statement (voids)"])
    store.close()
    assert {"xapi_statement_object_ref", "xapi_statement_voids"} <= made_before
    reopened = LearningRecordStore(env=settings.event_store_env())
    indexes = _statement_indexes(reopened, settings)
    reopened.close()
    assert {"xapi_statement_object_ref_set", "xapi_statement_voids_set"} <= indexes
    assert not {"xapi_statement_object_ref", "xapi_statement_voids"} & indexes


def _void_and_find(store: LearningRecordStore) -> None:
    """A statement, one that targets it and one that voids it are each found by their ids."""
    target = with_id(statement(actor=agent("tess")))
    ref = with_id(statement(actor=agent("rory"),
                            object={"objectType": "StatementRef", "id": target["id"]}))
    void = with_id(voiding(target["id"], actor=agent("vic")))
    for doc in (target, ref, void):
        store.store_batches([prepare_statements([doc], WRITER, "1.0.3", 10)])
    assert store.index.statement(target["id"], voided=True, credential=None) is not None
    assert store.index.statement(target["id"], voided=False, credential=None) is None
    assert store.index.statement(ref["id"], voided=False, credential=None) is not None
    found = store.index.existing_statements([target["id"], ref["id"], void["id"], str(uuid4())])
    assert sorted(found.events) == sorted([target["id"], ref["id"], void["id"]])
    assert found.voiding == {void["id"]}


def test_a_store_keeps_no_index_of_statement_ids_and_finds_each_on_the_events_key(
        settings: Settings) -> None:
    """A statement's event is its id's version 1, so the events' primary key finds it: an
    index of the statement rows' ids too cost every statement a second insert into a B-tree of
    random keys."""
    store = LearningRecordStore(env=settings.event_store_env())
    try:
        _void_and_find(store)
        assert _statement_indexes(store, settings, on="statement_id") == set()
    finally:
        store.close()


def test_a_store_made_with_an_index_of_statement_ids_still_finds_and_voids_by_id(
        settings: Settings) -> None:
    """Stores made before keep their index of statement ids on SQLite (it comes with the
    table's UNIQUE, which only a rebuild of the table drops); PostgreSQL drops it when the
    store is next opened. Either way every lookup by id reads the events' key."""
    store = LearningRecordStore(env=settings.event_store_env())
    made_before = _statement_indexes(store, settings, on="statement_id", change=[
        "ALTER TABLE xapi_statement ADD CONSTRAINT xapi_statement_statement_id_key"
        " UNIQUE (statement_id)" if settings.event_store else
        "CREATE UNIQUE INDEX statement_id_made_before ON xapi_statement (statement_id)"])
    store.close()
    assert made_before
    reopened = LearningRecordStore(env=settings.event_store_env())
    try:
        kept = _statement_indexes(reopened, settings, on="statement_id")
        assert kept == (set() if settings.event_store else made_before)
        _void_and_find(reopened)
    finally:
        reopened.close()


def test_opening_a_postgresql_store_never_waits_for_its_statement_tables_readers(
        postgres_database: str, tmp_path: Path) -> None:
    """Each process that opens a store runs its schema statements; one that locked the statement
    table whatever it found (ALTER TABLE … IF EXISTS does) waited behind a long read, such as an
    export's, and every write queued behind it."""
    settings = Settings(data_dir=tmp_path, event_store=postgres_database)
    LearningRecordStore(env=settings.event_store_env()).close()
    opened: list[str] = []
    with psycopg.connect(postgres_database) as reader:
        reader.execute("SELECT count(*) FROM xapi_statement").fetchone()  # holds its lock
        opener = threading.Thread(target=lambda: opened.append(
            type(LearningRecordStore(env=settings.event_store_env()).close()).__name__))
        opener.start()
        opener.join(20)
        while_read = list(opened)
        reader.rollback()
    opener.join(30)
    assert while_read == ["NoneType"], "opening the store waited for a reader of xapi_statement"
